"""Who may reach what: API tokens, tenant isolation (404) and the security headers on every answer."""
from __future__ import annotations

import re
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient

from ez360.core.settings import Settings
from operational_api.app import create_app
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.security.tokens import issue_token, revoke_token
from operational_api.services import companies
from operational_api.services.errors import ValidationFailed
from tests.support.migrated import migrate


@pytest.fixture
def world(tmp_path):
    url = f"sqlite:///{tmp_path / 'ops.sqlite3'}"
    migrate(url)
    engine = make_engine(url)
    tokens = {}
    with make_sessionmaker(engine)() as s, s.begin():
        acme = companies.create_company(s, slug="acme", name="Acme", base_currency="USD", invoice_prefix="AC")
        globex = companies.create_company(s, slug="globex", name="Globex", base_currency="EUR", invoice_prefix="GX")
        for role in ("owner", "viewer"):
            user = companies.create_user(s, email=f"{role}@acme.test", full_name=role, password_hash="x")
            companies.add_member(s, acme, user, role)
            tokens[role] = issue_token(s, acme, user, role, "test")[1]
        outsider = companies.create_user(s, email="boss@globex.test", full_name="boss", password_hash="x")
        companies.add_member(s, globex, outsider, "owner")
        expired_row, tokens["expired"] = issue_token(s, globex, outsider, "owner", "old", ttl=timedelta(seconds=-1))
        revoked_row, tokens["revoked"] = issue_token(s, globex, outsider, "owner", "gone")
        revoke_token(s, revoked_row)
        tokens["globex"] = issue_token(s, globex, outsider, "owner", "t")[1]
        with pytest.raises(ValidationFailed, match="cannot exceed"):
            viewer = companies.create_user(s, email="v2@acme.test", full_name="v", password_hash="x")
            companies.add_member(s, acme, viewer, "viewer")
            issue_token(s, acme, viewer, "admin", "escalation")
        ids = {"acme": acme.id, "globex": globex.id}
    engine.dispose()
    client = TestClient(create_app(Settings(_env_file=None, database_url=url)))
    return client, tokens, ids


def _auth(token):
    return {"Authorization": f"Bearer {token}"}


def test_a_member_reads_their_company_with_a_token(world):
    client, tokens, ids = world
    response = client.get(f"/api/v1/companies/{ids['acme']}", headers=_auth(tokens["viewer"]))
    assert response.status_code == 200
    assert response.json()["slug"] == "acme" and response.json()["your_role"] == "viewer"


def test_another_companys_id_answers_404_not_403(world):
    client, tokens, ids = world
    response = client.get(f"/api/v1/companies/{ids['globex']}", headers=_auth(tokens["owner"]))
    assert response.status_code == 404
    assert response.headers["content-type"] == "application/problem+json"
    missing = client.get("/api/v1/companies/999999", headers=_auth(tokens["owner"]))
    assert (missing.status_code, missing.json()["detail"]) == (404, "company 999999 not found")


@pytest.mark.parametrize("token", [None, "ez360_not-a-real-token", "expired", "revoked"])
def test_missing_unknown_expired_or_revoked_tokens_are_refused_alike(world, token):
    client, tokens, ids = world
    headers = _auth(tokens.get(token, token)) if token else {}
    response = client.get(f"/api/v1/companies/{ids['globex']}", headers=headers)
    assert response.status_code == 401
    assert response.json()["title"] == "Unauthorized" and response.headers["www-authenticate"] == "Bearer"


def test_every_answer_carries_security_headers_and_a_request_id(world):
    client, tokens, ids = world
    for response in (client.get("/health/live"), client.get("/nope"),
                     client.get(f"/api/v1/companies/{ids['acme']}", headers=_auth(tokens["owner"]))):
        assert response.headers["x-frame-options"] == "DENY"
        assert "frame-ancestors 'none'" in response.headers["content-security-policy"]
        assert response.headers["strict-transport-security"].startswith("max-age=31536000")
        assert response.headers["x-content-type-options"] == "nosniff"
        assert len(response.headers["x-request-id"]) >= 16


def test_openapi_document_is_served_without_cdn_pages(world):
    client, _, _ = world
    assert client.get("/openapi.json").json()["info"]["title"] == "EZ360 operational API"
    docs = client.get("/docs")
    # The docs page is served from vendored Swagger UI: every script and stylesheet is our own origin.
    assert docs.status_code == 200
    assert not re.search(r'(?:src|href)="(?:https?:)?//', docs.text)
    assert 'src="/static/vendor/swagger-ui/swagger-ui-bundle.js"' in docs.text
