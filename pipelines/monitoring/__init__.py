"""Failures on every path: run-status sensors write each finished run to the publish log and alert.

Scheduled, sensor-started and UI-started runs are evaluated by the daemon's sensors; the CLI calls the same
`finish_run` right after its in-process run. A stale-data sensor alerts when a source or the published
data is older than its threshold.
"""


import json
from datetime import timedelta

import dagster as dg

from ez360.core.health import FINAL_STATUSES, PUBLISHED, SUCCEEDED, HealthStore, now
from pipelines.monitoring.alerts import Alert, send_alert
from pipelines.monitoring.outcome import RunOutcome, record_outcome
from pipelines.publish import record_gate_failure
from pipelines.resources import Ez360Resource

STALE_SENSOR = "stale_data_sensor"


def describe(outcome: RunOutcome, store: HealthStore) -> Alert:
    lines = [f"run {outcome.run_id} ({outcome.job_name}, {outcome.trigger}) finished: {outcome.status}"]
    if outcome.blocked_by:
        lines.append("publish blocked by: " + ", ".join(outcome.blocked_by))
    for gate in store.failed_gates(outcome.run_id):
        for failure in gate["failures"] or []:
            column = f"[{failure['column']}]" if failure.get("column") else ""
            lines.append(f"- gate {gate['check_name']} on {gate['table_name']}: {failure['expectation']}{column} "
                         f"{failure.get('unexpected_count') or ''} failing, e.g. keys {failure.get('sample_keys')}")
    if outcome.error:
        lines.append(f"error: {outcome.error}")
    lines.append("The dashboards keep showing the last published data.")
    kind = "gate failed" if outcome.status == "gate_failed" else outcome.status
    return Alert(subject=f"pipeline run {kind}: {', '.join(outcome.blocked_by) or outcome.status}",
                 body="\n".join(lines))


def finish_run(instance: dg.DagsterInstance, run_id: str, ez360: Ez360Resource, alert: bool = True) -> RunOutcome:
    """Record a finished run in the publish log (once for the legacy status too) and alert when it failed."""
    store = ez360.health()
    try:
        before = store.run(run_id)
        outcome = record_outcome(instance, run_id, store)
        first_time = before is None or before.get("status") not in FINAL_STATUSES
        if outcome.status not in (PUBLISHED, SUCCEEDED) and first_time:
            record_gate_failure(ez360.warehouse(), ez360.published_path, run_id,
                                outcome.blocked_by or [f"run {outcome.status}"])
            if alert:
                settings = ez360.settings()
                _report_to_sentry(settings, outcome)
                send_alert(settings, describe(outcome, store))
        return outcome
    finally:
        store.close()


def _report_to_sentry(settings, outcome: RunOutcome) -> None:
    if not settings.sentry_dsn:
        return
    import sentry_sdk

    from ez360.core.observability import init_sentry

    init_sentry(settings, "pipelines")
    sentry_sdk.capture_message(f"EZ360 pipeline run {outcome.run_id} {outcome.status}: "
                               f"{', '.join(outcome.blocked_by)} {outcome.error or ''}", level="error")


@dg.run_failure_sensor(name="record_failed_runs", default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Writes every failed run to the publish log and alerts")
def record_failed_runs(context: dg.RunFailureSensorContext, ez360: Ez360Resource):
    outcome = finish_run(context.instance, context.dagster_run.run_id, ez360)
    context.log.info(f"recorded run {outcome.run_id}: {outcome.status}")


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, name="record_finished_runs",
                      default_status=dg.DefaultSensorStatus.RUNNING,
                      description="Writes every successful run (published or partial) to the publish log")
def record_finished_runs(context: dg.RunStatusSensorContext, ez360: Ez360Resource):
    outcome = finish_run(context.instance, context.dagster_run.run_id, ez360)
    context.log.info(f"recorded run {outcome.run_id}: {outcome.status}")


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.CANCELED, name="record_canceled_runs",
                      default_status=dg.DefaultSensorStatus.RUNNING,
                      description="Writes every canceled run to the publish log")
def record_canceled_runs(context: dg.RunStatusSensorContext, ez360: Ez360Resource):
    finish_run(context.instance, context.dagster_run.run_id, ez360, alert=False)


def stale_findings(store: HealthStore, ez360: Ez360Resource, sources: tuple[str, ...]) -> list[str]:
    at = now()
    findings = []
    known = {s["source"]: s for s in store.source_status()}
    for source in sources:
        last = (known.get(source) or {}).get("last_success_at")
        if last is None or at - last > timedelta(minutes=ez360.source_stale_after_minutes):
            findings.append(f"source {source}: last successful load {last.isoformat() if last else 'never'}")
    published = store.last_published()
    last = published["published_at"] if published else None
    if last is None or at - last > timedelta(minutes=ez360.published_stale_after_minutes):
        findings.append(f"published data: last published {last.isoformat() if last else 'never'}")
    return findings


def stale_data_sensor(sources: tuple[str, ...]) -> dg.SensorDefinition:
    @dg.sensor(name=STALE_SENSOR, minimum_interval_seconds=600, default_status=dg.DefaultSensorStatus.RUNNING,
               description="Alerts once when a source or the published data goes stale (and again after recovery)")
    def _sensor(context: dg.SensorEvaluationContext, ez360: Ez360Resource):
        store = ez360.health()
        try:
            findings = stale_findings(store, ez360, sources)
        finally:
            store.close()
        already = set(json.loads(context.cursor)) if context.cursor else set()
        new = [f for f in findings if f.split(":")[0] not in already]
        context.update_cursor(json.dumps(sorted({f.split(":")[0] for f in findings})))
        if not new:
            return dg.SkipReason("nothing newly stale" if findings else "all sources and published data fresh")
        send_alert(ez360.settings(), Alert(subject="stale data: " + ", ".join(f.split(":")[0] for f in new),
                                           body="\n".join(new)))
        return dg.SkipReason(f"alerted: {'; '.join(new)}")

    return _sensor


def definitions(sources: tuple[str, ...]) -> dg.Definitions:
    return dg.Definitions(sensors=[record_failed_runs, record_finished_runs, record_canceled_runs,
                                   stale_data_sensor(sources)])
