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
from tests.support.dashboard_marts import build_duckdb
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


def test_a_signed_out_or_deactivated_user_is_refused_at_once(as_user, dashboards):
    token = dashboards.token(dashboards.user("acme:viewer"))
    assert as_user(None, token=token).title[0].value != "Sign in to see the dashboards"
    with make_sessionmaker(make_engine(dashboards.world.url))() as db, db.begin():
        row = sessions.resolve(db, token, sessions.Timeouts(idle=__import__("datetime").timedelta(hours=1),
                                                            absolute=__import__("datetime").timedelta(hours=9)))
        sessions.revoke(db, row, "logout")
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

