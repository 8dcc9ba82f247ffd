"""The thin slice, real at every step: ops DB + sandboxes -> dlt -> dbt -> GX gate -> publish -> reader.

Runs on the embedded defaults (SQLite + DuckDB + local Dagster) and on PostgreSQL for the ops DB, the
warehouse and Dagster's storage, as production does. On the embedded defaults the slice goes on from the
session's embedded world (tests/support/embedded_world.py), which the incremental runs also use.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
from collections import defaultdict
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import date

import pytest
from dagster import AssetKey, DagsterInstance
from dagster._core.events import DagsterEventType
from sqlalchemy import create_engine, text
from typer.testing import CliRunner

from apps.data import PublishedData
from ez360.cli.app import app, sandboxes_running
from ez360.core.health import HealthStore
from ez360.demo.generate import generate
from pipelines.run import run_pipeline
from tests.support.dashboards_browser import (
    ARTIFACTS,
    grid_rows,
    settled,
    sign_in_on_the_web_app,
    web_app_and_dashboards,
)
from tests.support.embedded_world import ALERTS_TO
from tests.support.platform import configure, free_port

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


def ops_counts(settings, tables: list[str]) -> dict[str, int]:
    engine = create_engine(settings.database_url)
    with engine.connect() as conn:
        counts = {t: conn.execute(text(f"select count(*) from {t}")).scalar() for t in tables}
    engine.dispose()
    return counts


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


def check_the_whole_slice(settings, result, first, *, engine_independent_checks: bool = True, alerts=None):
    """One seeded world (`result`: the demo's files) after its `first` pipeline run, through the rest of the
    slice. The idempotent re-run and the stop before dbt are the same Python on every engine:
    `engine_independent_checks=False` skips them where a second engine adds only time. `alerts`: the (SMTP inbox,
    webhook) the settings send pipeline alerts to."""
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
        [event] = [record.event_log_entry for record in instance.get_records_for_run(
            first.run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION, limit=5000).records
            if record.event_log_entry.asset_materialization.asset_key == AssetKey(["raw_stripe", "charges"])]
        metadata = {key: value.value for key, value in event.asset_materialization.metadata.items()}
    assert metadata["rows_loaded"] == sum(len(a["charges"]) for a in stripe.values())
    assert metadata["source_pages"] > 0 and metadata["source_requests"] >= metadata["source_pages"]
    assert metadata["source_retries"] == 0 and metadata["source_errors"] == {} and not metadata["load_partial"]
    assert metadata["source_seconds"]["total"] > 0 and metadata["quarantined_by_reason"] == {}

    if engine_independent_checks:
        # finance resolves an item in the browser between the runs; the second run joins the decision back
        with workbench(settings) as bench:
            decision = bench.resolve_the_first_open_item()
            check_a_second_run_changes_nothing(settings, expected)
            bench.check_it_shows_resolved(decision)
    check_a_failing_gate_keeps_the_published_data(settings, expected, engine_independent_checks, alerts)


def check_a_second_run_changes_nothing(settings, expected):
    """Nothing is loaded twice: every raw ops table holds exactly the ops DB's rows after the run. Between the
    runs finance signed in and recorded a decision (new usage events and a resolution, both loaded once), but
    no invoice or payment changed, so neither do their raw tables nor the published revenue."""
    tables = ["invoices", "payments", "usage_events", "reconciliation_resolutions"]
    before = raw_counts(settings, "raw_ops", ["invoices", "payments", "usage_events"])
    second = _run(settings)
    assert second.success
    after = raw_counts(settings, "raw_ops", tables)
    assert after == ops_counts(settings, tables)
    assert after["usage_events"] > before["usage_events"]  # finance's sign-in, loaded by this run
    assert (after["invoices"], after["payments"]) == (before["invoices"], before["payments"])
    assert published_revenue(settings) == expected


# --- The reconciliation workbench in a real Chromium, on the web app and the dashboards over this run's data.

@dataclass(frozen=True)
class Decision:
    company_id: int
    pair: str
    item_key: str
    status: str  # the item's status before the decision
    open_before: int  # items in the open-only queue
    total: int
    counts_before: dict[str, dict[str, str]]  # the counts table: pair -> status -> count, as shown


@dataclass
class Workbench:
    settings: object
    signon: object
    page: object
    company_id: int

    def counts(self) -> dict[str, dict[str, str]]:
        header, *rows = grid_rows(self.page.get_by_test_id("stDataFrame").first)
        return {row[0]: dict(zip(header[1:], row[1:], strict=True)) for row in rows}

    def caption(self):
        return self.page.locator(".st-key-queue").get_by_test_id("stCaptionContainer")

    def queue_row(self, item_key: str) -> dict[str, str]:
        from playwright.sync_api import expect

        queue = self.page.locator(".st-key-queue")
        # The caption follows a rerun at once; the grid redraws after it (CI once read the rows of the grid from
        # before a filter, under load): wait until the grid shows the item, then read it.
        expect(queue.locator('[data-testid^="glide-cell-"]').filter(has_text=item_key)).to_have_count(1)
        header, *rows = grid_rows(queue.get_by_test_id("stDataFrame"))
        found = [dict(zip(header, row, strict=True)) for row in rows if row[header.index("Item")] == item_key]
        assert len(found) == 1, (item_key, rows)
        return found[0]

    def resolve_the_first_open_item(self) -> Decision:
        """Resolve the queue's first open item (the one the workbench selects) with a reason and a note."""
        from playwright.sync_api import expect

        items = PublishedData(self.settings).read("fct_reconciliation_items", [self.company_id],
                                                  order_by=["event_date", "item_key"])
        open_items = items[~items["effective_status"].isin(["matched", "resolved"])]
        assert len(open_items) > 1, "the demo company has open reconciliation items"
        first = open_items.iloc[0]
        expect(self.caption()).to_have_text(f"{len(open_items)} of {len(items)} items")
        counts = self.counts()
        expect(self.page.get_by_role("combobox", name="Item", exact=True)).to_have_value(str(first["item_key"]))
        self.page.get_by_text("Resolve", exact=True).click()
        self.page.get_by_role("combobox", name="Reason (for Resolve)").click()
        self.page.get_by_role("option", name="Accept the difference (fees, rounding, FX)").click()
        self.page.get_by_label("Note (required: why)").fill("Stripe fee, accepted by the end-to-end test")
        self.page.get_by_role("button", name="Record decision").click()
        # shown at once as pending; the item keeps its status until the warehouse joins the decision back
        expect(self.page.locator(".st-key-queue").locator('[data-testid^="glide-cell-"]')
               .filter(has_text="pending: accepted difference")).to_have_count(1)
        settled(self.page)
        row = self.queue_row(str(first["item_key"]))
        assert (row["Status"], row["Pending"]) == (first["effective_status"], "pending: accepted difference")
        self.page.screenshot(path=ARTIFACTS / "e2e_workbench_pending.png", full_page=True)
        decision = Decision(self.company_id, str(first["pair"]), str(first["item_key"]),
                            str(first["effective_status"]), len(open_items), len(items), counts)
        self.check_the_audit_log(decision)
        return decision

    def check_the_audit_log(self, decision: Decision) -> None:
        """The web app's audit log shows the decision, by finance; its row holds the reason and the note."""
        from playwright.sync_api import expect

        audit = self.page.context.new_page()
        audit.goto(f"{self.signon.web}/app/c/{decision.company_id}/audit?entity_type=reconciliation_resolution")
        rows = audit.get_by_role("row").filter(has=audit.get_by_role("cell", name=re.compile(
            r"^reconciliation resolution \d+$")))
        expect(rows).to_have_count(1)
        expect(rows.get_by_role("cell", name="create", exact=True)).to_have_count(1)
        expect(rows.get_by_role("cell", name=re.compile("finance"))).to_have_count(1)
        audit.screenshot(path=ARTIFACTS / "e2e_audit_log.png", full_page=True)
        audit.close()
        engine = create_engine(self.settings.database_url)
        with engine.connect() as conn:
            [after] = conn.execute(text("select after from audit_log where company_id = :c and entity_type = "
                                        "'reconciliation_resolution'"), {"c": decision.company_id}).scalars()
        engine.dispose()
        after = after if isinstance(after, dict) else json.loads(after)
        assert {k: after[k] for k in ("pair", "item_key", "action", "note")} == {
            "pair": decision.pair, "item_key": decision.item_key, "action": "accepted_difference",
            "note": "Stripe fee, accepted by the end-to-end test"}

    def check_it_shows_resolved(self, decision: Decision) -> None:
        """After the run: the item left the open queue, shows resolved and no longer pending, and the counts
        by status moved it from its old status to resolved."""
        from playwright.sync_api import expect

        self.page.reload()
        expect(self.caption()).to_have_text(f"{decision.open_before - 1} of {decision.total} items")
        settled(self.page)
        expect(self.page.locator(".st-key-queue").locator('[data-testid^="glide-cell-"]')
               .filter(has_text=decision.item_key)).to_have_count(0)
        expected = {pair: dict(row) for pair, row in decision.counts_before.items()}
        expected[decision.pair][decision.status] = str(int(expected[decision.pair][decision.status]) - 1)
        expected[decision.pair]["resolved"] = str(int(expected[decision.pair].get("resolved", "0")) + 1)
        shown = self.counts()
        assert {pair: {s: n for s, n in row.items() if n != "0"} for pair, row in shown.items()} == \
            {pair: {s: n for s, n in row.items() if n != "0"} for pair, row in expected.items()}
        self.page.get_by_text("Open items only", exact=True).click()
        settled(self.page)
        expect(self.caption()).to_have_text(f"{decision.total} of {decision.total} items")
        self.page.get_by_test_id("stMultiSelect").filter(has_text="Status").click()
        self.page.get_by_role("option", name="resolved", exact=True).click()
        self.page.keyboard.press("Escape")
        resolved = sum(int(row.get("resolved", "0")) for row in expected.values())
        expect(self.caption()).to_have_text(f"{resolved} of {decision.total} items")  # the filter's rerun is done
        settled(self.page)
        row = self.queue_row(decision.item_key)
        assert (row["Status"], row["Pending"]) == ("resolved", "")
        self.page.screenshot(path=ARTIFACTS / "e2e_workbench_resolved.png", full_page=True)


@contextmanager
def workbench(settings) -> Iterator[Workbench]:
    """The web app and the dashboards on this run's ops DB and published data; a demo company's finance user
    signed in through the web app and on the reconciliation workbench."""
    from playwright.sync_api import expect

    engine = create_engine(settings.database_url)
    with engine.connect() as conn:
        [(email, company_id)] = conn.execute(text(
            "select u.email, m.company_id from users u join memberships m on m.user_id = u.id "
            "where m.role = 'finance' and u.email like 'finance@aurora.%'")).all()
    engine.dispose()
    web_settings = settings.model_copy(update={"session_cookie_secure": False, "smtp_port": free_port(),
                                               "environment": "test"})
    env = {k: v for k, v in os.environ.items() if k.startswith("EZ360_")}
    with web_app_and_dashboards(web_settings, env, settings.var_dir) as signon:
        context = signon.context()
        page = context.new_page()
        page.goto(f"{signon.dashboards.url}/")
        sign_in_on_the_web_app(page, email, settings.demo_password.get_secret_value())
        expect(page).to_have_url(re.compile(re.escape(signon.dashboards.url) + "/"))  # finance's first page
        expect(page.get_by_role("heading", name="Reconciliation")).to_be_visible()
        settled(page)
        try:
            yield Workbench(settings, signon, page, int(company_id))
        finally:
            context.close()


def check_a_failing_gate_keeps_the_published_data(settings, expected, and_a_stop_before_dbt: bool, alerts=None):
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
    shown = CliRunner().invoke(app, ["pipeline", "status"], env={"COLUMNS": "250"})  # what the data team runs
    assert shown.exit_code == 0, shown.output
    assert "FAILED gate_raw_ops__invoices on raw_ops.invoices" in shown.output
    assert "1 failing rows, sample keys 999999" in shown.output
    if alerts:
        check_the_failed_gate_is_alerted(gated.run_id, *alerts)

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


def check_the_failed_gate_is_alerted(run_id: str, inbox, hook) -> None:
    """The data team hears of the failed gate by e-mail and webhook, with the failing check and its sample key."""
    [mail] = [m for m in inbox.messages if m["To"] == ALERTS_TO and run_id in m.get_content()]
    assert "gate failed" in mail["Subject"] and "gate_raw_ops__invoices" in mail["Subject"]
    assert "'999999'" in mail.get_content() and "last published data" in mail.get_content()
    [post] = [p for p in hook.posts if run_id in p["text"]]
    assert "gate_raw_ops__invoices" in post["text"] and "'999999'" in post["text"]


def test_whole_slice_on_embedded_defaults(embedded_world, monkeypatch):
    """The session's embedded world (tests/support/embedded_world.py) after its first run and, on one worker,
    after the incremental module's runs: its published data still ties out, and the slice goes on from there."""
    settings = embedded_world.apply(monkeypatch)
    check_the_whole_slice(settings, embedded_world.generated, embedded_world.first,
                          alerts=(embedded_world.inbox, embedded_world.hook))


def test_whole_slice_on_postgresql(tmp_path, monkeypatch):
    from tests.support.postgres import temporary_database

    with temporary_database("ez360_ops") as ops, temporary_database("ez360_wh") as warehouse, \
            temporary_database("ez360_dagster") as dagster:
        settings = configure(monkeypatch, tmp_path / "var", EZ360_DATABASE_URL=ops, EZ360_WAREHOUSE_URL=warehouse,
                             EZ360_DAGSTER_STORAGE_URL=dagster)
        result = generate(settings, 42, 1)
        check_the_whole_slice(settings, result, _run(settings), engine_independent_checks=False)
