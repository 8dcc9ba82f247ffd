"""The thin slice, real at every step: ops DB + sandboxes -> dlt -> dbt -> GX gate -> publish -> reader.

Runs on the embedded defaults (SQLite + DuckDB + local Dagster) and on PostgreSQL for the ops DB, the
warehouse and Dagster's storage, as production does.
"""

from __future__ import annotations

import hashlib
import json
from collections import defaultdict
from datetime import date

import pytest
from dagster import AssetKey, DagsterInstance
from sqlalchemy import create_engine, text

from apps.data import PublishedData
from ez360.cli.app import sandboxes_running
from ez360.core.health import HealthStore
from ez360.core.published import snapshot_path
from ez360.demo.generate import generate
from pipelines.run import run_pipeline
from tests.support.killed_run import kill_cli_run_during_dbt, published_rows
from tests.support.platform import configure

pytestmark = pytest.mark.slow


def expected_revenue(settings) -> dict[tuple[str, str], int]:
    """Gross revenue per company and currency, straight from the ops DB: issued invoices less their credit notes."""
    engine = create_engine(settings.database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("""
            select c.slug, i.currency, sum(i.total_minor) - coalesce(sum(
                (select sum(n.total_minor) from credit_notes n where n.invoice_id = i.id)), 0)
            from invoices i join companies c on c.id = i.company_id
            where i.status in ('sent', 'partially_paid', 'paid') group by c.slug, i.currency""")).all()
    engine.dispose()
    return {(slug, currency): int(total) for slug, currency, total in rows}


def published_revenue(settings) -> dict[tuple[str, str], int]:
    data = PublishedData(settings)
    try:
        frame = data.revenue_by_company_month()
    finally:
        data.close()
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for row in frame.itertuples():
        totals[(row.company_slug, row.currency)] += int(row.gross_revenue_minor)
    return dict(totals)


def raw_counts(settings, schema: str, tables: list[str]) -> dict[str, int]:
    from ez360.core.warehouse import parse_warehouse_url

    engine = create_engine(parse_warehouse_url(settings.warehouse_url).sqlalchemy_url())
    with engine.connect() as conn:
        counts = {t: conn.execute(text(f"select count(*) from {schema}.{t}")).scalar() for t in tables}
    engine.dispose()
    return counts


def _insert_raw_invoice(conn, row: dict) -> None:
    placeholders = ", ".join(":" + column for column in row)
    conn.execute(text(f"insert into raw_ops.invoices ({', '.join(row)}) values ({placeholders})"), row)


def add_negative_revenue_invoice(settings) -> None:
    """A bad row lands in the warehouse's raw layer (the ops DB's own triggers would refuse it): the raw gate
    must refuse it before dbt builds anything from it."""
    from ez360.core.warehouse import parse_warehouse_url

    engine = create_engine(parse_warehouse_url(settings.warehouse_url).sqlalchemy_url())
    with engine.begin() as conn:
        row = dict(conn.execute(text("select * from raw_ops.invoices where status = 'sent' limit 1")).mappings().one())
        row.update(id=999999, number="BAD-0001", issue_date=date(2031, 1, 15), subtotal_minor=-99999999, tax_minor=0,
                   total_minor=-99999999, _dlt_id="bad-row-1")
        _insert_raw_invoice(conn, row)
    engine.dispose()


def duplicate_a_raw_invoice(settings) -> int:
    from ez360.core.warehouse import parse_warehouse_url

    engine = create_engine(parse_warehouse_url(settings.warehouse_url).sqlalchemy_url())
    with engine.begin() as conn:
        conn.execute(text("delete from raw_ops.invoices where number = 'BAD-0001'"))
        row = dict(conn.execute(text("select * from raw_ops.invoices where status = 'paid' limit 1")).mappings().one())
        row["_dlt_id"] = "duplicate-row-1"
        _insert_raw_invoice(conn, row)
    engine.dispose()
    return int(row["id"])


def published_fingerprint(settings) -> str:
    """The published data as bytes: the DuckDB snapshot file, or every published table's rows on PostgreSQL."""
    from ez360.core.published import snapshot_path
    from ez360.core.warehouse import parse_warehouse_url

    warehouse = parse_warehouse_url(settings.warehouse_url)
    if warehouse.kind == "duckdb":
        return hashlib.sha256(snapshot_path(settings.published_dir).read_bytes()).hexdigest()
    engine = create_engine(warehouse.sqlalchemy_url())
    with engine.connect() as conn:
        tables = conn.execute(text("select table_name from information_schema.tables where table_schema = "
                                   "'published' and table_name <> 'publish_log' order by 1")).scalars().all()
        dump = {t: sorted(map(str, conn.execute(text(f'select * from published."{t}"')).all())) for t in tables}
    engine.dispose()
    return hashlib.sha256(json.dumps(dump).encode()).hexdigest()


def _run(settings):
    with sandboxes_running(settings):
        return run_pipeline(settings)


def check_the_whole_slice(settings, *, engine_independent_checks: bool = True):
    """One seeded world through the whole pipeline. The idempotent re-run and the stop before dbt are the same
    Python on every engine: `engine_independent_checks=False` skips them where a second engine adds only time."""
    result = generate(settings, 42, 1)
    first = _run(settings)
    assert first.success and first.published, (first.failed_steps, first.failed_checks)

    expected = expected_revenue(settings)
    assert published_revenue(settings) == expected
    assert {slug for slug, _ in expected} == {"northwind", "aurora", "sakura"}
    assert all(total > 0 for total in expected.values())

    stripe = json.loads(result.files["stripe"].read_text())["accounts"]
    assert raw_counts(settings, "raw_stripe", ["charges", "payouts"]) == {
        "charges": sum(len(a["charges"]) for a in stripe.values()),
        "payouts": sum(len(a["payouts"]) for a in stripe.values())}
    erp = json.loads(result.files["erpnext"].read_text())["doctypes"]
    assert raw_counts(settings, "raw_erpnext", ["gl_entry", "sales_invoice"]) == {
        "gl_entry": len(erp["GL Entry"]), "sales_invoice": len(erp["Sales Invoice"])}

    for source in ("ops", "stripe", "erpnext"):
        packages = list((settings.landing_dir / source).glob("*/manifest.json"))
        assert packages, f"nothing archived for {source} in {settings.landing_dir}"

    # each raw table's materialization says what its source's load did: rows, pages, requests, retries, timings
    with DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        event = instance.get_latest_materialization_event(AssetKey(["raw_stripe", "charges"]))
        metadata = {key: value.value for key, value in event.asset_materialization.metadata.items()}
    assert metadata["rows_loaded"] == sum(len(a["charges"]) for a in stripe.values())
    assert metadata["source_pages"] > 0 and metadata["source_requests"] >= metadata["source_pages"]
    assert metadata["source_retries"] == 0 and metadata["source_errors"] == {} and not metadata["load_partial"]
    assert metadata["source_seconds"]["total"] > 0 and metadata["quarantined_by_reason"] == {}

    if engine_independent_checks:
        check_a_second_run_changes_nothing(settings, expected)
    check_a_failing_gate_keeps_the_published_data(settings, expected, engine_independent_checks)


def check_a_second_run_changes_nothing(settings, expected):
    counts_before = raw_counts(settings, "raw_ops", ["invoices", "payments", "usage_events"])
    second = _run(settings)
    assert second.success
    assert raw_counts(settings, "raw_ops", ["invoices", "payments", "usage_events"]) == counts_before
    assert published_revenue(settings) == expected


def check_a_failing_gate_keeps_the_published_data(settings, expected, and_a_stop_before_dbt: bool):
    """A failing gate keeps the last good data published, byte for byte, and says so with sample keys."""
    before = published_fingerprint(settings)
    earlier = HealthStore.from_settings(settings)
    last_published = earlier.last_published()["run_id"]
    earlier.close()
    add_negative_revenue_invoice(settings)
    gated = _run(settings)
    assert not gated.success and not gated.published and gated.status == "gate_failed"
    assert gated.failed_checks == ["raw_ops/invoices:gate_raw_ops__invoices"]
    assert gated.blocked_by == ["gate gate_raw_ops__invoices on raw_ops.invoices"]
    assert published_revenue(settings) == expected
    assert published_fingerprint(settings) == before
    status = PublishedData(settings).status()
    assert status.latest_attempt_failed and status.last_published_run_id == last_published
    assert status.failed_checks
    health = HealthStore.from_settings(settings)
    [failed] = health.failed_gates(gated.run_id)
    negative = {f["column"]: f for f in failed["failures"]}
    assert set(negative) == {"subtotal_minor", "total_minor"}
    assert negative["total_minor"]["unexpected_count"] == 1 and negative["total_minor"]["sample_keys"] == ["999999"]
    assert health.run(gated.run_id)["status"] == "gate_failed"
    assert health.last_published()["run_id"] == last_published

    if not and_a_stop_before_dbt:
        health.close()
        return
    # a stop before dbt (here the raw gate refuses a duplicated invoice id) is reported the same way
    duplicate_id = duplicate_a_raw_invoice(settings)
    stopped = _run(settings)
    assert not stopped.published and stopped.status == "gate_failed"
    assert "gate gate_raw_ops__invoices on raw_ops.invoices" in stopped.blocked_by
    status = PublishedData(settings).status()
    assert status.latest_attempt_failed and status.last_attempt_run_id == stopped.run_id
    [raw_gate] = health.failed_gates(stopped.run_id)
    unique = [f for f in raw_gate["failures"] if f["expectation"] == "expect_column_values_to_be_unique"]
    assert unique[0]["unexpected_count"] == 2 and unique[0]["sample_keys"] == [str(duplicate_id)] * 2
    assert published_revenue(settings) == expected
    assert published_fingerprint(settings) == before
    health.close()


def test_whole_slice_on_embedded_defaults(tmp_path, monkeypatch):
    settings = configure(monkeypatch, tmp_path / "var")
    check_the_whole_slice(settings)


def test_whole_slice_on_postgresql(tmp_path, monkeypatch):
    from tests.support.postgres import temporary_database

    with temporary_database("ez360_ops") as ops, temporary_database("ez360_wh") as warehouse, \
            temporary_database("ez360_dagster") as dagster:
        settings = configure(monkeypatch, tmp_path / "var", EZ360_DATABASE_URL=ops, EZ360_WAREHOUSE_URL=warehouse,
                             EZ360_DAGSTER_STORAGE_URL=dagster)
        check_the_whole_slice(settings, engine_independent_checks=False)


def test_two_demo_worlds_with_one_seed_publish_the_same_even_when_one_run_is_killed_during_dbt(tmp_path, monkeypatch):
    """The second world's first run is killed (kill -9) in the middle of dbt and run again: what it publishes is
    row for row what the first world's uninterrupted run published."""
    outcomes = []
    for name in ("uninterrupted", "killed"):
        settings = configure(monkeypatch, tmp_path / name / "var")
        result = generate(settings, 1234, 1)
        if name == "killed":
            with sandboxes_running(settings):  # up for both runs: the killed CLI's own would die with it
                killed = kill_cli_run_during_dbt(settings)
                assert not snapshot_path(settings.published_dir).exists()
                assert run_pipeline(settings).published
            health = HealthStore.from_settings(settings)
            assert health.run(killed)["status"] == "failed"  # found and recorded by the next run
            health.close()
        else:
            assert _run(settings).published
        data = PublishedData(settings)
        frame = data.revenue_by_company_month()
        rows = sorted(map(tuple, frame[["company_slug", "revenue_month", "currency", "invoice_count",
                                         "net_revenue_minor", "tax_minor", "gross_revenue_minor"]].astype(str).values))
        outcomes.append((result.files["ground_truth"].read_bytes(), rows, published_rows(settings)))
    assert outcomes[0][0] == outcomes[1][0]
    assert outcomes[0][1] == outcomes[1][1] and len(outcomes[0][1]) > 30
    uninterrupted, rerun = outcomes[0][2], outcomes[1][2]
    assert rerun.keys() == uninterrupted.keys()
    assert [table for table in uninterrupted if rerun[table] != uninterrupted[table]] == []
