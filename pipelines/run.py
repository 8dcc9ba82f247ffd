"""Runs the full pipeline in this process against a persistent Dagster instance, so runs show in the UI."""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import yaml

from ez360.core.settings import Settings
from ez360.core.warehouse import parse_warehouse_url
from pipelines.publish import record_gate_failure


@dataclass
class PipelineOutcome:
    success: bool
    run_id: str
    materialized: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)
    failed_steps: list[str] = field(default_factory=list)

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


def run_pipeline(settings: Settings) -> PipelineOutcome:
    prepare_dagster_home(settings)
    from pipelines.definitions import defs  # imported late: loading parses the dbt project
    from pipelines.gate_and_publish import GATE_CHECK

    with dg.DagsterInstance.get() as instance:
        job = defs.resolve_job_def("ez360_full_pipeline")
        # step-by-step events stay in the instance (Dagster UI); the terminal shows warnings and errors only
        quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=quiet)
        materialized = sorted({e.asset_key.to_user_string() for e in result.get_asset_materialization_events()})
        failed_checks = sorted(
            f"{e.asset_check_key.asset_key.to_user_string()}:{e.asset_check_key.name}"
            for e in result.get_asset_check_evaluations() if not e.passed
        )
        failed_steps = sorted({e.step_key for e in result.all_events if e.is_step_failure})
        outcome = PipelineOutcome(result.success and not failed_checks, result.run_id, materialized, failed_checks,
                                  failed_steps)
    if not outcome.published and not any(check.endswith(f":{GATE_CHECK}") for check in failed_checks):
        # the gate records its own failures; any other stop before publishing (ingest, dbt and its tests) is
        # said here, so the dashboards keep the last good data and tell why it is not newer
        reasons = [f"step {step}" for step in failed_steps] + [f"check {check}" for check in failed_checks]
        record_gate_failure(parse_warehouse_url(settings.warehouse_url), settings.published_dir, outcome.run_id,
                            reasons or ["run did not complete"])
    return outcome
