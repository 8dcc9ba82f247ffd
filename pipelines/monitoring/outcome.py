"""What a finished run did, read back from Dagster's event log and written to the publish log.

The same function serves the run-status sensors (scheduled, UI-started and sensor-started runs, evaluated by
the daemon) and the CLI (`ez360 pipeline run`, right after its in-process run), so every path is recorded
the same way. Recording twice is harmless: the row is upserted.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import dagster as dg
from dagster._core.events import DagsterEventType

from ez360.core.health import CANCELED, FAILED, GATE_FAILED, PARTIAL, PUBLISHED, SUCCEEDED, HealthStore
from pipelines.publishing import PUBLISH_KEY

INGEST_PREFIX = "ingest_"
_STAGE_EVENTS = {DagsterEventType.STEP_START, DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE}


@dataclass
class RunOutcome:
    run_id: str
    job_name: str
    trigger: str
    status: str
    published: bool
    started_at: datetime | None
    finished_at: datetime | None
    blocked_by: list[str] = field(default_factory=list)
    failed_steps: list[str] = field(default_factory=list)
    failed_sources: list[str] = field(default_factory=list)
    failed_checks: list[str] = field(default_factory=list)  # "<asset>:<check name>"
    stage_seconds: dict[str, float] = field(default_factory=dict)
    error: str | None = None


def trigger_of(run: dg.DagsterRun) -> str:
    tags = run.tags
    if "dagster/schedule_name" in tags:
        return f"schedule:{tags['dagster/schedule_name']}"
    if "dagster/sensor_name" in tags:
        return f"sensor:{tags['dagster/sensor_name']}"
    if "ez360/trigger" in tags:
        return tags["ez360/trigger"]
    return "ui"


def stage_of(step_key: str) -> str:
    if step_key.startswith(INGEST_PREFIX):
        return "ingest:" + step_key.removeprefix(INGEST_PREFIX)
    if "gates" in step_key:
        return "gates"
    if step_key.startswith("freshness_check"):
        return "freshness"
    if "published" in step_key or "publish" in step_key:
        return "publish"
    if "warehouse_models" in step_key:
        return "dbt"
    return step_key


def _ts(record) -> datetime:
    return datetime.fromtimestamp(record.event_log_entry.timestamp, UTC)


def read_outcome(instance: dg.DagsterInstance, run_id: str) -> RunOutcome:
    run = instance.get_run_by_id(run_id)
    records = instance.all_logs(run_id)
    starts: dict[str, float] = {}
    stages: dict[str, float] = {}
    failed_steps: list[str] = []
    error = None
    failed_checks: list[str] = []
    published = False
    for entry in records:
        event = entry.dagster_event
        if event is None:
            continue
        step = event.step_key
        if event.event_type == DagsterEventType.STEP_START and step:
            starts[step] = entry.timestamp
        elif event.event_type in (DagsterEventType.STEP_SUCCESS, DagsterEventType.STEP_FAILURE) and step:
            if step in starts:
                stage = stage_of(step)
                stages[stage] = round(stages.get(stage, 0.0) + entry.timestamp - starts[step], 3)
            if event.event_type == DagsterEventType.STEP_FAILURE:
                failed_steps.append(step)
                if error is None:
                    info = event.step_failure_data.error
                    error = (info.message.strip().splitlines() or [""])[0] if info else None
        elif event.event_type == DagsterEventType.ASSET_CHECK_EVALUATION:
            evaluation = event.event_specific_data
            if not evaluation.passed:
                failed_checks.append(f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}")
        elif event.event_type == DagsterEventType.ASSET_MATERIALIZATION:
            if event.asset_key == PUBLISH_KEY:
                published = True
    failed_sources = sorted(s.removeprefix(INGEST_PREFIX) for s in failed_steps if s.startswith(INGEST_PREFIX))
    gate_failures = sorted(c for c in failed_checks if ":gate_" in c)
    blocked_by: list[str] = []
    if not published:
        blocked_by += [f"source {s}" for s in failed_sources]
        blocked_by += [f"gate {c.split(':', 1)[1]} on {c.split(':', 1)[0].replace('/', '.')}" for c in gate_failures]
        blocked_by += [f"step {s}" for s in failed_steps if not s.startswith(INGEST_PREFIX) and "gates" not in s]
    if run.status == dg.DagsterRunStatus.CANCELED:
        status = CANCELED
        blocked_by.append("run canceled")
    elif failed_sources:
        # some sources loaded, some failed: partial (never "published" alone); none loaded: failed
        started_sources = {s for s in starts if s.startswith(INGEST_PREFIX)}
        status = FAILED if len(failed_sources) == len(started_sources) else PARTIAL
    elif published:
        status = PUBLISHED
    elif gate_failures:
        status = GATE_FAILED
    elif failed_steps or run.status == dg.DagsterRunStatus.FAILURE:
        status = FAILED
    else:
        status = SUCCEEDED
    stats = instance.get_run_stats(run_id)
    return RunOutcome(
        run_id=run_id, job_name=run.job_name, trigger=trigger_of(run), status=status, published=published,
        started_at=datetime.fromtimestamp(stats.start_time, UTC) if stats.start_time else None,
        finished_at=datetime.fromtimestamp(stats.end_time, UTC) if stats.end_time else None,
        blocked_by=blocked_by, failed_steps=sorted(failed_steps), failed_sources=failed_sources,
        failed_checks=sorted(failed_checks), stage_seconds=stages, error=error)


def record_outcome(instance: dg.DagsterInstance, run_id: str, store: HealthStore) -> RunOutcome:
    outcome = read_outcome(instance, run_id)
    partial_loads = [load["source"] for load in store.source_loads(run_id) if load["status"] == "partial"]
    if partial_loads and outcome.status in (PUBLISHED, SUCCEEDED):
        outcome.status = PARTIAL  # a source loaded only in part: never "published" alone
        outcome.blocked_by = outcome.blocked_by or []
        outcome.error = outcome.error or "partial load: " + ", ".join(partial_loads)
    store.upsert_run(run_id, job_name=outcome.job_name, trigger=outcome.trigger, status=outcome.status,
                     started_at=outcome.started_at, finished_at=outcome.finished_at,
                     blocked_by=outcome.blocked_by, failed_steps=outcome.failed_steps,
                     stage_seconds=outcome.stage_seconds, error=outcome.error)
    return outcome
