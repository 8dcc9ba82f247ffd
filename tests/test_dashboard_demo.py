"""The dashboards on the real thing: the session's demo world (seeded ops DB, sandboxes ingested, `dbt build`,
tests/support/warehouse_world.py), its marts published with the real publish step, read by every page as a
signed-in member of a demo company. Figures are checked against the ops DB, recomputed here in Python."""

from __future__ import annotations

from collections import defaultdict
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

import apps.session
from apps.formatting import format_amount
from ez360.core import settings as core_settings
from ez360.core.warehouse import parse_warehouse_url
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.security import sessions
from pipelines.publish import publish

APP = str(Path(__file__).resolve().parents[1] / "apps" / "dashboard.py")
PAGES = ("views/overview.py", "views/reconciliation.py", "views/revenue.py", "views/adoption.py", "views/health.py")


@pytest.fixture(scope="module")
def demo(warehouse_world_duckdb, tmp_path_factory):
    world = warehouse_world_duckdb
    published_dir = tmp_path_factory.mktemp("demo-published")
    marts = [f"marts.{r['table_name']}" for r in world.query(
        "select table_name from information_schema.tables where table_schema = 'marts' order by 1")]
    publish(parse_warehouse_url(world.warehouse_url), published_dir, marts, run_id="demo-run-1")
    owner = world.ops_query(
        "select m.user_id, m.company_id from memberships m join companies c on c.id = m.company_id "
        "where m.role = 'owner' order by c.id limit 1")[0]
    return world, published_dir, owner["user_id"], owner["company_id"]


@pytest.fixture
def open_page(demo, monkeypatch):
    world, published_dir, user_id, company_id = demo
    env = {"EZ360_DATABASE_URL": world.settings.database_url, "EZ360_WAREHOUSE_URL": world.warehouse_url,
           "EZ360_PUBLISHED_DIR": str(published_dir), "EZ360_SESSION_COOKIE_SECURE": "false",
           "EZ360_ENVIRONMENT": "test", "EZ360_VAR_DIR": str(world.settings.var_dir),
           "EZ360_PUBLIC_BASE_URL": "http://127.0.0.1:9"}  # no ops API here: decisions are read from marts
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    core_settings.get_settings.cache_clear()
    with make_sessionmaker(make_engine(world.settings.database_url))() as db:
        _, token = sessions.create(db, user_id, mfa_verified=True)
        db.commit()
    monkeypatch.setattr(apps.session, "session_cookie", lambda settings: token)

    def run(page: str, **query: str) -> AppTest:
        at = AppTest.from_file(APP, default_timeout=120)
        for key, value in query.items():
            at.query_params[key] = value
        at.run()
        at.switch_page(page).run()
        return at

    yield run
    core_settings.get_settings.cache_clear()


def test_every_page_renders_the_demo_warehouse_without_an_error(open_page, demo):
    for page in PAGES:
        at = open_page(page)
        assert not at.exception, (page, [e.value for e in at.exception])
        assert not at.error, (page, [e.value for e in at.error])
        missing = [i.value for i in at.info if "does not have yet" in i.value]
        assert not missing, (page, missing)  # every mart a page reads is built and published


def test_the_revenue_page_ties_out_to_the_ops_invoices_and_credit_notes(open_page, demo):
    world, _, _, company_id = demo
    expected: dict[str, int] = defaultdict(int)  # gross revenue per currency, recomputed from the ops DB
    for row in world.ops_query("select id, currency, total_minor, status from invoices where company_id = :c",
                               {"c": company_id}):
        if row["status"] in ("sent", "partially_paid", "paid"):
            expected[row["currency"]] += row["total_minor"]
            for note in world.ops_query("select total_minor from credit_notes where invoice_id = :i",
                                        {"i": row["id"]}):
                expected[row["currency"]] -= note["total_minor"]
    assert expected, "the demo company has revenue"
    at = open_page("views/revenue.py")
    shown = {m.label: m.value for m in at.metric}
    assert shown == {f"Gross revenue ({cur})": format_amount(total, cur) for cur, total in expected.items()}


def test_a_decision_is_joined_back_by_the_next_pipeline_run_and_shows_resolved(open_page, demo, tmp_path,
                                                                               monkeypatch):
    """On a copy of the demo world: record a decision in the ops DB, run the ops ingest and dbt on the
    reconciliation models, publish, and the workbench shows the item resolved (no longer pending)."""
    import shutil

    from sqlalchemy import create_engine, text

    from ez360.core.settings import Settings
    from ingest.runner import run_source
    from operational_api.db.audit_trail import Actor, set_actor
    from operational_api.services import reconciliation
    from tests.support.warehouse_world import PROJECT_DIR

    world, _, user_id, company_id = demo
    item = world.query("select item_key, pair from marts.fct_reconciliation_items where company_id = :c "
                       "and is_discrepancy and not is_resolved order by item_key limit 1", {"c": company_id})[0]
    var = tmp_path / "var"
    shutil.copytree(world.settings.var_dir, var, ignore=shutil.ignore_patterns("dbt_target", "dbt_logs", "*.log"))
    copy = Settings(_env_file=None, var_dir=var)
    with make_sessionmaker(make_engine(copy.database_url))() as db, db.begin():
        set_actor(db, Actor(user_id, f"user:{user_id} (owner via test)"))
        reconciliation.record(db, company_id, user_id, pair=item["pair"], item_key=item["item_key"],
                              action="accepted_difference", note="bank fee, accepted")
    run_source("ops", copy)
    from tests.support.dbt_inprocess import run_dbt

    for key, value in parse_warehouse_url(copy.warehouse_url).dbt_env().items():
        monkeypatch.setenv(key, value)
    run = run_dbt(["run", "--select", "stg_ops__reconciliation_resolutions", "fct_reconciliation_items",
                   "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
                   "--target-path", str(var / "dbt_target"), "--quiet"])
    assert run.success, run.exception
    engine = create_engine(parse_warehouse_url(copy.warehouse_url).sqlalchemy_url())
    with engine.connect() as conn:
        marts = [f"marts.{t}" for (t,) in conn.execute(text(
            "select table_name from information_schema.tables where table_schema = 'marts'"))]
    engine.dispose()
    published = tmp_path / "published"
    publish(parse_warehouse_url(copy.warehouse_url), published, marts, run_id="demo-run-2")
    monkeypatch.setenv("EZ360_PUBLISHED_DIR", str(published))
    monkeypatch.setenv("EZ360_WAREHOUSE_URL", copy.warehouse_url)
    core_settings.get_settings.cache_clear()
    at = open_page("views/reconciliation.py")
    at.toggle(key="q_open").set_value(False).run()
    at.multiselect(key="q_pair").select(item["pair"]).run()
    queue = next(f.value for f in at.dataframe if "Pending" in f.value.columns)
    row = queue[queue["Item"] == item["item_key"]].iloc[0]
    assert row["Status"] == "resolved"
