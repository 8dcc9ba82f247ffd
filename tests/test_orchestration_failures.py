"""Failures on every path, without the CLI: a scheduled run whose sandboxes are down is recorded by the
run-failure sensor as partial, shown by `ez360 pipeline status`, alerted by email (aiosmtpd) and webhook (a local
HTTP server); stale data alerts once; a second run while one holds the warehouse is refused."""

from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
from http.server import ThreadingHTTPServer
from pathlib import Path

import dagster as dg
import pytest
import sentry_sdk
from dagster._core.events import DagsterEventType
from typer.testing import CliRunner

from ez360.cli.app import app
from ez360.core.health import HealthStore
from ez360.core.published import snapshot_path
from pipelines.definitions import build_definitions
from pipelines.lock import PipelineBusy, run_lock
from pipelines.monitoring import record_failed_runs, stale_data_sensor
from pipelines.resources import Ez360Resource
from pipelines.run import prepare_dagster_home, run_pipeline
from tests.support.migrated import migrate
from tests.support.platform import configure, free_port
from tests.support.security_world import smtp_server
from tests.support.webhook import Webhook
from tests.test_security_sentry import Envelopes
from tests.test_security_sentry import _events as sentry_events

ALERTS_TO = "data-team@example.test"
REPO_ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def failed_scheduled_run(tmp_path_factory):
    """The hourly schedule's run with the Stripe and ERPNext sandboxes stopped (nothing listens on their
    ports); the ops DB is up but empty. Evaluated by the run-failure sensor as the daemon would."""
    mp = pytest.MonkeyPatch()
    var = tmp_path_factory.mktemp("failing") / "var"
    smtp_port = free_port()
    Envelopes.received = []
    sentry = ThreadingHTTPServer(("127.0.0.1", 0), Envelopes)
    threading.Thread(target=sentry.serve_forever, daemon=True).start()
    with smtp_server(smtp_port) as inbox, Webhook() as hook:
        settings = configure(mp, var, EZ360_INGEST_MAX_ATTEMPTS="1", EZ360_SMTP_PORT=str(smtp_port),
                             EZ360_ALERT_EMAIL_TO=ALERTS_TO, EZ360_ALERT_WEBHOOK_URL=hook.url,
                             EZ360_SENTRY_DSN=f"http://publickey@127.0.0.1:{sentry.server_address[1]}/1")
        migrate(settings.database_url)
        defs = build_definitions(settings)
        resource = Ez360Resource.from_settings(settings)
        instance = dg.DagsterInstance.ephemeral()
        job = defs.resolve_job_def("ez360_full_pipeline")
        result = job.execute_in_process(instance=instance, raise_on_error=False, resources={"ez360": resource},
                                        tags={"dagster/schedule_name": "hourly_refresh"})
        run = instance.get_run_by_id(result.run_id)
        [failure] = instance.get_records_for_run(result.run_id, of_type=DagsterEventType.RUN_FAILURE).records
        with dg.build_run_status_sensor_context(
                sensor_name="record_failed_runs", dagster_event=failure.event_log_entry.dagster_event,
                dagster_instance=instance, dagster_run=run, resources={"ez360": resource}) as context:
            record_failed_runs(context.for_run_failure())
        sentry_sdk.flush(timeout=10)
        yield settings, resource, result, inbox, hook, mp
    sentry_sdk.get_client().close()
    sentry_sdk.init()  # no DSN: Sentry off again for the rest of the session
    sentry.shutdown()
    sentry.server_close()
    mp.undo()


def test_a_scheduled_run_with_sources_down_is_recorded_as_partial_without_the_cli(failed_scheduled_run):
    settings, _resource, result, _inbox, _hook, _mp = failed_scheduled_run
    assert not result.success

    store = HealthStore.from_settings(settings)
    run = store.run(result.run_id)
    assert run["status"] == "partial" and not run["published"]
    assert run["trigger"] == "schedule:hourly_refresh"
    assert "source stripe" in run["blocked_by"] and "source erpnext" in run["blocked_by"]
    assert {"ingest:ops", "ingest:stripe", "ingest:erpnext"} <= set(run["stage_seconds"])
    sources = {s["source"]: s for s in store.source_status()}
    assert sources["ops"]["last_success_at"] is not None and sources["ops"]["last_error"] is None
    assert sources["stripe"]["last_success_at"] is None and "Connection refused" in sources["stripe"]["last_error"]
    assert not snapshot_path(settings.published_dir).exists()  # nothing was published
    store.close()


def test_pipeline_status_names_the_failed_run_and_each_sources_freshness(failed_scheduled_run):
    settings, _resource, result, _inbox, _hook, _mp = failed_scheduled_run

    out = CliRunner().invoke(app, ["pipeline", "status"], env={"COLUMNS": "250"})

    assert out.exit_code == 0, out.output
    assert "published: nothing yet" in out.output
    assert result.run_id[:8] in out.output and "partial" in out.output and "schedule:hourly_refresh" in out.output
    assert "source stripe" in out.output
    stripe_row = next(line for line in out.output.splitlines() if line.strip("│ ").startswith("stripe"))
    assert "never" in stripe_row
    stripe_error = next(line for line in out.output.splitlines() if line.startswith("stripe last error:"))
    assert "Connection refused" in stripe_error


def test_the_failed_run_is_alerted_by_email_and_webhook(failed_scheduled_run):
    _settings, _resource, result, inbox, hook, _mp = failed_scheduled_run

    [mail] = inbox.messages
    assert mail["To"] == ALERTS_TO and "partial" in mail["Subject"] and "source stripe" in mail["Subject"]
    assert result.run_id in mail.get_content() and "last published data" in mail.get_content()
    [post] = hook.posts
    assert "source erpnext" in post["text"] and result.run_id in post["text"]


def test_the_failed_run_is_reported_to_sentry(failed_scheduled_run):
    _settings, _resource, result, _inbox, _hook, _mp = failed_scheduled_run

    messages = [e.get("message") or e.get("logentry", {}).get("message", "") for e in sentry_events(Envelopes.received)]

    assert any(result.run_id in m and "partial" in m and "source stripe" in m for m in messages), messages


def test_stale_data_is_alerted_once_until_it_recovers(failed_scheduled_run):
    _settings, resource, _result, inbox, hook, _mp = failed_scheduled_run
    sensor = stale_data_sensor(("ops", "stripe", "erpnext", "files"))
    before_mail, before_posts = len(inbox.messages), len(hook.posts)

    with dg.build_sensor_context(resources={"ez360": resource}) as first:
        sensor(first)
    with dg.build_sensor_context(resources={"ez360": resource}, cursor=first.cursor) as again:
        sensor(again)

    new_mail = inbox.messages[before_mail:]
    assert len(new_mail) == 1 and len(hook.posts) == before_posts + 1
    subject = new_mail[0]["Subject"]
    assert "stale data" in subject and "source stripe" in subject and "published data" in subject
    assert "source ops" not in subject  # loaded a moment ago


def test_a_second_run_while_one_holds_the_warehouse_is_refused(failed_scheduled_run):
    settings, resource, _result, _inbox, _hook, _mp = failed_scheduled_run
    with run_lock(settings.published_dir, "run-holding-the-warehouse"):
        with pytest.raises(PipelineBusy, match="another pipeline run is in progress.*run-holding-the-warehouse"):
            run_pipeline(settings)
        defs = build_definitions(settings)  # a scheduled run launched meanwhile fails at once, saying why
        result = defs.resolve_job_def("ez360_full_pipeline").execute_in_process(
            instance=dg.DagsterInstance.ephemeral(), raise_on_error=False, resources={"ez360": resource})
    assert not result.success
    assert not any(e.is_step_start for e in result.all_events)
    [refusal] = [e for e in result.all_events if e.event_type_value == "RESOURCE_INIT_FAILURE"]
    assert "another pipeline run is in progress (run run-holding-the-warehouse" in str(refusal.event_specific_data)


def test_a_killed_cli_run_is_recorded_as_failed_by_the_next_run(failed_scheduled_run, monkeypatch):
    settings, _resource, _result, _inbox, _hook, mp = failed_scheduled_run
    hung = socket.socket()  # Stripe "answers" by accepting and never replying: the run hangs in its ingest
    hung.bind(("127.0.0.1", 0))
    hung.listen(8)
    monkeypatch.setenv("EZ360_STRIPE_API_BASE", f"http://127.0.0.1:{hung.getsockname()[1]}")
    prepare_dagster_home(settings)
    instance = dg.DagsterInstance.get()  # its storage created before the worker's: two at once can fail
    worker = subprocess.Popen([sys.executable, "-c", "from ez360.core.settings import Settings\n"
                               "from pipelines.run import run_pipeline\n"
                               "run_pipeline(Settings(), select='stripe')"],
                              cwd=REPO_ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        with instance:
            deadline = time.monotonic() + 120
            started = []
            while not started and time.monotonic() < deadline and worker.poll() is None:
                started = instance.get_runs(filters=dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED]))
                time.sleep(0.05)  # poll interval while waiting for the state
            assert started, f"the worker's run never started (exit {worker.poll()})"
            store = HealthStore.from_settings(settings)
            while store.run(started[0].run_id) is None and time.monotonic() < deadline:
                time.sleep(0.05)  # the ingest step has begun once its run row exists
    finally:
        worker.kill()
        worker.wait(timeout=30)
        hung.close()

    run_pipeline(settings, select="files")  # the next run finds the killed one and records it

    killed = store.run(started[0].run_id)
    assert killed["status"] == "failed" and killed["finished_at"] is not None
    store.close()
