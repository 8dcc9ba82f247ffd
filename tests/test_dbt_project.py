"""The dbt project builds the same revenue mart on DuckDB and PostgreSQL, and its tests catch bad raw data."""

from __future__ import annotations

import json
from pathlib import Path

import duckdb
import psycopg2
import pytest
import yaml
from dagster_dbt.asset_utils import default_asset_key_fn
from dbt.cli.main import dbtRunnerResult

from ez360.core.money import CURRENCY_EXPONENTS
from ez360.core.warehouse import Warehouse, parse_warehouse_url
from tests.support.dbt_inprocess import run_dbt
from tests.support.raw_ops_fixture import (
    SAMPLE_REVENUE_MART,
    create_raw_ops,
    insert_rows,
    raw_ops_columns,
    sample_rows,
)

PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
MART = "marts.rpt_revenue_by_company_month"
MART_COLUMNS = [
    "company_id", "company_slug", "company_name", "revenue_month", "currency", "currency_exponent",
    "invoice_count", "net_revenue_minor", "tax_minor", "gross_revenue_minor",
]


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_url(request, tmp_path) -> str:
    """A warehouse URL with nothing in it yet: a DuckDB file, or a fresh PostgreSQL database."""
    if request.param == "duckdb":
        return f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    return request.getfixturevalue("postgres_url")


def dbt_build(url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dbtRunnerResult:
    """`dbt build` in-process against `url`, with target/ and logs under tmp_path."""
    for key, value in parse_warehouse_url(url).dbt_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "dbt_logs"))
    monkeypatch.setenv("DBT_SEND_ANONYMOUS_USAGE_STATS", "false")
    # Only the ops layer and the revenue mart: these tests load raw_ops alone (the whole project is built on
    # the demo universe by tests/test_warehouse_*.py).
    return run_dbt([
        "build", "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
        "--select", "path:models/staging/ops", "+rpt_revenue_by_company_month",
        "--target-path", str(tmp_path / "dbt_target"), "--quiet",
    ])


def statuses(result: dbtRunnerResult) -> dict[str, str]:
    """{node name: status} of every node the build ran."""
    assert result.exception is None, f"dbt crashed: {result.exception}"
    return {r.node.name: str(r.status) for r in result.result.results}


def query(warehouse: Warehouse, sql: str) -> tuple[list[str], list[tuple]]:
    if warehouse.kind == "duckdb":
        con = duckdb.connect(str(warehouse.path), read_only=True)
        try:
            cur = con.execute(sql)
            return [d[0] for d in cur.description], cur.fetchall()
        finally:
            con.close()
    con = psycopg2.connect(warehouse.postgres_dsn())
    try:
        with con.cursor() as cur:
            cur.execute(sql)
            return [d[0] for d in cur.description], cur.fetchall()
    finally:
        con.close()


def test_dbt_build_produces_revenue_by_company_month_and_all_tests_pass(warehouse_url, tmp_path, monkeypatch):
    warehouse = create_raw_ops(warehouse_url)

    result = dbt_build(warehouse_url, tmp_path, monkeypatch)

    ran = statuses(result)
    failing = {name: status for name, status in ran.items() if status not in ("pass", "success")}
    assert result.success and not failing, failing
    assert {"stg_ops__companies", "stg_ops__clients", "stg_ops__invoices", "stg_ops__payments",
            "rpt_revenue_by_company_month", "assert_revenue_mart_reconciles_to_invoices"} <= set(ran)
    assert sum(1 for r in result.result.results if r.node.resource_type == "test") >= 40

    columns, rows = query(warehouse, f"select * from {MART}")
    assert columns == MART_COLUMNS
    figures = sorted(
        (slug, month, currency, exponent, count, net, tax, gross)
        for _, slug, _, month, currency, exponent, count, net, tax, gross in rows
    )
    # Draft and void invoices are excluded; Jan 31 and Feb 1 land in different months; JPY amounts are
    # whole yen (exponent 0) and KWD has three decimals; EUR and USD of one company stay separate rows.
    assert figures == SAMPLE_REVENUE_MART


def test_staging_drops_dlt_columns_and_names_keys_after_the_entity(tmp_path, monkeypatch):
    url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    warehouse = create_raw_ops(url)
    assert dbt_build(url, tmp_path, monkeypatch).success

    for model, key in [("stg_ops__companies", "company_id"), ("stg_ops__clients", "client_id"),
                       ("stg_ops__invoices", "invoice_id"), ("stg_ops__payments", "payment_id")]:
        columns, _ = query(warehouse, f"select * from staging.{model} limit 0")
        assert columns[0] == key
        assert not {"id", "_dlt_load_id", "_dlt_id"} & set(columns), model
    _, amounts = query(warehouse, "select subtotal_minor, tax_minor, total_minor from staging.stg_ops__invoices"
                                  " where invoice_id = 200")
    assert amounts == [(120_000, 12_000, 132_000)]
    assert all(isinstance(v, int) for v in amounts[0])


def test_duplicate_invoice_id_in_raw_data_fails_dbt_build(warehouse_url, tmp_path, monkeypatch):
    warehouse = create_raw_ops(warehouse_url)
    duplicate = next(row for row in sample_rows()["invoices"] if row["id"] == 100)
    insert_rows(warehouse, "invoices", [duplicate])

    result = dbt_build(warehouse_url, tmp_path, monkeypatch)

    ran = statuses(result)
    assert not result.success
    assert ran["unique_stg_ops__invoices_invoice_id"] == "fail"
    assert ran["rpt_revenue_by_company_month"] == "skipped"  # the mart is not rebuilt on bad input


def test_unsupported_currency_in_raw_data_fails_dbt_build(tmp_path, monkeypatch):
    url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    rows = sample_rows()
    next(row for row in rows["invoices"] if row["id"] == 300)["currency"] = "XYZ"
    create_raw_ops(url, rows)

    ran = statuses(dbt_build(url, tmp_path, monkeypatch))

    failed = [name for name, status in ran.items() if status == "fail"]
    assert any(name.startswith("accepted_values_stg_ops__invoices_currency") for name in failed), failed


def test_project_currency_exponents_match_ez360_money():
    project = yaml.safe_load((PROJECT_DIR / "dbt_project.yml").read_text())
    assert project["vars"]["currency_exponents"] == CURRENCY_EXPONENTS

    models = yaml.safe_load((PROJECT_DIR / "models/staging/ops/_ops__models.yml").read_text())
    currency_lists = [
        test["accepted_values"]["arguments"]["values"]
        for model in models["models"] for column in model["columns"]
        if column["name"] in ("currency", "base_currency")
        for test in column.get("data_tests", []) if isinstance(test, dict) and "accepted_values" in test
    ]
    assert len(currency_lists) == 4
    for values in currency_lists:
        assert sorted(values) == sorted(CURRENCY_EXPONENTS)


def test_every_raw_ops_table_is_a_source_whose_dagster_asset_key_is_the_ingest_asset(tmp_path, monkeypatch):
    for key, value in parse_warehouse_url(f"duckdb:///{tmp_path / 'w.duckdb'}").dbt_env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("DBT_LOG_PATH", str(tmp_path / "dbt_logs"))
    result = run_dbt(["parse", "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
                      "--target-path", str(tmp_path / "dbt_target"), "--quiet"])
    assert result.success, result.exception

    manifest = json.loads((tmp_path / "dbt_target" / "manifest.json").read_text())
    sources = {s["name"]: s for s in manifest["sources"].values() if s["source_name"] == "ops"}
    assert set(sources) == set(raw_ops_columns())
    for table, source in sources.items():
        assert source["schema"] == "raw_ops"
        assert default_asset_key_fn(source).path == ["raw_ops", table]
    models = {n["name"]: n for n in manifest["nodes"].values() if n["resource_type"] == "model"}
    layers = {name: node["schema"] for name, node in models.items()}
    assert {"stg_ops__companies": "staging", "stg_ops__clients": "staging", "stg_ops__invoices": "staging",
            "stg_ops__payments": "staging", "rpt_revenue_by_company_month": "marts"}.items() <= layers.items()
    # dbt Labs' layers: stg_<source>__* views in staging, int_* in intermediate, fct_/dim_/rpt_ tables in marts
    for name, schema in layers.items():
        if name == "metricflow_time_spine":  # the semantic layer's day calendar keeps the name MetricFlow expects
            continue
        prefix = name.split("_")[0]
        assert schema == {"stg": "staging", "int": "intermediate"}.get(prefix, "marts"), (name, schema)
        assert prefix in ("stg", "int", "fct", "dim", "rpt"), name
    undocumented = [f"{name}.{column}" for name, node in models.items()
                    for column, spec in node["columns"].items() if not spec["description"]]
    assert all(node["description"] for node in models.values()) and not undocumented, undocumented
