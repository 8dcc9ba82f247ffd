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
import uuid
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from pipelines.resources import Ez360Resource
from pipelines.sources.common import INGEST_POOL
from pipelines.warehouse.fingerprints import current_date, fingerprints, missing_relations
from pipelines.warehouse.incremental import Plan, buildable, full_build_reason, incremental_plan, source_tables
from pipelines.warehouse.state import BuildRecord, DbtState, code_digest

DBT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
DBT_PROJECT = DbtProject(project_dir=DBT_DIR, profiles_dir=DBT_DIR)
STEP = "warehouse_models"
REBUILT = "ez360/rebuilt"  # False on the models an incremental run left as they were
FULL_REFRESH_TAG = "ez360/full_refresh"
KEEP_RUN_TARGETS = 8


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


def invoke(dbt: DbtCliResource, args: list[str], state: DbtState, name: str,
           context: dg.AssetExecutionContext | None = None):
    """A dbt invocation in its own target folder, seeded with this warehouse's parse cache, so it parses only
    what changed since the last invocation on the same warehouse (the cache is keyed by the profile)."""
    target = DBT_PROJECT.project_dir / DBT_PROJECT.target_path / f"{name}-{uuid.uuid4().hex[:12]}"
    state.seed_partial_parse(target)
    return dbt.cli(args, context=context, target_path=target)


def finish(invocation, state: DbtState) -> None:
    state.keep_partial_parse(invocation.target_path)
    _prune_run_targets()


def _prune_run_targets(keep: int = KEEP_RUN_TARGETS) -> None:
    """Each dbt invocation writes its own target folder (<step>-<id>); keep the newest few."""
    target = DBT_PROJECT.project_dir / DBT_PROJECT.target_path
    runs = sorted((p for p in target.glob("*-*") if p.is_dir()), key=lambda p: p.stat().st_mtime)
    for old in runs[:-keep]:
        shutil.rmtree(old, ignore_errors=True)


def modified_nodes(dbt: DbtCliResource, state: DbtState) -> tuple[set[str], Path]:
    """dbt's `state:modified+` against the last build's manifest: unique ids, and the manifest of this code."""
    invocation = invoke(dbt, ["ls", "--select", "state:modified+", "--state", str(state.dir), "--resource-type",
                              "model", "seed", "snapshot", "--output", "json", "--output-keys", "unique_id"],
                        state, "dbt_ls")
    found = set()
    for event in invocation.stream_raw_events():
        info = event.raw_event.get("info", {})
        if info.get("name") == "PrintEvent":
            found.add(json.loads(info["msg"])["unique_id"])
    invocation.wait()
    finish(invocation, state)
    return found, Path(invocation.target_path) / "manifest.json"


def build_warehouse(context: dg.AssetExecutionContext, dbt: DbtCliResource, ez360: Ez360Resource):
    """`dbt build` of what changed (pipelines/warehouse/incremental.py); the models not rebuilt are reported
    as unchanged outputs, so the gates and the one publish step downstream run as after a full build."""
    warehouse = ez360.warehouse()
    os.environ.update(warehouse.dbt_env())  # profiles.yml reads the target from these
    full_refresh = context.run.tags.get(FULL_REFRESH_TAG) == "true"
    manifest = json.loads(DBT_PROJECT.manifest_path.read_text())
    state = DbtState(ez360.settings().var_dir, ez360.warehouse_url)
    if context.is_subset:  # a hand-picked subset: build it as asked; the state stays that of the last full set
        invocation = invoke(dbt, ["build", *(["--full-refresh"] if full_refresh else [])], state, STEP, context)
        yield from invocation.stream()
        finish(invocation, state)
        return
    last = state.last_build()
    today = current_date(warehouse)
    prints = fingerprints(warehouse, sorted(set(source_tables(manifest).values())))
    digest = code_digest(DBT_DIR)
    missing = missing_relations(warehouse, _relations(state.manifest_path)) if last else []
    reason = full_build_reason(last, full_refresh, today, missing)
    base_manifest = state.manifest_path
    if reason:
        plan = Plan(full=True, reason=reason, build=frozenset(buildable(manifest)))
    else:
        modified: set[str] = set()
        try:
            if digest != last.code_digest:
                modified, base_manifest = modified_nodes(dbt, state)
            plan = incremental_plan(manifest, last, prints, modified)
        except Exception as exc:  # e.g. a manifest an older dbt wrote: in doubt, build everything
            context.log.warning(f"dbt: cannot compare with the last build ({exc}); building everything")
            plan = Plan(full=True, reason="comparison with the last build failed", build=frozenset(buildable(manifest)))
    context.log.info(f"dbt: {'full build' if plan.full else 'incremental build'} ({plan.reason}): "
                     f"{len(plan.build)} of {len(buildable(manifest))} models rebuilt"
                     + (f"; changed raw tables: {', '.join(plan.changed_tables)}" if plan.changed_tables else ""))
    # the models left as they were come first (nothing they depend on is rebuilt) and in dependency order,
    # as Dagster wants a multi-asset's outputs; the gates and the one publish step downstream then run as
    # after a full build
    translator = Ez360DbtTranslator()
    for uid in plan.unchanged(manifest):
        key = translator.get_asset_key(manifest["nodes"][uid])
        if key in context.selected_asset_keys:
            # its dbt tests are not re-run (Dagster notes each blocking one "emitted no result"): they passed in
            # the last build, which becomes the base only when it succeeded, and nothing they read changed
            yield dg.Output(None, output_name=context.assets_def.get_output_name_for_asset_key(key),
                            metadata={REBUILT: False, "ez360/plan": plan.reason})
    if plan.build:
        args = ["build", *(["--full-refresh"] if full_refresh else []),
                *([] if plan.full else ["--exclude", " ".join(plan.exclude(manifest))])]
        invocation = invoke(dbt, args, state, STEP, context)
        yield from invocation.stream()
        finish(invocation, state)
        base_manifest = Path(invocation.target_path) / "manifest.json"
    state.save_build(BuildRecord(context.run.run_id, today, digest, prints), base_manifest)


def _relations(manifest_path: Path) -> list[str]:
    manifest = json.loads(manifest_path.read_text())
    return [f"{n['schema']}.{n.get('alias') or n['name']}" for n in buildable(manifest).values()]


def definitions() -> dg.Definitions:
    @dbt_assets(manifest=prepare(), project=DBT_PROJECT, dagster_dbt_translator=Ez360DbtTranslator(),
                pool=INGEST_POOL, name=STEP)
    def warehouse_models(context: dg.AssetExecutionContext, dbt: DbtCliResource, ez360: Ez360Resource):
        yield from build_warehouse(context, dbt, ez360)

    return dg.Definitions(assets=[warehouse_models], resources={"dbt": dbt_resource()})
