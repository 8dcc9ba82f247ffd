"""dbt models as Dagster assets; dbt tests become asset checks, and dbt sources join the ingest assets.

`DbtProject.prepare_if_dev()` parses the project under `dagster dev`; elsewhere (the CLI, tests, a deployed
code location) the manifest is prepared by the same dagster-dbt preparer when it is missing or older than a
model, so nobody runs `dbt parse` by hand.

Published marts: every model under `dbt_project/models/marts/` (meta `published: false` opts one out). That
list comes from the manifest, so the publish step and the gates (quality/gates.py) can never disagree with
what dbt builds.
"""


import json
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from pipelines.resources import Ez360Resource
from pipelines.sources.common import INGEST_POOL

DBT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
DBT_PROJECT = DbtProject(project_dir=DBT_DIR, profiles_dir=DBT_DIR)
PARTIAL_PARSE = "partial_parse.msgpack"
FULL_REFRESH_TAG = "ez360/full_refresh"
KEEP_RUN_TARGETS = 5


def _dbt_on_path() -> None:
    """dagster-dbt's preparer runs `dbt` from PATH: make it the dbt next to this interpreter (no activated venv)."""
    here = str(Path(sys.executable).parent)
    if shutil.which("dbt") is None or here not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = here + os.pathsep + os.environ.get("PATH", "")


def _manifest_is_stale(project: DbtProject) -> bool:
    manifest = project.manifest_path
    if not manifest.exists():
        return True
    sources = [p for p in DBT_DIR.rglob("*") if p.suffix in (".sql", ".yml", ".csv")
               and "target" not in p.relative_to(DBT_DIR).parts]
    return manifest.stat().st_mtime < max(p.stat().st_mtime for p in sources)


def prepare(project: DbtProject = DBT_PROJECT) -> Path:
    _dbt_on_path()
    project.prepare_if_dev()
    if _manifest_is_stale(project):
        os.environ.setdefault("EZ360_DBT_TARGET", "duckdb")  # parsing resolves the profile, never connects
        project.preparer.prepare(project)
    return project.manifest_path


def dbt_resource() -> DbtCliResource:
    # the dbt next to this interpreter, so the CLI works without an activated virtualenv
    return DbtCliResource(project_dir=DBT_PROJECT, profiles_dir=str(DBT_DIR),
                          dbt_executable=str(Path(sys.executable).parent / "dbt"))


def _is_published(node: Mapping[str, Any]) -> bool:
    return (node.get("resource_type") == "model" and len(node.get("fqn", [])) > 1 and node["fqn"][1] == "marts"
            and (node.get("config", {}).get("meta", {}) or {}).get("published", True) is not False)


def published_marts(manifest_path: Path | None = None) -> list[str]:
    """"schema.table" of every published mart, from dbt's manifest."""
    manifest = json.loads(Path(manifest_path or prepare()).read_text())
    return sorted(f"{n['schema']}.{n['name']}" for n in manifest["nodes"].values() if _is_published(n))


class Ez360DbtTranslator(DagsterDbtTranslator):
    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)  # sources: meta.dagster.asset_key = the ingest asset

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "warehouse"


def _keep_partial_parse(invocation) -> None:
    """dagster-dbt copies target/partial_parse.msgpack into each run's own target path but never back; keep the
    run's (parsed with this deployment's profile), so the next run parses only what changed."""
    produced = Path(invocation.target_path) / PARTIAL_PARSE
    if produced.exists():
        kept = DBT_PROJECT.project_dir / DBT_PROJECT.target_path / PARTIAL_PARSE
        tmp = kept.with_name(f"{PARTIAL_PARSE}.{os.getpid()}.tmp")
        shutil.copyfile(produced, tmp)
        os.replace(tmp, kept)
    _prune_run_targets()


def _prune_run_targets(keep: int = KEEP_RUN_TARGETS) -> None:
    """Each dbt invocation writes its own target folder (warehouse_models-<run>-<id>); keep the newest few."""
    target = DBT_PROJECT.project_dir / DBT_PROJECT.target_path
    runs = sorted((p for p in target.glob("warehouse_models-*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in runs[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def definitions() -> dg.Definitions:
    @dbt_assets(manifest=prepare(), project=DBT_PROJECT, dagster_dbt_translator=Ez360DbtTranslator(),
                pool=INGEST_POOL)
    def warehouse_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, ez360: Ez360Resource):
        os.environ.update(ez360.warehouse().dbt_env())  # profiles.yml reads the target from these
        args = ["build"]
        if context.run.tags.get(FULL_REFRESH_TAG) == "true":
            args.append("--full-refresh")
        invocation = dbt.cli(args, context=context)
        yield from invocation.stream()
        _keep_partial_parse(invocation)

    return dg.Definitions(assets=[warehouse_models], resources={"dbt": dbt_resource()})
