"""Security headers on every answer: every route the app has (discovered), signed in or not, and every kind of
error (401, 403, 404, 405, 422, 429, 500, and the CSRF refusal that never reaches a route)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from operational_api.app import create_app
from tests.support.routes import endpoints
from tests.support.security_world import build_world


def assert_hardened(response, where=""):
    h = response.headers
    assert h["strict-transport-security"] == "max-age=31536000; includeSubDomains", where
    csp = {d.strip().split(" ", 1)[0]: d.strip() for d in h["content-security-policy"].split(";")}
    assert csp["object-src"] == "object-src 'none'" and csp["base-uri"] == "base-uri 'none'", where
    assert csp["frame-ancestors"] == "frame-ancestors 'none'" and csp["script-src"] == "script-src 'self'", where
    assert "unsafe-inline" not in h["content-security-policy"] and "unsafe-eval" not in h["content-security-policy"]
    assert h["x-content-type-options"] == "nosniff", where
    assert h["x-frame-options"] == "DENY", where
    assert h["referrer-policy"] == "strict-origin-when-cross-origin", where
    assert "camera=()" in h["permissions-policy"], where
    assert len(h["x-request-id"]) >= 16, where


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return build_world(f"sqlite:///{tmp_path_factory.mktemp('headers') / 'ops.sqlite3'}")


def test_every_route_answers_with_the_security_headers_signed_out_and_signed_in(world):
    anonymous = world.client()
    member = world.client()
    member.login(world.email("acme", "owner"))
    seen = 0
    for e in endpoints(anonymous.http.app):
        url = e.url(**{p: world.companies["acme"] if p == "company_id" else 1 for p in e.params})
        if e.path == "/webhooks/stripe" or e.method in ("POST", "PUT", "PATCH", "DELETE"):
            responses = [anonymous.http.request(e.method, url, json={})]
        else:
            responses = [anonymous.http.request(e.method, url), member.get(url)]
        for response in responses:
            assert_hardened(response, f"{e.method} {e.path} -> {response.status_code}")
            seen += 1
    assert seen > 20


def test_every_kind_of_error_carries_the_security_headers(world):
    client = world.client().http
    company = f"/api/v1/companies/{world.companies['acme']}"
    cases = {
        401: client.get(company),
        404: client.get("/no/such/page"),
        405: client.delete("/health/live"),
        422: client.post("/api/v1/auth/login", json={"email": 1}),
        403: client.post("/api/v1/auth/login", json={}, headers={"Origin": "https://evil.example"}),
    }
    for _ in range(5):
        client.post("/api/v1/auth/login", json={"email": "x@acme.test", "password": "wrong password here"})
    cases[429] = client.post("/api/v1/auth/login", json={"email": "x@acme.test", "password": "wrong password"})
    for status, response in cases.items():
        assert response.status_code == status, (status, response.text)
        assert response.headers["content-type"] == "application/problem+json"
        assert_hardened(response, str(status))


def test_an_unexpected_server_error_is_a_problem_document_with_the_headers(world):
    app = create_app(world.settings)

    @app.get("/boom")
    def boom():
        raise RuntimeError("kaboom")

    response = TestClient(app, raise_server_exceptions=False).get("/boom")
    assert response.status_code == 500 and "kaboom" not in response.text
    assert response.json()["title"] == "Internal Server Error"
    assert_hardened(response, "500")


def test_api_answers_are_not_cached(world):
    browser = world.client()
    browser.login(world.email("acme", "staff"))
    assert browser.get("/api/v1/auth/session").headers["cache-control"] == "no-store"
