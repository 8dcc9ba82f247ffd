"""Runs the pipeline in this process against a persistent Dagster instance, so runs show in the UI.

The run is recorded in the publish log by the same `finish_run` the daemon's run-status sensors call.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import yaml

from ez360.core.settings import Settings
from pipelines.lock import PipelineBusy, busy_message, holder

SELECTABLE = ("ops", "stripe", "erpnext", "files")


@dataclass
class PipelineOutcome:
    success: bool
    run_id: str
    materialized: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    failed_steps: list[str] = field(default_factory=list)
    status: str = ""
    blocked_by: list[str] = field(default_factory=list)
    stage_seconds: dict[str, float] = field(default_factory=dict)

    @property
    def published(self) -> bool:
        return any(key.startswith("published/") for key in self.materialized)


def dagster_yaml(settings: Settings) -> dict:
    config: dict = {"telemetry": {"enabled": False}, "nux": {"enabled": False}}
    if settings.dagster_storage_url:
        config["storage"] = {"postgres": {"postgres_url": settings.dagster_storage_url}}
    return config


def prepare_dagster_home(settings: Settings) -> Path:
    home = settings.dagster_home
    home.mkdir(parents=True, exist_ok=True)
    (home / "dagster.yaml").write_text(yaml.safe_dump(dagster_yaml(settings)))
    os.environ["DAGSTER_HOME"] = str(home)
    return home


def selection_for(defs: dg.Definitions, select: str | None) -> list[dg.AssetKey] | None:
    """`ops`/`stripe`/`erpnext`/`files` = that source's raw tables; a group name (raw_stripe, warehouse,
    published) = its assets; None = everything."""
    if not select:
        return None
    graph = defs.resolve_asset_graph()
    group = select if select not in SELECTABLE else f"raw_{select}"
    keys = [key for key in graph.get_all_asset_keys() if graph.get(key).group_name == group]
    if not keys:
        groups = sorted({graph.get(k).group_name for k in graph.get_all_asset_keys()})
        raise ValueError(f"nothing to run for --select {select!r}: choose a source ({', '.join(SELECTABLE)}) "
                         f"or a group ({', '.join(groups)})")
    return keys


def run_pipeline(settings: Settings, select: str | None = None, full_refresh: bool = False,
                 on_event: Callable[[dg.DagsterEvent], None] | None = None) -> PipelineOutcome:
    info = holder(settings.published_dir)
    if info is not None:
        raise PipelineBusy(busy_message(info))
    prepare_dagster_home(settings)
    from pipelines.definitions import build_definitions  # imported late: loading parses the dbt project
    from pipelines.monitoring import finish_run
    from pipelines.resources import Ez360Resource

    defs = build_definitions(settings)
    resource = Ez360Resource.from_settings(settings)
    tags = {"ez360/trigger": "cli"}
    if full_refresh:
        from pipelines.warehouse.dbt import FULL_REFRESH_TAG
        tags[FULL_REFRESH_TAG] = "true"
    with dg.DagsterInstance.get() as instance:
        job = defs.resolve_job_def("ez360_full_pipeline")
        # step-by-step events stay in the instance (Dagster UI); the terminal shows warnings and errors only
        quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=quiet, tags=tags,
                                        asset_selection=selection_for(defs, select),
                                        resources={"ez360": resource})
        if on_event is not None:
            for event in result.all_events:
                on_event(event)
        outcome = finish_run(instance, result.run_id, resource)
        materialized = sorted({e.asset_key.to_user_string() for e in result.get_asset_materialization_events()})
    failed_checks = sorted(c.replace(":", ":", 1) for c in outcome.failed_checks)
    return PipelineOutcome(result.success and not failed_checks, result.run_id, materialized, failed_checks,
                           outcome.failed_steps, outcome.status, outcome.blocked_by, outcome.stage_seconds)
