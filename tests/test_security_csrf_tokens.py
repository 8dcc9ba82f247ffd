"""CSRF protection on every cookie-authenticated state change, and API tokens for programmatic clients (hashed
at rest, scoped to a company and a role, expiring, revocable; routes under permission tokens:manage)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from operational_api.api.context import authenticate, current_session, pending_session
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.db.models import ApiToken, utcnow
from operational_api.security.tokens import _digest
from tests.support.routes import endpoints
from tests.support.security_world import build_world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(f"sqlite:///{tmp_path_factory.mktemp('csrf') / 'ops.sqlite3'}")


@pytest.fixture(scope="module")
def signed_in(world):
    """One signed-in browser per user for the whole module (each sign-in of an owner uses up a TOTP step)."""
    cache = {}

    def get(company, role):
        if (company, role) not in cache:
            browser = world.client()
            assert browser.login(world.email(company, role)).status_code == 200
            cache[company, role] = browser
        return cache[company, role]

    return get


def _cookie_routes(app):
    return [e for e in endpoints(app) if e.method in ("POST", "PUT", "PATCH", "DELETE")
            and any(e.depends_on(f) for f in (authenticate, current_session, pending_session))]


def test_every_cookie_authenticated_state_change_needs_the_csrf_token(world, signed_in):
    browser = signed_in("acme", "owner")
    app = browser.http.app
    routes = _cookie_routes(app)
    assert len(routes) >= 10
    failures = []
    ids = {"company_id": world.companies["acme"]}
    for e in routes:
        url = e.url(**{p: ids.get(p, 1) for p in e.params})
        for headers in ({}, {"X-CSRF-Token": "forged-token-value"}):
            response = browser.http.request(e.method, url, json={}, headers=headers)  # no token from the session
            if response.status_code != 403 or "CSRF" not in response.json()["detail"]:
                failures.append(f"{e.method} {e.path} {headers}: {response.status_code}")
    assert failures == []
    assert browser.get("/api/v1/auth/session").status_code == 200  # the session itself still works


def test_logout_without_the_csrf_token_is_refused(world):
    browser = world.client()
    browser.login(world.email("acme", "viewer"))
    assert browser.http.post("/api/v1/auth/logout").status_code == 403
    assert browser.get("/api/v1/auth/session").status_code == 200
    assert browser.post("/api/v1/auth/logout").status_code == 204


def test_state_changes_from_another_site_are_refused_even_for_sign_in(world):
    client = world.client().http
    body = {"email": world.email("acme", "viewer"), "password": "whatever it is here"}
    evil = client.post("/api/v1/auth/login", json=body, headers={"Origin": "https://evil.example"})
    assert evil.status_code == 403 and "origin" in evil.json()["detail"]
    fetch = client.post("/api/v1/auth/login", json=body, headers={"Sec-Fetch-Site": "cross-site"})
    assert fetch.status_code == 403
    same = client.post("/api/v1/auth/login", json=body, headers={"Origin": "https://testserver"})
    assert same.status_code == 401  # reached the password check


def test_bearer_tokens_are_exempt_from_csrf_and_cookies_are_not(world, signed_in):
    browser = signed_in("acme", "owner")
    company = f"/api/v1/companies/{world.companies['acme']}"
    created = browser.post(f"{company}/tokens", json={"name": "ci", "role": "admin"})
    assert created.status_code == 201, created.text
    token = created.json()["token"]
    api = world.client().http  # no cookie at all
    policy = api.put(f"{company}/security-policy", json={"two_factor_roles": []},
                     headers={"Authorization": f"Bearer {token}", "Origin": "https://evil.example"})
    assert policy.status_code == 200


def test_token_routes_create_list_and_revoke_with_the_secret_shown_once_and_stored_hashed(world, signed_in):
    browser = signed_in("acme", "admin")
    base = f"/api/v1/companies/{world.companies['acme']}/tokens"
    created = browser.post(base, json={"name": "reporting", "role": "viewer", "expires_in_days": 7}).json()
    secret = created["token"]
    assert secret.startswith("ez360_") and created["display_prefix"] == secret[:12]
    listed = browser.get(base).json()["items"]
    assert any(t["id"] == created["id"] for t in listed) and all("token" not in t for t in listed)
    engine = make_engine(world.url)
    with make_sessionmaker(engine)() as db:
        row = db.get(ApiToken, created["id"])
        assert row.token_hash == _digest(secret) and secret not in row.token_hash
        assert row.company_id == world.companies["acme"] and row.role == "viewer"
        assert timedelta(days=6) < (row.expires_at - row.created_at) <= timedelta(days=7)
    api = world.client().http
    auth = {"Authorization": f"Bearer {secret}"}
    company = api.get(f"/api/v1/companies/{world.companies['acme']}", headers=auth)
    assert company.status_code == 200 and company.json()["your_role"] == "viewer"  # the token's role, not more
    assert api.get(f"/api/v1/companies/{world.companies['globex']}", headers=auth).status_code == 404
    assert browser.delete(f"{base}/{created['id']}").status_code == 204
    assert api.get(f"/api/v1/companies/{world.companies['acme']}", headers=auth).status_code == 401
    engine.dispose()


def test_expired_tokens_stop_working(world, signed_in):
    browser = signed_in("acme", "owner")
    base = f"/api/v1/companies/{world.companies['acme']}/tokens"
    created = browser.post(base, json={"name": "short", "role": "viewer", "expires_in_days": 1}).json()
    engine = make_engine(world.url)
    with make_sessionmaker(engine)() as db, db.begin():
        db.execute(update(ApiToken).where(ApiToken.id == created["id"])
                   .values(expires_at=utcnow() - timedelta(seconds=1)))
    engine.dispose()
    response = world.client().http.get(f"/api/v1/companies/{world.companies['acme']}",
                                       headers={"Authorization": f"Bearer {created['token']}"})
    assert response.status_code == 401


def test_a_token_cannot_exceed_its_creators_role_nor_mint_tokens(world, signed_in):
    base = f"/api/v1/companies/{world.companies['acme']}/tokens"
    admin = signed_in("acme", "admin")
    assert admin.post(base, json={"name": "x", "role": "owner"}).status_code == 422
    token = admin.post(base, json={"name": "x", "role": "admin"}).json()["token"]
    minted = world.client().http.post(base, json={"name": "child", "role": "viewer"},
                                      headers={"Authorization": f"Bearer {token}"})
    assert minted.status_code == 403 and "cannot create API tokens" in minted.json()["detail"]


def test_token_management_needs_the_tokens_manage_permission(world, signed_in):
    staff = signed_in("acme", "staff")
    base = f"/api/v1/companies/{world.companies['acme']}/tokens"
    assert staff.get(base).status_code == 403
    assert staff.post(base, json={"name": "x", "role": "staff"}).status_code == 403


def test_another_companys_token_id_answers_404(world, signed_in):
    globex = signed_in("globex", "owner")
    theirs = globex.post(f"/api/v1/companies/{world.companies['globex']}/tokens",
                         json={"name": "g", "role": "viewer"}).json()["id"]
    acme = signed_in("acme", "owner")
    assert acme.delete(f"/api/v1/companies/{world.companies['acme']}/tokens/{theirs}").status_code == 404
    engine = make_engine(world.url)
    with make_sessionmaker(engine)() as db:
        assert db.scalar(select(ApiToken.revoked_at).where(ApiToken.id == theirs)) is None
    engine.dispose()
