"""dbt models as Dagster assets; dbt tests become asset checks, and sources join the ingest assets."""


import os
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from pipelines.settings_resource import Ez360Settings

DBT_DIR = Path(__file__).resolve().parent.parent / "dbt_project"
DBT_PROJECT = DbtProject(project_dir=DBT_DIR, profiles_dir=DBT_DIR)


def dbt_resource() -> DbtCliResource:
    # the dbt next to this interpreter, so the CLI works without an activated virtualenv
    return DbtCliResource(project_dir=DBT_PROJECT, profiles_dir=str(DBT_DIR),
                          dbt_executable=str(Path(sys.executable).parent / "dbt"))


def ensure_manifest(project: DbtProject = DBT_PROJECT) -> Path:
    """Parse the project when the manifest is missing or older than any model, macro or config file."""
    manifest = project.manifest_path
    sources = [p for p in DBT_DIR.rglob("*") if p.suffix in (".sql", ".yml", ".csv") and "target" not in p.parts]
    if manifest.exists() and manifest.stat().st_mtime >= max(p.stat().st_mtime for p in sources):
        return manifest
    # parsing needs a resolvable profile but never connects, so any target will do
    os.environ.setdefault("EZ360_DBT_TARGET", "duckdb")
    dbt_resource().cli(["parse", "--quiet"], target_path=project.target_path, raise_on_error=True).wait()
    return manifest


class Ez360DbtTranslator(DagsterDbtTranslator):
    def get_asset_key(self, dbt_resource_props: Mapping[str, Any]) -> dg.AssetKey:
        if dbt_resource_props["resource_type"] in ("model", "seed", "snapshot"):
            return dg.AssetKey([dbt_resource_props["schema"], dbt_resource_props["name"]])
        return super().get_asset_key(dbt_resource_props)

    def get_group_name(self, dbt_resource_props: Mapping[str, Any]) -> str | None:
        return "warehouse"


@dbt_assets(manifest=ensure_manifest(), project=DBT_PROJECT, dagster_dbt_translator=Ez360DbtTranslator())
def warehouse_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, ez360: Ez360Settings):
    os.environ.update(ez360.warehouse().dbt_env())  # profiles.yml reads the target from these
    yield from dbt.cli(["build"], context=context).stream()
