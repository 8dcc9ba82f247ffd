"""The dashboards' pages under Streamlit's AppTest, signed on through the ops DB's real server-side sessions and
reading a real published DuckDB snapshot (tests/support/dashboard_marts.py): who sees which page, that period
and filters change the figures, that a user of one company never sees another's rows, and that sign-out,
deactivation and a missing second factor hold here too.

AppTest cannot send cookies, so the tests replace `apps.session.session_cookie` (the one function reading the
browser's cookie) with the token of a session they created; everything after it is the production path."""

from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import apps.session
from apps.pages import PAGES
from ez360.core import settings as core_settings
from ez360.core.warehouse import parse_warehouse_url
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.db.models import User
from operational_api.security import sessions
from operational_api.services import companies
from pipelines.publish import publish
from tests.support.dashboard_marts import ACME, GLOBEX, build_duckdb
from tests.support.security_world import World, build_world
from tests.test_publish import duckdb_settings

APP = str(Path(__file__).resolve().parents[1] / "apps" / "dashboard.py")
PLATFORM_EMAIL = "root@platform.test"


@dataclass
class Dashboards:
    world: World
    env: dict[str, str]
    platform_user: int

    def token(self, user_id: int, *, mfa: bool = False) -> str:
        with make_sessionmaker(make_engine(self.world.url))() as db:
            _, token = sessions.create(db, user_id, mfa_verified=mfa)
            db.commit()
        return token

    def user(self, key: str) -> int:
        return self.platform_user if key == "platform" else self.world.users[key]


@pytest.fixture(scope="module")
def dashboards(tmp_path_factory) -> Iterator[Dashboards]:
    root = tmp_path_factory.mktemp("dashboards")
    url = f"sqlite:///{root / 'ops.sqlite3'}"
    world = build_world(url)  # acme (id 1, USD) and globex (id 2, EUR), one user per role; owners/admins have 2FA
    with make_sessionmaker(make_engine(url))() as db, db.begin():
        platform_user = companies.create_user(db, email=PLATFORM_EMAIL, full_name="Platform Admin",
                                              password_hash="x").id
    settings = duckdb_settings(root / "var")
    warehouse = parse_warehouse_url(settings.warehouse_url)
    publish(warehouse, settings.published_dir, build_duckdb(warehouse.path), run_id="run-dash-1")
    env = {"EZ360_DATABASE_URL": url, "EZ360_WAREHOUSE_URL": settings.warehouse_url,
           "EZ360_PUBLISHED_DIR": str(settings.published_dir), "EZ360_VAR_DIR": str(root / "var"),
           "EZ360_SESSION_COOKIE_SECURE": "false", "EZ360_ENVIRONMENT": "test",
           "EZ360_PLATFORM_ADMIN_EMAILS": PLATFORM_EMAIL, "EZ360_PUBLIC_BASE_URL": "http://127.0.0.1:9",
           "EZ360_DASHBOARDS_PUBLIC_URL": "http://127.0.0.1:8501"}
    yield Dashboards(world, env, platform_user)


@pytest.fixture
def as_user(dashboards, monkeypatch):
    """as_user("acme:finance", page=None, mfa=False, **query) -> a run AppTest signed in as that user."""
    for key, value in dashboards.env.items():
        monkeypatch.setenv(key, value)
    for key in [k for k in os.environ if k.startswith("EZ360_") and k not in dashboards.env]:
        monkeypatch.delenv(key)
    core_settings.get_settings.cache_clear()

    def run(who: str | None, page: str | None = None, *, mfa: bool = False, token: str | None = None,
            **query: str) -> AppTest:
        if token is None and who is not None:
            token = dashboards.token(dashboards.user(who), mfa=mfa)
        monkeypatch.setattr(apps.session, "session_cookie", lambda settings: token)
        at = AppTest.from_file(APP, default_timeout=60)
        for key, value in {"period": "2025-06", **query}.items():
            at.query_params[key] = value
        at.run()
        if page is not None:
            at.switch_page(page).run()
        assert not at.exception, [e.value for e in at.exception]
        assert not [e.value for e in at.error if "could not be shown" in e.value]
        return at

    yield run
    core_settings.get_settings.cache_clear()


def pages_of(at: AppTest) -> set[str]:
    """The url paths of the pages st.navigation registered in this run (the first is the default, at '')."""
    by_file = {Path(spec.path).stem: spec.url_path for spec in PAGES}
    return {by_file[Path(str(info["script_path"])).stem] for info in at._registered_pages.values()
            if info.get("script_path") and Path(str(info["script_path"])).stem in by_file}


def texts(at: AppTest) -> str:
    """Everything the page shows as text (markdown, metrics, alerts, captions, tables' cells)."""
    parts = [e.value for kind in ("title", "subheader", "markdown", "caption", "info", "warning", "success",
                                  "error") for e in getattr(at, kind)]
    parts += [f"{m.label} {m.value} {m.delta}" for m in at.metric]
    for frame in at.dataframe:
        parts.append(frame.value.to_string())
    return "\n".join(str(p) for p in parts)


# -- sign-on ------------------------------------------------------------------------------------------------

def test_a_visitor_without_a_session_is_sent_to_the_web_app_sign_in_with_the_way_back(as_user):
    at = as_user(None)
    assert at.title[0].value == "Sign in to see the dashboards"
    link = at.get("link_button")[0].proto.url
    assert link.startswith("http://127.0.0.1:9/app/login?next=")
    assert "http%3A%2F%2F127.0.0.1%3A8501%2F" in link and "period%3D2025-06" in link
    assert not at.metric and not at.dataframe


def test_a_signed_out_timed_out_or_deactivated_user_is_refused_at_once(as_user, dashboards):
    token = dashboards.token(dashboards.user("acme:viewer"))
    assert as_user(None, token=token).title[0].value != "Sign in to see the dashboards"
    with make_sessionmaker(make_engine(dashboards.world.url))() as db, db.begin():
        row = sessions.resolve(db, token, sessions.Timeouts(idle=timedelta(hours=1), absolute=timedelta(hours=9)))
        sessions.revoke(db, row, "logout")
    assert as_user(None, token=token).title[0].value == "Sign in to see the dashboards"

    token = dashboards.token(dashboards.user("acme:viewer"))  # idle past the web app's timeout (30 min)
    with make_sessionmaker(make_engine(dashboards.world.url))() as db, db.begin():
        row = sessions.resolve(db, token, sessions.Timeouts(idle=timedelta(hours=1), absolute=timedelta(hours=9)))
        row.last_seen_at = row.last_seen_at - timedelta(minutes=31)
    assert as_user(None, token=token).title[0].value == "Sign in to see the dashboards"

    token = dashboards.token(dashboards.user("globex:viewer"))
    with make_sessionmaker(make_engine(dashboards.world.url))() as db, db.begin():
        db.get(User, dashboards.user("globex:viewer")).is_active = False
    try:
        assert as_user(None, token=token).title[0].value == "Sign in to see the dashboards"
    finally:
        with make_sessionmaker(make_engine(dashboards.world.url))() as db, db.begin():
            db.get(User, dashboards.user("globex:viewer")).is_active = True


def test_an_owner_whose_session_has_not_passed_the_second_factor_sees_no_company(as_user):
    at = as_user("acme:owner", mfa=False)
    assert at.title[0].value == "No dashboards for this account"
    assert "two-factor authentication is required" in at.warning[0].value
    assert pages_of(as_user("acme:owner", mfa=True)) >= {"overview"}


# -- pages by role -----------------------------------------------------------------------------------------

@pytest.mark.parametrize(("who", "expected"), [
    ("acme:owner", {"overview", "reconciliation", "revenue", "adoption", "data-health"}),
    ("acme:admin", {"overview", "reconciliation", "revenue", "adoption", "data-health"}),
    ("acme:finance", {"reconciliation", "revenue", "adoption", "data-health"}),
    ("acme:viewer", {"overview", "revenue", "adoption", "data-health"}),
    ("platform", {"overview", "reconciliation", "revenue", "adoption", "data-health"}),
])
def test_each_role_gets_only_the_pages_the_permission_matrix_grants(as_user, who, expected):
    assert pages_of(as_user(who, mfa=True)) == expected


def test_staff_have_no_dashboard_and_are_told_why(as_user):
    at = as_user("acme:staff")
    assert pages_of(at) == set()
    assert "does not include any dashboard" in at.warning[0].value



# -- figures follow the period, the comparison and the filters ---------------------------------------------

def frame_with(at: AppTest, column: str):
    """The first table on the page that has this column."""
    return next(f.value for f in at.dataframe if column in f.value.columns)


def tile(at: AppTest, label: str):
    return next(m for m in at.metric if m.label == label)


def test_the_overview_tiles_follow_the_period_and_the_comparison(as_user):
    june = as_user("acme:viewer", mfa=True)
    # acme revenue is 100,000 x month number (minor units): June 6,000.00, May 5,000.00
    assert (tile(june, "Revenue").value, tile(june, "Revenue").delta) == ("6,000.00 USD", "+1,000.00 USD")
    assert tile(june, "AR").value == "3,000.00 USD"  # a stock: June's own
    assert tile(june, "NRR").value == "106.0 %"
    assert "(metric `revenue`)" in tile(june, "Revenue").help  # help text read from the dbt metric catalog
    assert "Formula: 12 x MRR" in tile(june, "ARR").help
    q2 = as_user("acme:viewer", mfa=True, period="2025-Q2")
    # a flow adds up over the quarter (April+May+June = 4+5+6 = 15 x 1,000.00), a stock takes June
    assert tile(q2, "Revenue").value == "15,000.00 USD"
    assert tile(q2, "Revenue").delta == "+9,000.00 USD"  # against Q1: 1+2+3 = 6 x 1,000.00
    assert tile(q2, "AR").value == "3,000.00 USD"
    last_year = as_user("acme:viewer", mfa=True, compare="last_year")
    assert not tile(last_year, "Revenue").delta  # nothing published for June 2024: no delta
    assert "same period last year" in texts(last_year)


def test_changing_the_period_in_the_header_rewrites_the_url_and_the_figures(as_user):
    at = as_user("acme:viewer", mfa=True)
    at.selectbox(key="hdr_period").select("2025-03").run()
    assert at.query_params["period"] == ["2025-03"] or at.query_params["period"] == "2025-03"
    assert tile(at, "Revenue").value == "3,000.00 USD"


def test_the_drill_down_shows_the_rows_of_the_chosen_client_in_base_or_original_currency(as_user):
    at = as_user("acme:viewer", mfa=True)
    invoices = at.dataframe[-2].value  # the drill-down table (the projects table is last)
    assert list(invoices["Invoice"]) == ["AC-2025-00001", "AC-2025-00002", "AC-2025-00003"]  # June only
    assert list(invoices["Net"]) == ["2,500.00 USD", "1,500.00 USD", "2,000.00 USD"]  # base currency
    at.selectbox(key="drill_client").select("client 12").run()
    assert list(at.dataframe[-2].value["Invoice"]) == ["AC-2025-00003"]
    at.radio(key="drill_by").set_value("Project").run()
    at.selectbox(key="drill_project").select("Website rebuild").run()
    assert list(at.dataframe[-2].value["Invoice"]) == ["AC-2025-00001", "AC-2025-00002"]
    originals = as_user("acme:viewer", mfa=True, originals="1")
    assert list(originals.dataframe[-2].value["Net"]) == ["2,500.00 USD", "1,500.00 USD", "1,800.00 EUR"]


def bridges(at: AppTest) -> list[dict[str, str]]:
    return [dict(zip(f.value["Step"], f.value["Amount"], strict=True)) for f in at.dataframe if "Step" in f.value]


def test_the_mrr_bridge_and_ar_aging_are_in_base_currency_with_the_originals_on_demand(as_user):
    june = as_user("acme:viewer", mfa=True)
    # one bridge in USD: acme's USD line plus its EUR line at June's 1.20
    [bridge] = bridges(june)
    assert (bridge["Opening"], bridge["New"], bridge["Closing"]) == ("6,200.00 USD", "1,000.00 USD", "7,200.00 USD")
    assert "Exchange rates" not in bridge  # one month, one rate: the steps add up
    aging = frame_with(june, "Bucket")
    assert set(aging["Currency"]) == {"USD"}
    assert dict(zip(aging["Bucket"], aging["Open"], strict=True))["31-60"] == "243.45 USD"  # 123.45 + 100 EUR x 1.20
    # over the quarter each month has its own rate: EUR 1,000.00 went from 1,100.00 to 1,200.00 USD
    [quarter] = bridges(as_user("acme:viewer", mfa=True, period="2025-Q2"))
    assert (quarter["Opening"], quarter["Exchange rates"], quarter["Closing"]) == (
        "6,100.00 USD", "100.00 USD", "7,200.00 USD")
    originals = as_user("acme:viewer", mfa=True, originals="1")
    assert [b["Closing"] for b in bridges(originals)] == ["1,000.00 EUR", "6,000.00 USD"]
    aging = frame_with(originals, "Bucket")
    assert {(c, b): o for c, b, o in zip(aging["Currency"], aging["Bucket"], aging["Open"], strict=True)}[
        ("EUR", "31-60")] == "100.00 EUR"


def test_the_workbench_queue_filters_and_the_candidates_carry_a_flag_per_criterion(as_user):
    at = as_user("acme:finance", "views/reconciliation.py")
    queue = frame_with(at, "Pending")
    assert list(queue["Item"]) == ["ops_payment~stripe_charge:p1", "stripe_payout~erp_bank_transaction:po_1"]
    at.multiselect(key="q_pair").select("stripe_payout~erp_bank_transaction").run()
    assert list(frame_with(at, "Pending")["Item"]) == ["stripe_payout~erp_bank_transaction:po_1"]
    at.multiselect(key="q_pair").unselect("stripe_payout~erp_bank_transaction").run()
    at.text_input(key="q_amount").input("500").run()  # at least 500.00 USD: only the payout (964.65)
    assert list(frame_with(at, "Pending")["Item"]) == ["stripe_payout~erp_bank_transaction:po_1"]
    at.text_input(key="q_amount").input("lots").run()
    assert any("Amount filter ignored" in w.value for w in at.warning)
    assert len(frame_with(at, "Pending")) == 2
    at.text_input(key="q_amount").input("").run()
    at.toggle(key="q_open").set_value(False).run()
    assert len(frame_with(at, "Pending")) == 3  # the matched item too
    at.selectbox(key="q_item").select("ops_payment~stripe_charge:p1").run()
    candidates = frame_with(at, "Candidate")
    assert list(candidates["Candidate"]) == ["stripe ch_1", "stripe ch_9"]
    assert list(candidates["amount"]) == ["✗", "✓"] and list(candidates["date"]) == ["✓", "✗"]
    assert "Net check passes" in texts(at) and "964.65 USD" in texts(at)


def test_the_payout_net_check_is_recomputed_from_its_balance_transactions():
    import pandas as pd

    from apps.reconcile import payout_check

    payout = pd.Series({"payout_id": "po_1", "currency": "USD", "amount_minor": 96_465,
                        "balance_transaction_id": "txn_po1"})
    txs = pd.DataFrame({"balance_transaction_id": ["a", "b", "txn_po1"],
                        "reporting_category": ["charge", "fee", "payout"], "amount_minor": [100_000, -3_500, -96_465],
                        "fee_minor": [0, 0, 0], "net_minor": [100_000, -3_500, -96_465]})
    check = payout_check(payout, txs)
    assert (check.net_minor, check.matches) == (96_500, False)  # 35 cents missing: the check fails
    assert list(check.by_category["Net"]) == ["1,000.00 USD", "-35.00 USD"]


# -- tenancy -----------------------------------------------------------------------------------------------

GLOBEX_FIGURES = ("42,000.00", "7,000.00 EUR", "9,999.99", "GL-2025", "globex_only_feature", "ch_g", "po_g",
                  "7,770.00")


@pytest.mark.parametrize(("who", "page"), [
    ("acme:viewer", None), ("acme:finance", "views/reconciliation.py"), ("acme:viewer", "views/adoption.py"),
    ("acme:viewer", "views/revenue.py"), ("acme:finance", "views/health.py")])
def test_a_user_of_acme_never_sees_globex_rows_even_when_the_url_names_globex(as_user, who, page):
    at = as_user(who, page, mfa=True, company=str(GLOBEX))
    shown = texts(at)
    assert "Acme" in shown
    for figure in GLOBEX_FIGURES:
        assert figure not in shown, figure
    assert at.query_params["company"] in ("1", ["1"])  # the URL is corrected to the viewer's company


def test_the_platform_admin_switches_company_and_sees_the_platform_wide_adoption(as_user):
    at = as_user("platform", "views/revenue.py", mfa=True)
    assert {"Acme", "Globex"} <= {s.value for s in at.subheader}
    at.selectbox(key="company_switcher").select(GLOBEX).run()
    at.switch_page("views/overview.py").run()
    assert tile(at, "Revenue").value == "42,000.00 EUR"  # globex: 7 x 100,000 x 6 minor units of EUR
    at.switch_page("views/adoption.py").run()
    at.toggle(key="adoption_platform").set_value(True).run()
    assert next(m for m in at.metric if m.label == "MAU").value == "63"  # the platform row (company_id null)


def test_the_data_access_layer_reads_only_the_company_it_is_given(dashboards):
    from apps.data import ALL_COMPANIES, PublishedData
    from ez360.core.settings import Settings

    data = PublishedData(Settings(_env_file=None, warehouse_url=dashboards.env["EZ360_WAREHOUSE_URL"],
                                  published_dir=dashboards.env["EZ360_PUBLISHED_DIR"]))
    for table in ("fct_invoices", "fct_reconciliation_items", "rpt_executive_kpis_month", "rpt_active_users_daily"):
        assert set(data.read(table, [ACME])["company_id"]) == {ACME}, table
        assert set(data.read(table, [GLOBEX])["company_id"]) == {GLOBEX}, table
    assert len(data.read("rpt_active_users_daily", ALL_COMPANIES)) == 4
    with pytest.raises(ValueError, match="needs the company"):
        data.read("fct_invoices", [])
    with pytest.raises(ValueError, match="plain identifier"):
        data.read("fct_invoices; drop table x", [ACME])


def test_an_unexpected_error_is_explained_with_a_reference_never_a_traceback(as_user, monkeypatch, dashboards):
    from apps import queries

    def broken(*args, **kwargs):
        raise RuntimeError("disk on fire")

    monkeypatch.setattr(queries, "read_or_none", broken)
    core_settings.get_settings.cache_clear()
    for key, value in dashboards.env.items():
        monkeypatch.setenv(key, value)
    monkeypatch.setattr(apps.session, "session_cookie",
                        lambda settings: dashboards.token(dashboards.user("acme:viewer")))
    at = AppTest.from_file(APP, default_timeout=60)
    at.query_params["period"] = "2025-06"
    at.run()
    assert not at.exception
    message = at.error[0].value
    assert "could not be shown (RuntimeError)" in message and "quote reference" in message
    assert "disk on fire" not in message and "Traceback" not in message


def test_nothing_published_tells_the_user_what_to_run(as_user, monkeypatch, tmp_path):
    monkeypatch.setenv("EZ360_PUBLISHED_DIR", str(tmp_path / "empty"))
    core_settings.get_settings.cache_clear()
    at = as_user("acme:viewer", "views/revenue.py", mfa=True)
    assert "Nothing has been published yet" in texts(at) and "ez360 pipeline run" in texts(at)
    assert not at.exception and not at.metric


# -- exports and the badge ---------------------------------------------------------------------------------

def test_exports_hold_exactly_the_rows_and_text_shown():
    import csv
    import io

    import openpyxl
    import pandas as pd

    from apps.exports import to_csv, to_xlsx

    shown = pd.DataFrame({"Invoice": ["AC-1", "AC-2"], "Net": ["1,234.50 USD", "0.345 KWD"]})
    assert list(csv.DictReader(io.StringIO(to_csv(shown).decode()))) == [
        {"Invoice": "AC-1", "Net": "1,234.50 USD"}, {"Invoice": "AC-2", "Net": "0.345 KWD"}]
    sheet = openpyxl.load_workbook(io.BytesIO(to_xlsx(shown, "invoices"))).active
    assert [[c.value for c in row] for row in sheet.iter_rows()] == [
        ["Invoice", "Net"], ["AC-1", "1,234.50 USD"], ["AC-2", "0.345 KWD"]]


def test_the_freshness_badge_names_a_stale_source_a_partial_run_and_a_blocking_gate():
    from datetime import UTC, datetime, timedelta

    from apps.freshness import badge

    now = datetime(2025, 7, 1, 12, tzinfo=UTC)
    fresh = badge(now, published_at=now - timedelta(hours=1), published_run="r1",
                  latest_run={"run_id": "r1", "status": "published"},
                  sources=[{"source": "ops", "last_success_at": now - timedelta(hours=1)}])
    assert fresh.level == "ok" and "1 h ago" in fresh.text
    warned = badge(now, published_at=now - timedelta(hours=2), published_run="r1",
                   latest_run={"run_id": "r2", "status": "gate_failed",
                               "blocked_by": ["gate expect_positive on marts.fct_invoices"]},
                   sources=[{"source": "stripe", "last_success_at": now - timedelta(days=3),
                             "last_error": "HTTP 401"}])
    assert warned.level == "warning" and "last good run r1" in warned.text
    assert any("gate expect_positive on marts.fct_invoices" in r for r in warned.reasons)
    assert any("source stripe is stale" in r and "HTTP 401" in r for r in warned.reasons)
    partial = badge(now, published_at=now, published_run="r1",
                    latest_run={"run_id": "r3", "status": "partial", "blocked_by": ["source erpnext"]})
    assert partial.reasons == ("the last run r3 was partial: source erpnext",)


def test_data_health_and_the_badge_name_a_stale_source_and_the_gate_that_blocked_publishing(
        as_user, dashboards, monkeypatch, tmp_path):
    import shutil
    from datetime import UTC, datetime

    from ez360.core.health import HealthStore

    published = tmp_path / "published"
    shutil.copytree(dashboards.env["EZ360_PUBLISHED_DIR"], published)
    monkeypatch.setenv("EZ360_PUBLISHED_DIR", str(published))
    core_settings.get_settings.cache_clear()
    store = HealthStore.for_warehouse(dashboards.env["EZ360_WAREHOUSE_URL"], published)
    now = datetime.now(UTC)
    store.upsert_run("run-dash-1", status="published", published=True, started_at=now - timedelta(days=2),
                     finished_at=now - timedelta(days=2), published_at=now - timedelta(minutes=50))
    store.record_source_load("run-dash-1", "stripe", status="success", finished_at=now - timedelta(days=2),
                             rows_loaded=120, quarantined=2)
    store.upsert_run("run-bad", status="gate_failed", started_at=now - timedelta(minutes=10),
                     finished_at=now - timedelta(minutes=5),
                     blocked_by=["gate gate_marts__fct_invoices on marts.fct_invoices"])
    store.record_source_load("run-bad", "ops", status="success", finished_at=now - timedelta(minutes=9),
                             rows_loaded=10, quarantined=0)
    store.record_source_load("run-bad", "stripe", status="failed", finished_at=now - timedelta(minutes=9),
                             error="HTTP 401 from the Stripe API")
    store.record_gate("run-bad", "gate_marts__fct_invoices", table_name="marts.fct_invoices", layer="mart",
                      passed=False, evaluated=5, failed_count=1, row_count=100, checked_at=now - timedelta(minutes=6),
                      failures=[{"expectation": "expect_column_values_to_be_between", "column": "total_minor",
                                 "unexpected_count": 1, "sample_keys": ["inv-999999"]}])
    store.close()

    at = as_user("acme:viewer", "views/health.py", mfa=True)
    badge = next(w.value for w in at.warning if w.value.startswith("Data as of"))
    assert "gate gate_marts__fct_invoices on marts.fct_invoices" in badge
    assert "source stripe is stale" in badge and "HTTP 401 from the Stripe API" in badge
    sources = frame_with(at, "Fresh")
    assert dict(zip(sources["Source"], sources["Fresh"], strict=True)) == {"ops": "fresh", "stripe": "stale"}
    runs = frame_with(at, "Blocked by")
    assert runs.iloc[0]["Run"] == "run-bad" and runs.iloc[0]["Status"] == "gate_failed"
    shown = texts(at) + "\n".join(e.label for e in at.expander)
    assert "expect_column_values_to_be_between" in shown and "total_minor" in shown
    assert "inv-999999" not in shown  # failing sample keys may be another company's: platform admins only
    assert "inv-999999" in "\n".join(c.value for c in as_user("platform", "views/health.py", mfa=True).caption)


@pytest.mark.postgres
def test_the_pages_read_the_postgresql_warehouse_as_the_company_reader(as_user, monkeypatch, postgres_url, tmp_path):
    from tests.support.dashboard_marts import build_postgres

    publish(parse_warehouse_url(postgres_url), tmp_path, build_postgres(postgres_url), run_id="run-pg-1")
    monkeypatch.setenv("EZ360_WAREHOUSE_URL", postgres_url)
    core_settings.get_settings.cache_clear()
    overview = as_user("acme:viewer", mfa=True)
    assert tile(overview, "Revenue").value == "6,000.00 USD"
    workbench = as_user("acme:finance", "views/reconciliation.py")
    assert list(frame_with(workbench, "Pending")["Item"]) == ["ops_payment~stripe_charge:p1",
                                                             "stripe_payout~erp_bank_transaction:po_1"]
    assert list(frame_with(workbench, "Candidate")["Candidate"]) == ["stripe ch_1", "stripe ch_9"]


def test_a_decision_recorded_while_the_published_run_was_loading_shows_pending_until_the_next_run(
        monkeypatch, tmp_path):
    """The workbench's pending mark reads the health store: the published data holds the decisions recorded
    before its run loaded the ops DB. The legacy publish status knows only the (later) publish time, so a
    decision recorded during the run would show neither pending nor resolved."""
    from datetime import UTC, datetime

    import pandas as pd

    from apps import queries
    from apps.reconcile import decisions_published_until, pending_overlay
    from ez360.core.health import HealthStore

    settings = duckdb_settings(tmp_path / "var")
    for key, value in {"EZ360_WAREHOUSE_URL": settings.warehouse_url,
                       "EZ360_PUBLISHED_DIR": str(settings.published_dir)}.items():
        monkeypatch.setenv(key, value)
    core_settings.get_settings.cache_clear()
    t = datetime(2025, 7, 1, 10, tzinfo=UTC)
    store = HealthStore.for_warehouse(settings.warehouse_url, settings.published_dir)
    store.upsert_run("run-1", status="published", published=True, started_at=t, published_at=t + timedelta(minutes=20))
    store.record_source_load("run-1", "ops", status="success", started_at=t + timedelta(minutes=1),
                             finished_at=t + timedelta(minutes=2))
    store.record_source_load("run-1", "stripe", status="success", started_at=t + timedelta(minutes=3),
                             finished_at=t + timedelta(minutes=4))
    store.close()
    items = pd.DataFrame({"pair": ["p", "p"], "item_key": ["before-the-load", "during-the-run"]})
    decisions = [{"id": 1, "pair": "p", "item_key": "before-the-load", "action": "written_off",
                  "created_at": (t + timedelta(seconds=30)).isoformat()},
                 {"id": 2, "pair": "p", "item_key": "during-the-run", "action": "accepted_difference",
                  "created_at": (t + timedelta(minutes=5)).isoformat()}]
    legacy_published_at = t + timedelta(minutes=20)

    since = decisions_published_until(queries.health(), legacy_published_at)
    core_settings.get_settings.cache_clear()
    assert since == t + timedelta(minutes=1)
    assert list(pending_overlay(items, decisions, since)["pending"]) == ["", "pending: accepted difference"]
    # no published run in the health store (data published by hand): the publish time is all there is
    assert decisions_published_until({"last_published": None}, legacy_published_at) == legacy_published_at
    assert list(pending_overlay(items, decisions, legacy_published_at)["pending"]) == ["", ""]
