"""The metric catalog defines every published KPI once, and every analytics model is documented and keyed.

dbt-core 1.11 (no MetricFlow installed) must accept the semantic models and metrics: the manifest read here is
the one the shared demo warehouse build (`warehouse_world_duckdb`, tests/support/warehouse_world.py) wrote, read
like the dashboards read it for their help text.
"""

from __future__ import annotations

import json
import re
from pathlib import Path

import pytest

PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
ANALYTICS_PATHS = ("models/intermediate/revenue/", "models/intermediate/operations/", "models/intermediate/adoption/",
                   "models/marts/revenue/", "models/marts/operations/", "models/marts/adoption/",
                   "models/marts/executive/", "models/metrics/")
EXECUTIVE_IDENTITY = {"company_id", "company_slug", "kpi_month", "base_currency", "currency_exponent"}
# columns of the analytics marts that are KPIs (besides every KPI column of the executive mart)
KPI_PATTERN = re.compile(r".*_ratio$|.*_mrr_minor$|^arr_minor$|^(dau|wau|mau)$|^days_to_activation$")
META_KEYS = ("formula", "grain", "owner", "unit", "published_columns")


@pytest.fixture(scope="module")
def manifest(warehouse_world_duckdb) -> dict:
    target = warehouse_world_duckdb.settings.var_dir / "dbt_target"
    assert (target / "semantic_manifest.json").exists()
    return json.loads((target / "manifest.json").read_text())


def analytics_models(manifest: dict) -> dict[str, dict]:
    return {node["name"]: node for node in manifest["nodes"].values()
            if node["resource_type"] == "model" and node["original_file_path"].startswith(
                tuple("dbt_project/" + p for p in ANALYTICS_PATHS) + ANALYTICS_PATHS)}


def published_kpi_columns(models: dict[str, dict]) -> set[str]:
    columns = set()
    for name, node in models.items():
        if not name.startswith(("rpt_", "fct_")):
            continue
        for column in node["columns"]:
            if name == "rpt_executive_kpis_month":
                if column not in EXECUTIVE_IDENTITY:
                    columns.add(f"{name}.{re.sub(r'_(prev_month|year_ago)$', '', column)}")
            elif KPI_PATTERN.match(column):
                columns.add(f"{name}.{column}")
    return columns


def test_the_semantic_layer_parses_with_metrics_and_a_time_spine(manifest):
    assert len(manifest["semantic_models"]) >= 5
    assert len(manifest["metrics"]) >= 20
    spine = next(n for n in manifest["nodes"].values() if n["name"] == "metricflow_time_spine")
    assert spine["time_spine"]["standard_granularity_column"] == "date_day"


def test_every_metric_has_a_label_description_formula_grain_and_owner(manifest):
    for metric in manifest["metrics"].values():
        meta = metric["config"]["meta"]
        assert metric["label"] and len(metric["description"]) > 20, metric["name"]
        assert all(meta.get(key) for key in META_KEYS), (metric["name"], meta)


def test_every_published_kpi_column_is_defined_once_in_the_catalog(manifest):
    models = analytics_models(manifest)
    assert {"rpt_executive_kpis_month", "rpt_mrr_by_month", "rpt_active_users_daily"} <= set(models)
    defined: dict[str, list[str]] = {}
    for metric in manifest["metrics"].values():
        for column in metric["config"]["meta"]["published_columns"]:
            defined.setdefault(column, []).append(metric["name"])
    kpis = published_kpi_columns(models)
    assert len(kpis) >= 25
    missing = sorted(kpis - set(defined))
    assert not missing, f"KPI columns without a metric: {missing}"
    twice = {column: names for column, names in defined.items() if len(names) > 1}
    assert not twice, f"KPI columns defined by more than one metric: {twice}"
    stale = sorted(c for c in defined if c.split(".")[0] not in models
                   or c.split(".")[1] not in models[c.split(".")[0]]["columns"])
    assert not stale, f"catalog entries naming no documented column: {stale}"


def test_every_analytics_model_and_column_is_described_and_every_model_has_a_tested_key(manifest):
    models = analytics_models(manifest)
    assert len(models) >= 20
    tests_by_model: dict[str, list[dict]] = {}
    for node in manifest["nodes"].values():
        if node["resource_type"] == "test" and node.get("attached_node"):
            tests_by_model.setdefault(node["attached_node"], []).append(node)
    for name, node in models.items():
        assert node["description"].strip(), name
        assert node["columns"], name
        for column, spec in node["columns"].items():
            assert spec["description"].strip(), f"{name}.{column}"
        tests = tests_by_model.get(node["unique_id"], [])
        kinds = {(t["test_metadata"]["name"], t.get("column_name")) for t in tests if t.get("test_metadata")}
        keyed = any(kind == "unique_combination_of_columns" for kind, _ in kinds) or any(
            kind == "unique" and ("not_null", column) in kinds for kind, column in kinds)
        assert keyed, f"{name} has no unique + not_null (or unique combination) key test"
