"""Helpers for the records, money and integrity tests: an ops DB on either engine, a company with a member per
role and an API token each, and an API client."""

from __future__ import annotations

from contextlib import contextmanager
from dataclasses import dataclass, field

import pytest
from fastapi.testclient import TestClient

from ez360.core.settings import Settings
from operational_api.app import create_app
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.security.tokens import issue_token
from operational_api.services import companies

ROLES = ("owner", "admin", "finance", "staff", "viewer")


@contextmanager
def session_scope(url: str):
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session:
            yield session
    finally:
        engine.dispose()


@dataclass
class ApiWorld:
    url: str
    client: TestClient
    company_id: int
    other_company_id: int
    tokens: dict[str, str] = field(default_factory=dict)
    user_ids: dict[str, int] = field(default_factory=dict)

    def headers(self, role: str = "owner", request_id: str | None = None) -> dict[str, str]:
        headers = {"Authorization": f"Bearer {self.tokens[role]}"}
        if request_id:
            headers["X-Request-ID"] = request_id
        return headers

    def path(self, suffix: str = "", company_id: int | None = None) -> str:
        return f"/api/v1/companies/{company_id or self.company_id}{suffix}"

    def call(self, method: str, suffix: str, role: str = "owner", **kwargs):
        return self.client.request(method, self.path(suffix), headers=self.headers(role), **kwargs)

    def signed_in(self, role: str) -> tuple[TestClient, dict[str, str]]:
        """A browser signed in as this role's user (session cookie), and the CSRF header its changes need."""
        from operational_api.db.models import User
        from operational_api.security.passwords import hash_password
        password = "test-session-passphrase-7"
        with session_scope(self.url) as s, s.begin():
            s.get(User, self.user_ids[role]).password_hash = hash_password(password)
        browser = TestClient(self.client.app, base_url="https://testserver")
        login = browser.post("/api/v1/auth/login", json={"email": f"{role}@acme.test", "password": password})
        assert login.status_code == 200, login.text
        return browser, {"X-CSRF-Token": login.json()["csrf_token"]}


def build_api_world(url: str, *, plan: str = "business", currency: str = "USD") -> ApiWorld:
    engine = make_engine(url)
    tokens, user_ids = {}, {}
    with make_sessionmaker(engine)() as s, s.begin():
        acme = companies.create_company(s, slug="acme", name="Acme", base_currency=currency, invoice_prefix="ACM",
                                        plan=plan)
        other = companies.create_company(s, slug="globex", name="Globex", base_currency="EUR", invoice_prefix="GX")
        for role in ROLES:
            user = companies.create_user(s, email=f"{role}@acme.test", full_name=role.title(), password_hash="x")
            companies.add_member(s, acme, user, role) if plan == "business" else None
            user_ids[role] = user.id
        if plan != "business":  # small plans: only the owner is a member up front
            companies.add_member(s, acme, s.get(type(user), user_ids["owner"]), "owner")
        for role in ROLES:
            if plan == "business" or role == "owner":
                tokens[role] = issue_token(s, acme, s.get(type(user), user_ids[role]), role, "test")[1]
        outsider = companies.create_user(s, email="boss@globex.test", full_name="Boss", password_hash="x")
        companies.add_member(s, other, outsider, "owner")
        tokens["outsider"] = issue_token(s, other, outsider, "owner", "t")[1]
        ids = acme.id, other.id
    engine.dispose()
    client = TestClient(create_app(Settings(_env_file=None, database_url=url,
                                                stripe_webhook_secrets_test="whsec_ez360_tests")))
    return ApiWorld(url, client, ids[0], ids[1], tokens, user_ids)


engines = pytest.mark.parametrize("engine", ["sqlite", "postgres"], indirect=True)
