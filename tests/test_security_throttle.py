"""Login throttling: per account and per client address, progressive delay then lockout, kept in the ops DB
(across processes and restarts), no account enumeration, every attempt and lockout audited."""

from __future__ import annotations

import re
import statistics
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import httpx
import pytest
from sqlalchemy import func, select

from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.db.models import utcnow
from operational_api.db.security_models import SecurityEvent
from operational_api.security import throttle
from tests.support.security_world import PASSWORD, build_world, uvicorn_process

LIMITS = throttle.Limits()  # the defaults of the settings: 5 free, 2 s doubling, lock at 10 for 15 min, 1 h


@pytest.fixture
def sqlite_world(tmp_path):
    return build_world(f"sqlite:///{tmp_path / 'ops.sqlite3'}", enroll_2fa=False)


@pytest.fixture
def any_db(ops_db):
    """A migrated ops DB on each engine, for the rule itself."""
    return ops_db


def _sm(url):
    engine = make_engine(url)
    return engine, make_sessionmaker(engine)


def _events(url, name):
    engine, sm = _sm(url)
    with sm() as db:
        count = db.scalar(select(func.count()).select_from(SecurityEvent).where(SecurityEvent.event == name))
    engine.dispose()
    return count


# --- the rule itself, on a controlled clock -------------------------------------------------------------------

def test_five_failures_are_free_and_the_sixth_attempt_must_wait(any_db):
    engine, sm = _sm(any_db)
    now, key = utcnow(), [("acct:x", LIMITS)]
    assert all(throttle.attempt(sm, key, now=now).allowed for _ in range(5))
    sixth = throttle.attempt(sm, key, now=now)
    assert not sixth.allowed and sixth.retry_after == 2 and not sixth.locked
    assert throttle.attempt(sm, key, now=now + timedelta(seconds=2)).allowed  # after the 2 s delay
    refused = throttle.attempt(sm, key, now=now + timedelta(seconds=2))
    assert not refused.allowed and refused.retry_after == 4  # the delay doubles
    engine.dispose()


def test_tenth_failure_locks_the_key_for_fifteen_minutes(any_db):
    engine, sm = _sm(any_db)
    now, key = utcnow(), [("acct:y", LIMITS)]
    t = now
    for _ in range(10):
        verdict = throttle.attempt(sm, key, now=t)
        assert verdict.allowed
        t += timedelta(seconds=40)  # slower than any delay: only the lockout stops this one
    locked = throttle.attempt(sm, key, now=t)
    assert locked.locked and 14 * 60 < locked.retry_after <= 15 * 60
    assert _events(any_db, "login_lockout") == 1
    engine.dispose()


def test_an_attacker_gets_at_most_13_password_checks_per_account_per_hour(any_db):
    engine, sm = _sm(any_db)
    start = t = utcnow()
    checked = 0
    while t < start + timedelta(hours=1):  # the fastest possible attacker: retries the moment it may
        verdict = throttle.attempt(sm, [("acct:z", LIMITS)], now=t)
        checked += verdict.allowed
        t += timedelta(seconds=verdict.retry_after if not verdict.allowed else 0.1)
    assert checked <= 13  # and so far below 100
    engine.dispose()


def test_failures_are_forgotten_an_hour_after_the_last_one(any_db):
    engine, sm = _sm(any_db)
    now = utcnow()
    for i in range(5):
        throttle.attempt(sm, [("acct:w", LIMITS)], now=now + timedelta(seconds=i))
    assert not throttle.attempt(sm, [("acct:w", LIMITS)], now=now + timedelta(seconds=5)).allowed
    later = now + timedelta(hours=1, seconds=10)
    assert all(throttle.attempt(sm, [("acct:w", LIMITS)], now=later + timedelta(seconds=i)).allowed
               for i in range(5))
    engine.dispose()


# --- through the API -----------------------------------------------------------------------------------------

def _login(client, email, password):
    return client.post("/api/v1/auth/login", json={"email": email, "password": password})


def test_sixth_wrong_password_in_a_row_is_delayed_and_even_the_right_one_is_refused(sqlite_world):
    client = sqlite_world.client().http
    email = sqlite_world.email("acme", "staff")
    for _ in range(5):
        assert _login(client, email, "wrong password guess").status_code == 401
    sixth = _login(client, email, "wrong password guess")
    assert sixth.status_code == 429 and int(sixth.headers["retry-after"]) >= 1
    assert sixth.headers["content-type"] == "application/problem+json"
    assert _login(client, email, PASSWORD).status_code == 429  # not checked at all while it must wait
    assert _events(sqlite_world.url, "login_failed") == 5
    assert _events(sqlite_world.url, "login_throttled") == 2


def test_a_successful_sign_in_resets_the_accounts_count(sqlite_world):
    client = sqlite_world.client().http
    email = sqlite_world.email("acme", "finance")
    for _ in range(4):
        _login(client, email, "wrong password guess")
    assert _login(client, email, PASSWORD).status_code == 200
    for _ in range(5):
        assert _login(client, email, "wrong password guess").status_code == 401


def test_one_client_address_spraying_many_accounts_is_throttled(tmp_path):
    world = build_world(f"sqlite:///{tmp_path / 'ops.sqlite3'}", enroll_2fa=False, login_ip_free_attempts=8,
                        login_ip_lockout_threshold=12)
    client = world.client().http
    answers = [_login(client, f"user{i}@nowhere.test", "wrong password guess").status_code for i in range(9)]
    assert answers == [401] * 8 + [429]  # every account is new: the address is what is limited


def test_unknown_and_known_accounts_get_the_same_answer_in_similar_time(tmp_path):
    world = build_world(f"sqlite:///{tmp_path / 'ops.sqlite3'}", enroll_2fa=False, login_ip_free_attempts=100,
                        login_ip_lockout_threshold=200)
    client = world.client().http

    def timed(email):
        start = time.perf_counter()
        response = _login(client, email, "wrong password guess")
        return response, time.perf_counter() - start

    known, unknown = [], []
    for company in ("acme", "globex"):
        for role in ("viewer", "staff", "finance"):  # interleaved, so both see the same machine load
            known.append(timed(world.email(company, role)))
            unknown.append(timed(f"nobody.{role}@{company}.test"))
    assert {(r.status_code, r.json()["detail"]) for r, _ in known + unknown} == {
        (401, "email or password is incorrect")}
    known_t, unknown_t = statistics.median(t for _, t in known), statistics.median(t for _, t in unknown)
    assert abs(known_t - unknown_t) < 0.5 * max(known_t, unknown_t) + 0.05  # both pay one argon2 check
    for _ in range(5):
        _login(client, "ghost@acme.test", "wrong password guess")
        _login(client, world.email("globex", "admin"), "wrong password guess")
    ghost = _login(client, "ghost@acme.test", "wrong password guess")
    real = _login(client, world.email("globex", "admin"), "wrong password guess")
    assert ghost.status_code == real.status_code == 429  # an unknown address is throttled like a real one
    # the same words; the seconds to wait may differ by the one that passed between the two answers
    assert re.sub(r"\d+", "N", ghost.json()["detail"]) == re.sub(r"\d+", "N", real.json()["detail"])
    assert abs(int(ghost.headers["Retry-After"]) - int(real.headers["Retry-After"])) <= 1


def test_second_factor_guesses_are_throttled_too(tmp_path):
    world = build_world(f"sqlite:///{tmp_path / 'ops.sqlite3'}")
    browser = world.client()
    assert browser.login(world.email("acme", "owner"), second_factor=False).json()["status"] == "mfa_required"
    answers = [browser.post("/api/v1/auth/login/second-factor", json={"code": "000000"}).status_code
               for _ in range(6)]
    assert answers == [401] * 5 + [429]
    assert _events(world.url, "mfa_failed") == 5


# --- across two real server processes, on SQLite and PostgreSQL ----------------------------------------------

def _two_processes(url, tmp_path):
    """Two uvicorn processes sharing one ops DB (default limits). The delay after 5 failures holds across
    them; 100 wrong passwords, alternating between them 4 at a time, never sign in and get at most 10 password
    checks; a lockout recorded before the processes started (a restart) holds in both."""
    world = build_world(url, enroll_2fa=False)
    email, locked_email = world.email("acme", "owner"), world.email("globex", "owner")
    engine, sm = _sm(url)
    earlier = utcnow() - timedelta(minutes=30)
    for i in range(9):  # nine failures, a minute apart, half an hour ago: before the servers (re)started
        assert throttle.attempt(sm, [(throttle.account_key("acct", locked_email), LIMITS)],
                                now=earlier + timedelta(minutes=i)).allowed
    engine.dispose()
    with uvicorn_process(url, tmp_path / "a.log") as a, uvicorn_process(url, tmp_path / "b.log") as b:
        def login(base, address, password):
            return httpx.post(f"{base}/api/v1/auth/login", json={"email": address, "password": password}, timeout=30)

        first = [login((a, b)[i % 2], email, f"wrong guess number {i}").status_code for i in range(5)]
        sixth = login(b, email, "wrong guess number 5")  # five failures went through both processes
        with ThreadPoolExecutor(4) as pool:
            rest = list(pool.map(lambda i: login((a, b)[i % 2], email, f"wrong guess number {i}").status_code,
                                 range(6, 100)))
        right = [login(base, email, PASSWORD) for base in (a, b)]
        tenth = login(a, locked_email, "wrong guess again")
        after_lock = login(b, locked_email, PASSWORD)
    assert first == [401] * 5 and sixth.status_code == 429 and int(sixth.headers["retry-after"]) >= 1
    answers = first + [sixth.status_code] + rest
    assert len(answers) == 100 and 200 not in answers and set(answers) <= {401, 429}
    assert answers.count(401) <= 10  # at most ten password checks; the others were never checked
    assert [r.status_code for r in right] == [429, 429]  # the right password, too, must wait
    assert tenth.status_code == 401 and after_lock.status_code == 429
    assert 14 * 60 < int(after_lock.headers["retry-after"]) <= 15 * 60
    assert _events(url, "login_lockout") == 1
    assert _events(url, "login_failed") + _events(url, "login_throttled") == 100 + 2 + 2


@pytest.mark.slow
def test_hundred_wrong_passwords_across_two_processes_never_sign_in_sqlite(tmp_path):
    _two_processes(f"sqlite:///{tmp_path / 'ops.sqlite3'}", tmp_path)


@pytest.mark.slow
@pytest.mark.postgres
def test_hundred_wrong_passwords_across_two_processes_never_sign_in_postgres(postgres_url, tmp_path):
    _two_processes(postgres_url, tmp_path)
