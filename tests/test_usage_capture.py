"""Adoption analytics see sign-ins: each successful sign-in is a `login` usage event in the user's companies."""

from __future__ import annotations

from sqlalchemy import create_engine, text

from tests.support.security_world import build_world


def _logins(url: str, user_id: int) -> list[tuple[int, str]]:
    engine = create_engine(url)
    with engine.connect() as conn:
        rows = conn.execute(text("select company_id, event_name from usage_events where user_id = :u"),
                            {"u": user_id}).all()
    engine.dispose()
    return [tuple(r) for r in rows]


def test_sign_in_with_password_and_with_second_factor_is_recorded_per_company(tmp_path):
    world = build_world(f"sqlite:///{tmp_path / 'ops.sqlite3'}")
    browser = world.client()
    assert browser.login(world.email("acme", "staff")).status_code == 200
    assert _logins(world.url, world.users["acme:staff"]) == [(world.companies["acme"], "login")]

    owner = world.email("acme", "owner")
    pending = browser.http.post("/api/v1/auth/login", json={"email": owner, "password": "wrong password here"})
    assert pending.status_code == 401
    assert _logins(world.url, world.users["acme:owner"]) == []
    fresh = world.client()
    assert fresh.login(owner).json()["status"] == "ok"
    assert _logins(world.url, world.users["acme:owner"]) == [(world.companies["acme"], "login")]
