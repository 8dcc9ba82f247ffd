"""X-Forwarded-For counts only from EZ360_TRUSTED_PROXIES (default: none). A client on 127.0.0.1 that sends a
spoofed header can neither escape the per-address login limit nor put another address into the security log:
not against the API server `ez360 serve api` starts, and not against an app left behind uvicorn's own default
(which believes 127.0.0.1)."""

from __future__ import annotations

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from uvicorn.middleware.proxy_headers import ProxyHeadersMiddleware

from ez360.cli.processes import services, start, stop
from ez360.core.settings import Settings
from operational_api.app import create_app
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.db.security_models import SecurityEvent
from tests.support.migrated import migrate
from tests.support.platform import free_port
from tests.support.security_world import settings_for

# two failures per address are free, the next attempt waits a minute: a third attempt from one address is refused
LIMITS = {"login_ip_free_attempts": 2, "login_ip_lockout_threshold": 3, "login_delay_seconds": 60}


@pytest.fixture(scope="module")
def url(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('proxy') / 'ops.sqlite3'}"
    migrate(url)
    return url


def _three_spoofed_logins(post) -> list[int]:
    return [post("/api/v1/auth/login", json={"email": f"nobody{i}@example.test", "password": "wrong passphrase 42"},
                 headers={"X-Forwarded-For": f"203.0.113.{i}"}).status_code for i in (1, 2, 3)]


def _logged_addresses(url: str, since_id: int = 0) -> set[str]:
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        rows = s.scalars(select(SecurityEvent.ip_address).where(
            SecurityEvent.id > since_id, SecurityEvent.event.in_(("login_failed", "login_throttled"))))
        found = set(rows)
    engine.dispose()
    return found


def _last_event_id(url: str) -> int:
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        last = s.scalar(select(SecurityEvent.id).order_by(SecurityEvent.id.desc())) or 0
    engine.dispose()
    return last


def test_the_api_server_does_not_believe_a_forwarded_for_from_localhost(url, tmp_path, monkeypatch):
    for name, value in LIMITS.items():
        monkeypatch.setenv(f"EZ360_{name.upper()}", str(value))
    settings = Settings(_env_file=None, database_url=url, var_dir=tmp_path)
    api = services(settings, port=free_port())["api"]
    since = _last_event_id(url)
    proc = start(api, settings, tmp_path / "logs")
    try:
        with httpx.Client(base_url=api.url, timeout=30) as http:
            statuses = _three_spoofed_logins(http.post)
    finally:
        stop([proc])
    assert statuses == [401, 401, 429]  # one address, one limit, whatever the header says
    assert _logged_addresses(url, since) == {"127.0.0.1"}


def test_an_app_behind_uvicorns_default_trust_still_refuses_the_spoofed_address(url):
    from operational_api.security.client_address import UNVERIFIED
    app = create_app(settings_for(url, **LIMITS))  # no trusted proxies
    behind_default_uvicorn = ProxyHeadersMiddleware(app, trusted_hosts="127.0.0.1")  # uvicorn's own default
    client = TestClient(behind_default_uvicorn, base_url="https://testserver", client=("127.0.0.1", 50123))
    since = _last_event_id(url)
    assert _three_spoofed_logins(client.post) == [401, 401, 429]
    assert _logged_addresses(url, since) == {UNVERIFIED}


def test_a_configured_proxys_forwarded_for_is_believed(url, tmp_path):
    settings = settings_for(url, trusted_proxies="127.0.0.1", **LIMITS)
    argv = services(settings)["api"].argv
    assert argv[argv.index("--forwarded-allow-ips") + 1] == "127.0.0.1"  # what `ez360 serve api` runs
    app = create_app(settings)
    client = TestClient(ProxyHeadersMiddleware(app, trusted_hosts="127.0.0.1"), base_url="https://testserver",
                        client=("127.0.0.1", 50124))
    since = _last_event_id(url)
    assert _three_spoofed_logins(client.post) == [401, 401, 401]  # three clients behind the proxy
    assert _logged_addresses(url, since) == {"203.0.113.1", "203.0.113.2", "203.0.113.3"}
