"""The dashboards in a real headless Chromium (Playwright), behind the web app's one sign-on (SQLite ops DB),
reading a real published DuckDB snapshot (tests.support.dashboards_browser starts both servers and Chromium).

Screenshots go to $EZ360_TEST_ARTIFACTS/dashboards (default var/test-artifacts/dashboards).
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from ez360.core.settings import Settings
from ez360.core.warehouse import parse_warehouse_url
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.services import companies
from pipelines.publish import publish, record_gate_failure
from tests.support import dashboard_marts
from tests.support.dashboards_browser import (
    ARTIFACTS,
    PHONE,
    SignOn,
    settled,
    sign_in_on_the_web_app,
    web_app_and_dashboards,
)
from tests.support.platform import free_port
from tests.support.security_world import _HASH, PASSWORD, build_world
from tests.test_publish import EXPECTED_GROSS, MART, duckdb_settings, make_duckdb_warehouse

pytestmark = pytest.mark.slow

PLATFORM_EMAIL = "root@platform.test"


@dataclass
class Stack:
    signon: SignOn
    world: object
    settings: Settings

    @property
    def web(self) -> str:
        return self.signon.web

    @property
    def dashboards(self):
        return self.signon.dashboards

    @property
    def warehouse(self):
        return parse_warehouse_url(self.settings.warehouse_url)

    def publish_marts(self, run_id: str, tables: dict | None = None) -> None:
        names = dashboard_marts.build_duckdb(self.warehouse.path, tables or dashboard_marts.TABLES)
        publish(self.warehouse, self.settings.published_dir, names, run_id=run_id)

    def context(self, **kwargs):
        return self.signon.context(**kwargs)


@pytest.fixture(scope="module")
def stack(tmp_path_factory) -> Iterator[Stack]:
    root = tmp_path_factory.mktemp("dashboards-browser")
    url = f"sqlite:///{root / 'ops.sqlite3'}"
    world = build_world(url)
    with make_sessionmaker(make_engine(url))() as db, db.begin():
        companies.create_user(db, email=PLATFORM_EMAIL, full_name="Platform Admin", password_hash=_HASH)
    var = duckdb_settings(root / "var")
    settings = Settings(_env_file=None, database_url=url, smtp_port=free_port(), session_cookie_secure=False,
                        var_dir=root / "var", warehouse_url=var.warehouse_url, published_dir=var.published_dir,
                        platform_admin_emails=PLATFORM_EMAIL)
    env = {"EZ360_VAR_DIR": str(root / "var"), "EZ360_DATABASE_URL": url, "EZ360_WAREHOUSE_URL": var.warehouse_url,
           "EZ360_PUBLISHED_DIR": str(var.published_dir), "EZ360_PLATFORM_ADMIN_EMAILS": PLATFORM_EMAIL}
    with web_app_and_dashboards(settings, env, root) as signon:
        yield Stack(signon, world, settings)


def _sign_in_on_the_web_app(page, email: str) -> None:
    sign_in_on_the_web_app(page, email, PASSWORD)


def _only_local(requests: list[str], *bases: str) -> list[str]:
    return [u for u in requests if not u.startswith((*bases, "data:", "blob:", "about:"))]


def test_platform_admin_signs_in_sees_every_company_exactly_and_a_gate_failure_warning(stack):
    from playwright.sync_api import expect

    make_duckdb_warehouse(stack.warehouse.path)
    publish(stack.warehouse, stack.settings.published_dir, [MART], run_id="run-good-1")
    context = stack.context()
    page = context.new_page()
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(f"{stack.dashboards.url}/revenue")
    _sign_in_on_the_web_app(page, PLATFORM_EMAIL)  # the dashboards sent us to the web app's sign-in
    # and back to the page asked for (which then writes its filters into the address: ?company=...&period=...)
    expect(page).to_have_url(re.compile(re.escape(f"{stack.dashboards.url}/revenue") + r"(\?.*)?$"))
    expect(page.get_by_role("heading", name="Revenue by company and month")).to_be_visible()
    for company, totals in EXPECTED_GROSS.items():
        section = page.get_by_test_id("stVerticalBlock").filter(
            has=page.get_by_role("heading", name=company, exact=True)).last
        expect(section).to_be_visible()
        for total in totals:
            expect(section.get_by_test_id("stMetricValue").filter(has_text=total)).to_have_text(total)
    expect(page.get_by_test_id("stAlertContentWarning")).to_have_count(0)
    settled(page)
    cells = page.get_by_test_id("stDataFrame").locator('[data-testid^="glide-cell-"]')
    for figure in ("12,345.67 USD", "2,345.67 USD", "234,000 JPY", "2.345 KWD", "0.345 KWD"):
        expect(cells.filter(has_text=re.compile(rf"^\s*{re.escape(figure)}\s*$")).first).to_be_attached()
    page.screenshot(path=ARTIFACTS / "revenue_platform.png", full_page=True)

    # The next run fails its gate: same figures, plus a warning naming the failed checks and the good run.
    make_duckdb_warehouse(stack.warehouse.path, [])
    record_gate_failure(stack.warehouse, stack.settings.published_dir, "run-bad-2",
                        ["gross_equals_net_plus_tax", "currency_is_iso_4217"])
    page.reload()
    warning = page.get_by_test_id("stAlertContentWarning")
    expect(warning).to_contain_text("run-bad-2")
    expect(warning).to_contain_text("gross_equals_net_plus_tax, currency_is_iso_4217")
    expect(warning).to_contain_text("last good run run-good-1")
    for totals in EXPECTED_GROSS.values():
        for total in totals:
            expect(page.get_by_test_id("stMetricValue").filter(has_text=total)).to_have_count(1)
    settled(page)
    page.screenshot(path=ARTIFACTS / "revenue_gate_failed.png", full_page=True)
    page.get_by_test_id("stMultiSelect").get_by_role("button", name="Remove Kaizen KK").click()
    expect(page.get_by_role("heading", name="Kaizen KK", exact=True)).to_have_count(0)
    expect(page.get_by_role("heading", name="Acme Consulting", exact=True)).to_be_visible()
    assert _only_local(requests, stack.dashboards.url, stack.web) == [], "the page made outbound requests"

    # the executive overview, at phone width, on the full set of marts
    stack.publish_marts("run-marts-0")
    page.set_viewport_size(PHONE)
    page.goto(f"{stack.dashboards.url}/?period=2025-06&company={stack.world.companies['acme']}")
    expect(page.get_by_role("heading", name="Executive overview")).to_be_visible()
    expect(page.get_by_test_id("stMetricValue").filter(has_text="6,000.00 USD")).to_have_count(1)
    settled(page)
    expect(page.get_by_test_id("stException")).to_have_count(0)
    page.screenshot(path=ARTIFACTS / "phone_overview.png", full_page=True)
    context.close()


def test_finance_signs_in_resolves_an_item_exports_the_queue_and_is_refused_after_signing_out(stack):
    from playwright.sync_api import expect

    stack.publish_marts("run-marts-1")
    context = stack.context()
    page = context.new_page()
    page.goto(f"{stack.dashboards.url}/?period=2025-06")
    expect(page).to_have_url(re.compile(re.escape(stack.web) + r"/app/login\?next="))
    _sign_in_on_the_web_app(page, stack.world.email("acme", "finance"))
    # back on the dashboards, on finance's first page, with the period kept
    expect(page).to_have_url(re.compile(re.escape(stack.dashboards.url) + r"/.*period=2025-06"))
    expect(page.get_by_role("heading", name="Reconciliation")).to_be_visible()
    settled(page)
    queue = page.locator(".st-key-queue")
    page.screenshot(path=ARTIFACTS / "workbench.png", full_page=True)

    # the queue's export holds exactly the rows shown (acme's two open items, never globex's)
    with page.expect_download() as download:
        queue.get_by_test_id("stDownloadButton").filter(has_text="Download CSV").click()
    rows = list(csv.DictReader(io.StringIO(Path(download.value.path()).read_text())))
    assert sorted(r["Item"] for r in rows) == ["ops_payment~stripe_charge:p1",
                                               "stripe_payout~erp_bank_transaction:po_1"]
    assert {r["Amount"] for r in rows} == {"100.00 USD", "964.65 USD"}

    # resolve the first item: accept the difference, with a note; written through the ops API as finance
    page.get_by_text("Resolve", exact=True).click()
    page.get_by_label("Note (required: why)").fill("Stripe fee of 0.35 USD")
    page.get_by_role("button", name="Record decision").click()
    settled(page)
    expect(queue.locator('[data-testid^="glide-cell-"]').filter(has_text="pending: resolved").first).to_be_attached()

    # the audit log of the web app shows the decision, by finance
    audit = context.new_page()
    audit.goto(f"{stack.web}/app/c/{stack.world.companies['acme']}/audit?entity_type=reconciliation_resolution")
    expect(audit.get_by_role("cell", name=re.compile("reconciliation resolution"))).to_have_count(1)
    expect(audit.get_by_role("cell", name=re.compile(r"finance"))).to_have_count(1)

    # the next pipeline run joins it back: tests/test_pipeline_end_to_end.py resolves an item in this browser and
    # reloads the workbench after a real run

    # every page renders at phone width without an exception element
    for path, heading in (("reconciliation", "Reconciliation"), ("revenue", "Revenue by company and month"),
                          ("adoption", "Product adoption"), ("data-health", "Data health")):
        phone = context.new_page()
        phone.set_viewport_size(PHONE)
        phone.goto(f"{stack.dashboards.url}/{path}?period=2025-06")
        expect(phone.get_by_role("heading", name=heading)).to_be_visible()
        settled(phone)
        expect(phone.get_by_test_id("stException")).to_have_count(0)
        phone.screenshot(path=ARTIFACTS / f"phone_{path}.png", full_page=True)
        phone.close()

    # sign out in the web app: the dashboards refuse the same browser at once
    web = context.new_page()
    web.goto(f"{stack.web}/app")
    web.get_by_role("button", name="Sign out").click()
    page.reload()
    expect(page).to_have_url(re.compile(re.escape(stack.web) + r"/app/login\?next="))
    context.close()
