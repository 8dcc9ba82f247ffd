"""Plans change only through billing or a platform admin; a company is created from a verified user's session,
never from an API token, and starts on Free."""

from __future__ import annotations

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from ez360.cli import app as cli_app
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.db.models import AuditLog, Company, User
from operational_api.security.tokens import issue_token
from operational_api.services import companies
from tests.support.security_world import _HASH, build_world

NEW_COMPANY = {"slug": "initech", "name": "Initech", "base_currency": "USD", "invoice_prefix": "INI"}


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    world = build_world(f"sqlite:///{tmp_path_factory.mktemp('plans') / 'ops.sqlite3'}", enroll_2fa=False)
    engine = make_engine(world.url)
    with make_sessionmaker(engine)() as s, s.begin():
        acme = s.get(Company, world.companies["acme"])
        world.tokens = {role: issue_token(s, acme, s.get(User, world.users[f"acme:{role}"]), role, "plans")[1]
                        for role in ("owner", "admin")}
        companies.create_user(s, email="fresh@example.test", full_name="Fresh", password_hash=_HASH, verified=False)
        companies.create_user(s, email="solo@example.test", full_name="Solo", password_hash=_HASH)
    engine.dispose()
    return world


def _plan(world, slug: str = "acme") -> str:
    engine = make_engine(world.url)
    with make_sessionmaker(engine)() as s:
        plan = s.scalar(select(Company.plan).where(Company.slug == slug))
    engine.dispose()
    return plan


@pytest.mark.parametrize("role", ["admin", "owner"])
def test_company_managers_cannot_change_their_plan(world, role):
    browser = world.client()
    before = _plan(world)
    response = browser.http.patch(f"/api/v1/companies/{world.companies['acme']}/settings",
                                  json={"plan": "business"}, headers={"Authorization": f"Bearer {world.tokens[role]}"})
    assert response.status_code == 422 and response.json()["errors"][0]["loc"] == ["body", "plan"]
    assert _plan(world) == before != "business"


def test_a_platform_admin_changes_a_plan_from_the_cli_and_it_is_audited(world, monkeypatch):
    monkeypatch.setenv("EZ360_DATABASE_URL", world.url)
    runner = CliRunner()
    done = runner.invoke(cli_app, ["companies", "set-plan", "acme", "business"])
    assert done.exit_code == 0, done.output
    assert _plan(world) == "business"
    refused = runner.invoke(cli_app, ["companies", "set-plan", "acme", "free"])  # 5 members > Free's 2 users
    assert refused.exit_code == 1 and "at most 2 users" in refused.output
    assert _plan(world) == "business"
    engine = make_engine(world.url)
    with make_sessionmaker(engine)() as s:
        last = s.scalars(select(AuditLog).where(AuditLog.entity_type == "company", AuditLog.company_id
                                                == world.companies["acme"]).order_by(AuditLog.seq.desc())).first()
    engine.dispose()
    assert last.after["plan"] == "business" and "platform admin" in last.actor


def test_an_api_token_cannot_create_a_company(world):
    response = world.client().http.post("/api/v1/companies", json=NEW_COMPANY,
                                        headers={"Authorization": f"Bearer {world.tokens['owner']}"})
    assert response.status_code == 403 and "session" in response.json()["detail"]
    assert _plan(world, "initech") is None


def test_an_unverified_user_cannot_create_a_company(world):
    browser = world.client()
    assert browser.login("fresh@example.test").status_code == 200
    response = browser.post("/api/v1/companies", json=NEW_COMPANY)
    assert response.status_code == 403 and "verify" in response.json()["detail"]
    assert _plan(world, "initech") is None


def test_a_verified_users_new_company_starts_on_free_whatever_the_request_says(world):
    browser = world.client()
    assert browser.login("solo@example.test").status_code == 200
    asked = browser.post("/api/v1/companies", json={**NEW_COMPANY, "plan": "business"})
    assert asked.status_code == 422 and asked.json()["errors"][0]["loc"] == ["body", "plan"]
    created = browser.post("/api/v1/companies", json=NEW_COMPANY)
    assert created.status_code == 201 and created.json()["plan"] == "free"
    assert _plan(world, "initech") == "free"
