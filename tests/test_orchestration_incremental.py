"""Incremental runs rebuild only what changed, and publish what a full build would.

One seeded world (embedded defaults; tests/support/embedded_world.py, shared with the whole slice), three runs
of `ez360 pipeline run`'s code: the first builds everything (no previous build), the second has no new data, the
third follows one new payment in the ops DB. Before the third, a CLI run is killed (kill -9) in the middle of
dbt, the payment's staging model rebuilt and the marts after it not yet. The published tables after the third
are compared, row for row, with a full `dbt run --full-refresh` of a copy of the same warehouse: a crash
mid-build leaves nothing the next run trusts.
"""

from __future__ import annotations

import json
import logging
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import pytest
from dagster import DagsterInstance
from dagster._core.events import DagsterEventType
from sqlalchemy import select
from typer.testing import CliRunner

from ez360.cli.app import app, sandboxes_running
from ez360.core.health import HealthStore
from ez360.core.published import snapshot_path
from ez360.core.warehouse import parse_warehouse_url
from operational_api.db.models import Client, Company
from operational_api.services import payments
from pipelines.run import UNRUN_CHECKS_LOGGER, run_pipeline
from pipelines.warehouse.dbt import DBT_DIR, dbt_resource, invoke, published_marts
from pipelines.warehouse.state import DbtState
from tests.support.integrity import session_scope
from tests.support.killed_run import kill_cli_run_during_dbt

pytestmark = pytest.mark.slow
NEW_PAYMENT_MINOR = 4242_00
DAGSTER_WARNINGS: list[str] = []  # what Dagster's step scheduler logged during the runs, after our filter


@dataclass(frozen=True)
class Killed:
    """The run killed during dbt before the third run, and the published tables right after the kill."""
    run_id: str
    published_after: dict[str, list[str]]


class _Collect(logging.Handler):
    def emit(self, record: logging.LogRecord) -> None:
        DAGSTER_WARNINGS.append(record.getMessage())


def add_a_payment(settings) -> None:
    """A bank payment received today from one of Northwind's clients (unallocated: client credit)."""
    with session_scope(settings.database_url) as s, s.begin():
        company = s.scalars(select(Company).where(Company.slug == "northwind")).one()
        client = s.scalars(select(Client).where(Client.company_id == company.id).order_by(Client.id)).first()
        payments.record_payment(s, company, client, method="bank", currency=company.base_currency,
                                amount_minor=NEW_PAYMENT_MINOR, received_on=datetime.now(UTC).date(),
                                allocations=[], reference="incremental-run-test")


def published_rows(settings) -> dict[str, list[str]]:
    """Every published table's rows, sorted, from the published snapshot."""
    con = duckdb.connect(str(snapshot_path(settings.published_dir)), read_only=True)
    try:
        return {t: sorted(map(repr, con.execute(f'select * from published."{t.split(".")[1]}"').fetchall()))
                for t in published_marts()}
    finally:
        con.close()


def full_rebuild_rows(settings, workdir: Path) -> dict[str, list[str]]:
    """A copy of the warehouse rebuilt from its raw tables by a full `dbt run --full-refresh`: the published
    marts a full run gives on the same data."""
    copy = workdir / "reference.duckdb"
    shutil.copyfile(parse_warehouse_url(settings.warehouse_url).path, copy)
    env = {**os.environ, "EZ360_DBT_TARGET": "duckdb", "EZ360_DBT_DUCKDB_PATH": str(copy),
           "DBT_TARGET_PATH": str(workdir / "target"), "DBT_LOG_PATH": str(workdir / "target")}
    subprocess.run([str(Path(sys.executable).parent / "dbt"), "run", "--full-refresh", "--project-dir", str(DBT_DIR),
                    "--profiles-dir", str(DBT_DIR)], env=env, check=True, capture_output=True, cwd=DBT_DIR)
    con = duckdb.connect(str(copy), read_only=True)
    try:
        return {t: sorted(map(repr, con.execute(f"select * from {t}").fetchall())) for t in published_marts()}
    finally:
        con.close()


@pytest.fixture(scope="module")
def runs(embedded_world):
    """The session's embedded world (its first run built everything), then a run with no new data, a new payment,
    a run killed during dbt, and the run after it."""
    mp = pytest.MonkeyPatch()
    settings = embedded_world.apply(mp)
    base, full = embedded_world.base, embedded_world.first
    seconds = {"full": embedded_world.first_seconds}
    collect = _Collect()
    logging.getLogger(UNRUN_CHECKS_LOGGER).addHandler(collect)
    with sandboxes_running(settings):
        after_full = published_rows(settings)
        started = time.monotonic()
        same = run_pipeline(settings)
        seconds["no change"] = time.monotonic() - started
        after_same = published_rows(settings)
        add_a_payment(settings)
        # the CLI in a process of its own (environment: the world's EZ360_* variables), killed once dbt rebuilt
        # the new payment's staging model: the marts built from it are then older than it
        killed = Killed(kill_cli_run_during_dbt(settings, "staging/stg_ops__payments"), published_rows(settings))
        started = time.monotonic()
        one = run_pipeline(settings)
        seconds["one new payment"] = time.monotonic() - started
    print("\nwall seconds per run:", {k: round(v, 1) for k, v in seconds.items()},
          "\nstages:", json.dumps({"full": full.stage_seconds, "no change": same.stage_seconds,
                                   "one new payment": one.stage_seconds}))
    logging.getLogger(UNRUN_CHECKS_LOGGER).removeHandler(collect)
    yield settings, base, full, same, one, after_full, after_same, killed
    mp.undo()


def test_the_first_run_builds_everything_and_publishes(runs):
    _settings, _base, full, _same, _one, _after_full, _after_same, _killed = runs
    assert full.success and full.published, (full.failed_steps, full.failed_checks)
    assert full.unchanged_models == [] and len(full.rebuilt_models) > 90


def test_a_run_with_no_new_data_rebuilds_nothing_and_publishes_the_same_tables(runs):
    settings, _base, full, same, _one, after_full, after_same, _killed = runs
    assert same.success and same.published, (same.failed_steps, same.failed_checks)
    # only the two health marts that count raw rows per dlt load (re-read tables get a new load id) rebuild
    assert set(same.rebuilt_models) <= {"marts/rpt_raw_table_counts", "marts/rpt_quarantine_counts"}
    assert len(same.unchanged_models) == len(full.rebuilt_models) - len(same.rebuilt_models)
    assert after_same.keys() == after_full.keys()
    assert {t: rows for t, rows in after_same.items() if t != "marts.rpt_raw_table_counts"} == \
        {t: rows for t, rows in after_full.items() if t != "marts.rpt_raw_table_counts"}
    # dbt did a fraction of the work: counted in checks run, not in seconds (a loaded machine skews a time ratio)
    assert len(_check_evaluations(settings, same.run_id)) < len(_check_evaluations(settings, full.run_id)) / 3
    print(f"\ndbt stage: {same.stage_seconds['dbt']:.1f} s with no new data, {full.stage_seconds['dbt']:.1f} s full")


def _check_evaluations(settings, run_id: str) -> list[str]:
    """The asset each dbt test (asset check) the run evaluated belongs to, one entry per check."""
    with DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        return [e.event_log_entry.dagster_event.event_specific_data.asset_key.to_user_string()
                for e in instance.get_records_for_run(
                    run_id, of_type=DagsterEventType.ASSET_CHECK_EVALUATION, limit=5000).records]


def test_an_unchanged_models_dbt_tests_are_not_rerun_nor_warned_about(runs):
    settings, _base, _full, same, _one, _after_full, _after_same, _killed = runs
    evaluated = set(_check_evaluations(settings, same.run_id))
    assert "marts/rpt_raw_table_counts" in evaluated  # rebuilt: its dbt tests ran
    assert "staging/stg_ops__payments" not in evaluated and "staging/stg_stripe__payouts" not in evaluated
    assert [m for m in DAGSTER_WARNINGS if "emitted no result" in m] == []  # not hundreds of terminal lines


def test_one_new_payment_rebuilds_a_strict_subset_and_publishes_what_a_full_build_gives(runs):
    settings, base, full, _same, one, after_full, _after_same, _killed = runs
    assert one.success and one.published, (one.failed_steps, one.failed_checks)
    rebuilt = set(one.rebuilt_models)
    assert {"staging/stg_ops__payments", "marts/fct_payments"} <= rebuilt
    assert 0 < len(rebuilt) < len(full.rebuilt_models)
    # nothing in Stripe or ERPNext changed
    assert {"staging/stg_stripe__payouts", "staging/stg_erpnext__gl_entries"} <= set(one.unchanged_models)
    print(f"\none new payment rebuilt {len(rebuilt)} of {len(full.rebuilt_models)} models")

    published = published_rows(settings)
    assert published != after_full  # the payment reached the published data
    assert any(str(NEW_PAYMENT_MINOR) in row for row in published["marts.fct_payments"])
    reference = full_rebuild_rows(settings, base)
    assert published.keys() == reference.keys()
    differing = [t for t in published if published[t] != reference[t]]
    assert differing == []


def test_pipeline_status_shows_each_runs_stage_timings(runs):
    _settings, _base, full, same, one, _after_full, _after_same, _killed = runs

    out = CliRunner().invoke(app, ["pipeline", "status"], env={"COLUMNS": "300"})

    assert out.exit_code == 0, out.output
    for run in (full, same, one):
        [row] = [line for line in out.output.splitlines() if re.match(rf"\W+{run.run_id[:8]}\W", line)]
        shown = dict(re.findall(r"([a-z:]+) (\d+\.\d)s", row))
        assert {"ingest:ops", "ingest:stripe", "ingest:erpnext", "gates", "dbt", "publish"} <= set(shown), row
        assert float(shown["dbt"]) == round(run.stage_seconds["dbt"], 1)


def test_dbt_parses_only_what_changed_on_the_next_invocation(runs):
    """dbt's parse cache is kept per warehouse: a later invocation reuses it (no "Unable to do partial
    parsing because profile has changed", the message every run logged while one cache served every profile)."""
    settings, _base, _full, _same, _one, _after_full, _after_same, _killed = runs
    state = DbtState(settings.var_dir, settings.warehouse_url)
    os.environ.update(parse_warehouse_url(settings.warehouse_url).dbt_env())
    invocation = invoke(dbt_resource(), ["parse"], state, "dbt_parse")
    messages = [event.raw_event["info"]["msg"] for event in invocation.stream_raw_events()]
    invocation.wait()

    assert messages and not [m for m in messages if "Unable to do partial parsing" in m], messages
    perf = json.loads((Path(invocation.target_path) / "perf_info.json").read_text())
    assert perf["path_count"] > 200 and perf["parsed_path_count"] == 0  # nothing re-parsed: no file changed


def test_a_run_killed_during_dbt_publishes_nothing_and_is_recorded_as_failed_by_the_next(runs):
    """kill -9 in the middle of dbt (the payment's staging model rebuilt, the marts after it not): the published
    tables stay those of the run before, the next run records the killed one as failed, and rebuilds what the
    killed run had already rebuilt, as its last good build does not include it. That the next run publishes
    what a full build gives is test_one_new_payment_rebuilds_a_strict_subset_and_publishes_what_a_full_build_gives."""
    settings, _base, _full, _same, one, _after_full, after_same, killed = runs
    assert killed.published_after == after_same
    health = HealthStore.from_settings(settings)
    assert health.run(killed.run_id)["status"] == "failed"  # found and recorded by the next run
    health.close()
    assert one.success and one.published and one.run_id != killed.run_id
    assert {"staging/stg_ops__payments", "marts/fct_payments"} <= set(one.rebuilt_models)


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_raw_tables_fingerprint_sees_data_changes_and_ignores_dlt_load_bookkeeping(engine, tmp_path):
    """A table re-read whole by the ingest gets new dlt ids and load ids for the same rows: not a change."""
    from contextlib import nullcontext

    from sqlalchemy import create_engine, text

    from pipelines.warehouse.fingerprints import fingerprints
    from tests.support.postgres import temporary_database

    with (temporary_database("ez360_incr_fp") if engine == "postgres"
          else nullcontext(f"duckdb:///{tmp_path / 'wh.duckdb'}")) as url:
        warehouse = parse_warehouse_url(url)
        db = create_engine(warehouse.sqlalchemy_url())

        def run(sql: str) -> dict[str, str]:
            with db.begin() as conn:
                conn.execute(text(sql))
            return fingerprints(warehouse, ["raw_ops.payments", "raw_ops.not_landed"])

        first = run("create schema raw_ops; create table raw_ops.payments (id bigint, amount_minor bigint, "
                    "reference text, _dlt_id text, _dlt_load_id text); insert into raw_ops.payments values "
                    "(1, 100, 'a', 'x1', 'load1'), (2, 200, null, 'x2', 'load1')")
        reloaded = run("update raw_ops.payments set _dlt_id = 'y' || id, _dlt_load_id = 'load2'")
        changed = run("update raw_ops.payments set amount_minor = 201 where id = 2")
        db.dispose()
    assert first["raw_ops.not_landed"] == "missing"
    assert reloaded == first
    assert changed["raw_ops.payments"] != first["raw_ops.payments"]


def test_the_plan_rebuilds_downstream_of_changed_tables_and_builds_everything_when_in_doubt():
    """The decision alone, on the project's manifest: cheap, no warehouse."""
    from pipelines.warehouse.dbt import prepare
    from pipelines.warehouse.incremental import buildable, full_build_reason, incremental_plan, introspecting
    from pipelines.warehouse.state import BuildRecord

    manifest = json.loads(prepare().read_text())
    tables = {"raw_ops.payments": "1:1", "raw_stripe.payouts": "2:2"}
    last = BuildRecord("run-1", "2026-01-02", "code", dict(tables))
    assert full_build_reason(None, False, "2026-01-02", []) == "no previous build on this warehouse"
    assert full_build_reason(last, True, "2026-01-02", []) == "full refresh requested"
    assert "new day" in full_build_reason(last, False, "2026-01-03", [])
    assert "missing" in full_build_reason(last, False, "2026-01-02", ["marts.fct_payments"])
    assert full_build_reason(last, False, "2026-01-02", []) is None

    nothing = incremental_plan(manifest, last, tables, set())
    assert nothing.build == introspecting(manifest) and nothing.changed_tables == []
    names = {uid.split(".")[-1] for uid in introspecting(manifest)}
    assert names == {"rpt_raw_table_counts", "rpt_quarantine_counts"}

    payment = incremental_plan(manifest, last, {**tables, "raw_ops.payments": "1:2"}, set())
    built = {uid.split(".")[-1] for uid in payment.build}
    assert {"stg_ops__payments", "fct_payments"} <= built and "stg_stripe__payouts" not in built
    unchanged = payment.unchanged(manifest)
    assert set(unchanged) == set(buildable(manifest)) - payment.build
    position = {uid: i for i, uid in enumerate(unchanged)}
    for uid in unchanged:  # parents before children: Dagster's order for a multi-asset's outputs
        assert all(position[p] < position[uid] for p in manifest["nodes"][uid].get("depends_on", {}).get("nodes", [])
                   if p in position)
    assert "stg_stripe__payouts" in payment.exclude(manifest) and "fct_payments" not in payment.exclude(manifest)

    edited = next(uid for uid in buildable(manifest) if uid.endswith(".stg_stripe__payouts"))
    code = incremental_plan(manifest, last, tables, {edited})
    assert edited in code.build and code.modified == [edited]
