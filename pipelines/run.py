"""Runs the pipeline in this process against a persistent Dagster instance, so runs show in the UI.

The run is recorded in the publish log by the same `finish_run` the daemon's run-status sensors call.
"""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import uuid
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
    rebuilt_models: list[str] = field(default_factory=list)  # dbt models this run built
    unchanged_models: list[str] = field(default_factory=list)  # left as they were (incremental run)

    @property
    def published(self) -> bool:
        return any(key.startswith("published/") for key in self.materialized)


def dagster_yaml(settings: Settings) -> dict:
    """The instance: local storage under var/ (or PostgreSQL), and one run at a time from the daemon's queue,
    with the warehouse-writer pool limited to one (DuckDB has a single writer): a scheduled run waits in the
    queue while another runs; an in-process CLI run is refused by the run lock (pipelines/lock.py)."""
    config: dict = {"telemetry": {"enabled": False}, "nux": {"enabled": False},
                    "concurrency": {"runs": {"max_concurrent_runs": 1},
                                    "pools": {"granularity": "run", "default_limit": 1}},
                    # a daemon-launched run whose process died is marked failed (and so recorded by the sensors)
                    "run_monitoring": {"enabled": True, "start_timeout_seconds": 180, "max_resume_run_attempts": 0}}
    if settings.dagster_storage_url:
        config["storage"] = {"postgres": {"postgres_url": settings.dagster_storage_url}}
    else:  # Dagster's SQLite files where its default puts them, the event log with pooled connections
        config["event_log_storage"] = {
            "module": "pipelines.dagster_storage", "class": "PooledSqliteEventLogStorage",
            "config": {"base_dir": str(settings.dagster_home / "history" / "runs")}}
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


UNRUN_CHECKS_LOGGER = "dagster._core.execution.plan.active"


class _UnrunChecks(logging.Filter):
    """An incremental run leaves the dbt tests of unchanged models unrun, by design; Dagster warns once per such
    blocking check ("emitted no result"): hundreds of lines that say nothing on the terminal."""

    def filter(self, record: logging.LogRecord) -> bool:
        return "emitted no result" not in record.getMessage()


def _quiet_unrun_checks() -> None:
    log = logging.getLogger(UNRUN_CHECKS_LOGGER)
    if not any(isinstance(f, _UnrunChecks) for f in log.filters):
        log.addFilter(_UnrunChecks())


class _Progress:
    """Reports each step as it starts and ends, read from the instance's event log while the run executes."""

    _KINDS = {"STEP_START": "running", "STEP_SUCCESS": "done", "STEP_FAILURE": "FAILED", "STEP_SKIPPED": "skipped"}

    def __init__(self, instance: dg.DagsterInstance, token: str, report: Callable[[str], None]):
        self.instance, self.token, self.report = instance, token, report
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._watch, daemon=True)

    def __enter__(self) -> _Progress:
        self.thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.thread.join(timeout=10)

    def _watch(self) -> None:
        seen = 0
        run_id = None
        while not self.stop.wait(0.5):
            if run_id is None:
                runs = self.instance.get_runs(filters=dg.RunsFilter(tags={"ez360/cli_token": self.token}), limit=1)
                run_id = runs[0].run_id if runs else None
                continue
            entries = [e for e in self.instance.all_logs(run_id) if e.dagster_event is not None
                       and e.dagster_event.event_type_value in self._KINDS]
            for entry in entries[seen:]:
                event = entry.dagster_event
                self.report(f"{event.step_key}: {self._KINDS[event.event_type_value]}")
            seen = len(entries)


def _fail_abandoned_cli_runs(instance: dg.DagsterInstance, resource) -> None:
    """A CLI run still "started" while nobody holds the run lock was killed: record it as failed."""
    from pipelines.monitoring import finish_run

    for run in instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED],
                                                       tags={"ez360/trigger": "cli"})):
        instance.report_run_failed(run, "the process running it stopped before the run finished (killed?)")
        finish_run(instance, run.run_id, resource, alert=False)


def run_pipeline(settings: Settings, select: str | None = None, full_refresh: bool = False,
                 progress: Callable[[str], None] | None = None) -> PipelineOutcome:
    """Run the whole pipeline (or `select`: a source or an asset group) in this process; refused with
    PipelineBusy while another run holds the warehouse."""
    info = holder(settings.published_dir)
    if info is not None:
        raise PipelineBusy(busy_message(info))
    prepare_dagster_home(settings)
    from pipelines.definitions import build_definitions  # imported late: loading parses the dbt project
    from pipelines.monitoring import finish_run
    from pipelines.resources import Ez360Resource

    defs = build_definitions(settings)
    resource = Ez360Resource.from_settings(settings)
    _quiet_unrun_checks()
    tags = {"ez360/trigger": "cli", "ez360/cli_token": uuid.uuid4().hex}
    if full_refresh:
        from pipelines.warehouse.dbt import FULL_REFRESH_TAG
        tags[FULL_REFRESH_TAG] = "true"
    with dg.DagsterInstance.get() as instance:
        _fail_abandoned_cli_runs(instance, resource)
        job = defs.resolve_job_def("ez360_full_pipeline")
        # step-by-step events stay in the instance (Dagster UI); the terminal shows warnings and errors only
        quiet = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}
        watcher = _Progress(instance, tags["ez360/cli_token"], progress) if progress else contextlib.nullcontext()
        with watcher:
            result = job.execute_in_process(instance=instance, raise_on_error=False, run_config=quiet, tags=tags,
                                            asset_selection=selection_for(defs, select))
        outcome = finish_run(instance, result.run_id, resource)
        events = result.get_asset_materialization_events()
        materialized = sorted({e.asset_key.to_user_string() for e in events})
    failed_checks = outcome.failed_checks
    rebuilt, unchanged = dbt_rebuilds(defs, events)
    return PipelineOutcome(result.success and not failed_checks, result.run_id, materialized, failed_checks,
                           outcome.failed_steps, outcome.status, outcome.blocked_by, outcome.stage_seconds,
                           rebuilt, unchanged)


def dbt_rebuilds(defs: dg.Definitions, events: list) -> tuple[list[str], list[str]]:
    """The dbt models a run rebuilt, and those its incremental build left unchanged."""
    from pipelines.warehouse.dbt import REBUILT

    graph = defs.resolve_asset_graph()
    rebuilt, unchanged = set(), set()
    for event in events:
        if graph.get(event.asset_key).group_name != "warehouse":
            continue
        metadata = event.step_materialization_data.materialization.metadata
        kept = REBUILT in metadata and metadata[REBUILT].value is False
        (unchanged if kept else rebuilt).add(event.asset_key.to_user_string())
    return sorted(rebuilt), sorted(unchanged)
