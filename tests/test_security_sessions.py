"""Server-side sessions: stored in the ops DB (SQLite and PostgreSQL), hardened cookie, new id at sign-in and
at privilege change, idle and absolute timeouts, server-side logout and revocation."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select, update

from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.db.models import Company, User, utcnow
from operational_api.db.security_models import UserSession
from operational_api.security import accounts
from operational_api.security.sessions import digest
from operational_api.security.tokens import issue_token
from tests.support.security_world import PASSWORD, build_world, settings_for


@pytest.fixture
def world(empty_ops_db):
    return build_world(empty_ops_db)


def _db(world):
    engine = make_engine(world.url)
    return engine, make_sessionmaker(engine)()


def _rows(world, user_id):
    engine, db = _db(world)
    with db:
        rows = db.scalars(select(UserSession).where(UserSession.user_id == user_id).order_by(UserSession.id)).all()
    engine.dispose()
    return rows


def test_session_lives_in_the_database_and_the_cookie_holds_only_a_random_id(world):
    browser = world.client()
    assert browser.login(world.email("acme", "staff")).status_code == 200
    cookie = browser.session_cookie()
    assert cookie and len(cookie) >= 43  # 256 bits, base64url
    rows = _rows(world, world.users["acme:staff"])
    assert [r.token_hash for r in rows] == [digest(cookie)]  # stored hashed, never in clear
    assert cookie not in str(rows[0].__dict__)
    assert browser.get(f"/api/v1/companies/{world.companies['acme']}").status_code == 200
    events = [e["event"] for e in browser.get("/api/v1/account/security-events").json()]
    assert events[0] == "login_succeeded"


def test_session_cookie_is_host_prefixed_secure_httponly_and_samesite_lax(world):
    browser = world.client()
    response = browser.login(world.email("acme", "staff"))
    header = response.headers["set-cookie"]
    assert header.startswith("__Host-ez360_session=")
    lowered = header.lower()
    assert "secure" in lowered and "httponly" in lowered and "samesite=lax" in lowered and "path=/" in lowered
    assert "domain=" not in lowered


def test_plain_http_development_cookie_drops_the_prefix_and_production_refuses_it(tmp_path):
    settings = settings_for("sqlite:///x.sqlite3", session_cookie_secure=False)
    assert settings.session_cookie_name == "ez360_session"
    with pytest.raises(ValueError, match="EZ360_SESSION_COOKIE_SECURE"):
        settings_for("sqlite:///x.sqlite3", session_cookie_secure=False, environment="production")


def test_sign_in_issues_a_new_session_id_and_ends_the_previous_one(world):
    browser = world.client()
    browser.login(world.email("acme", "staff"))
    first = browser.session_cookie()
    browser.login(world.email("acme", "staff"))
    second = browser.session_cookie()
    assert first != second
    rows = _rows(world, world.users["acme:staff"])
    assert [r.revoked_reason for r in rows] == ["replaced_at_login", None]


def test_passing_the_second_factor_rotates_the_session_id(world):
    browser = world.client()
    email = world.email("acme", "owner")
    response = browser.login(email, second_factor=False)
    assert response.json() == {"status": "mfa_required", "csrf_token": response.json()["csrf_token"]}
    pending = browser.session_cookie()
    # a half-signed-in session reaches nothing
    assert browser.get(f"/api/v1/companies/{world.companies['acme']}").status_code == 401
    assert browser.get("/api/v1/auth/session").status_code == 401
    from tests.support.security_world import Codes
    done = browser.post("/api/v1/auth/login/second-factor", json={"code": Codes.next(world.secrets[email])})
    assert done.status_code == 200 and done.json()["two_factor"] == {"enabled": True, "passed": True,
                                                                   "enrollment_required": False}
    assert browser.session_cookie() != pending
    assert browser.get(f"/api/v1/companies/{world.companies['acme']}").status_code == 200
    rows = _rows(world, world.users["acme:owner"])
    assert [r.revoked_reason for r in rows] == ["mfa_passed", None]


def test_password_change_rotates_this_session_and_ends_the_others(world):
    email = world.email("acme", "staff")
    laptop, phone = world.client(), world.client()
    laptop.login(email)
    phone.login(email)
    before = laptop.session_cookie()
    response = laptop.post("/api/v1/account/password",
                           json={"current_password": PASSWORD, "new_password": "a new and long passphrase"})
    assert response.status_code == 200, response.text
    assert laptop.session_cookie() != before
    assert laptop.get("/api/v1/auth/session").status_code == 200
    assert phone.get("/api/v1/auth/session").status_code == 401


def test_idle_session_times_out(world):
    browser = world.client()
    browser.login(world.email("acme", "staff"))
    engine, db = _db(world)
    with db, db.begin():
        db.execute(update(UserSession).values(last_seen_at=utcnow() - timedelta(minutes=31)))
    engine.dispose()
    assert browser.get("/api/v1/auth/session").status_code == 401


def test_activity_keeps_a_session_alive_until_the_absolute_timeout(world):
    browser = world.client()
    browser.login(world.email("acme", "staff"))
    engine, db = _db(world)
    with db, db.begin():  # signed in 11 h 59 min ago, active a minute ago: alive
        db.execute(update(UserSession).values(started_at=utcnow() - timedelta(hours=11, minutes=59),
                                              last_seen_at=utcnow() - timedelta(minutes=1)))
    assert browser.get("/api/v1/auth/session").status_code == 200
    with db, db.begin():  # 12 h after sign-in it ends, however active it is
        db.execute(update(UserSession).values(started_at=utcnow() - timedelta(hours=12, minutes=1)))
    engine.dispose()
    assert browser.get("/api/v1/auth/session").status_code == 401


def test_timeouts_are_configurable(tmp_path):
    world = build_world(f"sqlite:///{tmp_path / 'ops.sqlite3'}", session_idle_timeout_minutes=5,
                        session_absolute_timeout_hours=1)
    browser = world.client()
    browser.login(world.email("acme", "staff"))
    body = browser.get("/api/v1/auth/session").json()
    from datetime import datetime
    started = datetime.fromisoformat(body["expires_at"]) - timedelta(hours=1)
    assert datetime.fromisoformat(body["idle_expires_at"]) - started <= timedelta(minutes=5, seconds=5)
    engine, db = _db(world)
    with db, db.begin():
        db.execute(update(UserSession).values(last_seen_at=utcnow() - timedelta(minutes=6)))
    engine.dispose()
    assert browser.get("/api/v1/auth/session").status_code == 401


def test_logout_revokes_the_session_server_side(world):
    browser = world.client()
    browser.login(world.email("acme", "staff"))
    stolen = browser.session_cookie()
    assert browser.post("/api/v1/auth/logout").status_code == 204
    thief = world.client()
    thief.http.cookies.set(world.settings.session_cookie_name, stolen)
    assert thief.get("/api/v1/auth/session").status_code == 401
    assert _rows(world, world.users["acme:staff"])[-1].revoked_reason == "logout"


def test_deactivating_a_user_revokes_their_sessions_whoever_does_it(world):
    browser = world.client()
    browser.login(world.email("acme", "staff"))
    engine, db = _db(world)
    with db, db.begin():
        token = issue_token(db, db.get(Company, world.companies["acme"]), db.get(User, world.users["acme:staff"]),
                            "staff", "script")[1]
    with db, db.begin():  # the way any other code path would do it: set the flag
        db.get(User, world.users["acme:staff"]).is_active = False
    with db, db.begin():
        db.get(User, world.users["acme:staff"]).is_active = True  # even reactivated, the old credentials are dead
    engine.dispose()
    assert browser.get("/api/v1/auth/session").status_code == 401
    assert _rows(world, world.users["acme:staff"])[-1].revoked_reason == "user_deactivated"
    assert browser.http.get(f"/api/v1/companies/{world.companies['acme']}",
                            headers={"Authorization": f"Bearer {token}"}).status_code == 401


def test_deactivate_service_revokes_sessions_and_audits(world):
    browser = world.client()
    browser.login(world.email("acme", "finance"))
    engine, db = _db(world)
    with db, db.begin():
        accounts.deactivate(db, db.get(User, world.users["acme:finance"]))
    engine.dispose()
    assert browser.get(f"/api/v1/companies/{world.companies['acme']}").status_code == 401


def test_a_user_can_list_and_end_their_other_sessions(world):
    email = world.email("acme", "viewer")
    laptop, phone, tablet = world.client(), world.client(), world.client()
    for b in (laptop, phone, tablet):
        b.login(email)
    listed = laptop.get("/api/v1/account/sessions").json()
    assert len(listed) == 3 and sum(s["current"] for s in listed) == 1
    phone_id = next(s["id"] for s in phone.get("/api/v1/account/sessions").json() if s["current"])
    assert laptop.delete(f"/api/v1/account/sessions/{phone_id}").status_code == 204
    assert phone.get("/api/v1/auth/session").status_code == 401
    assert laptop.post("/api/v1/account/sessions/revoke-others").json() == {"ended": 1}
    assert tablet.get("/api/v1/auth/session").status_code == 401
    assert laptop.get("/api/v1/auth/session").status_code == 200


def test_a_user_cannot_end_someone_elses_session(world):
    mine, theirs = world.client(), world.client()
    mine.login(world.email("acme", "viewer"))
    theirs.login(world.email("globex", "viewer"))
    their_id = theirs.get("/api/v1/account/sessions").json()[0]["id"]
    assert mine.delete(f"/api/v1/account/sessions/{their_id}").status_code == 404
    assert theirs.get("/api/v1/auth/session").status_code == 200


def test_a_role_change_ends_the_members_sessions_so_the_new_privilege_comes_with_a_new_session(world):
    company = world.companies["acme"]
    staff, owner = world.client(), world.client()
    assert staff.login(world.email("acme", "staff")).status_code == 200
    assert owner.login(world.email("acme", "owner")).status_code == 200
    members = owner.get(f"/api/v1/companies/{company}/members").json()["items"]
    staff_membership = next(m for m in members if m["email"] == world.email("acme", "staff"))
    assert staff.get(f"/api/v1/companies/{company}/invoices").status_code == 200
    changed = owner.request("PATCH", f"/api/v1/companies/{company}/members/{staff_membership['id']}",
                            json={"role": "finance"})
    assert changed.status_code == 200 and changed.json()["role"] == "finance"
    assert staff.get(f"/api/v1/companies/{company}/invoices").status_code == 401
    again = world.client()
    assert again.login(world.email("acme", "staff")).status_code == 200
    assert again.session_cookie() != staff.session_cookie()
    assert again.get(f"/api/v1/companies/{company}/ledger/entries").status_code == 200  # finance may read it
    assert owner.get(f"/api/v1/companies/{company}/members").status_code == 200  # the owner's session is intact
