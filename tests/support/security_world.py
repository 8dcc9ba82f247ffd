"""Shared helpers for the security tests: a small two-company world, a browser-like client that signs in
with the session cookie (and its CSRF token, and TOTP codes), a real SMTP server, real uvicorn processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pyotp
from fastapi.testclient import TestClient

from ez360.cli.processes import stop
from ez360.core.settings import Settings
from operational_api.app import create_app
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.db.models import utcnow
from operational_api.db.security_models import UserSecurity
from operational_api.security import encryption, passwords
from operational_api.services import companies
from tests.support.migrated import migrate
from tests.support.platform import free_port  # noqa: F401 - re-exported for the security tests

PASSWORD = "quiet-lantern-orbit-42"
ROLES = ("owner", "admin", "finance", "staff", "viewer")
_HASH = passwords.hash_password(PASSWORD)


@dataclass
class World:
    url: str
    settings: Settings
    companies: dict[str, int] = field(default_factory=dict)
    users: dict[str, int] = field(default_factory=dict)  # "acme:owner" -> user id
    secrets: dict[str, str] = field(default_factory=dict)  # email -> TOTP secret

    def email(self, company: str, role: str) -> str:
        return f"{role}@{company}.test"

    def client(self, **kwargs) -> Browser:
        return Browser(TestClient(create_app(self.settings), base_url="https://testserver", **kwargs), self)


def settings_for(url: str, **overrides) -> Settings:
    base = {"database_url": url, "smtp_port": free_port(), "public_base_url": "https://testserver"}
    return Settings(_env_file=None, **{**base, **overrides})


def build_world(url: str, *, enroll_2fa: bool = True, **overrides) -> World:
    """Companies acme and globex with one verified user per role (password PASSWORD). With `enroll_2fa`,
    owners and admins already have TOTP on (their secrets are in `world.secrets`)."""
    migrate(url)
    world = World(url, settings_for(url, **overrides))
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s, s.begin():
        for slug, currency in (("acme", "USD"), ("globex", "EUR")):
            company = companies.create_company(s, slug=slug, name=slug.title(), base_currency=currency,
                                               invoice_prefix=slug[:2].upper())
            world.companies[slug] = company.id
            for role in ROLES:
                user = companies.create_user(s, email=world.email(slug, role), full_name=f"{role} of {slug}",
                                             password_hash=_HASH)
                companies.add_member(s, company, user, role)
                world.users[f"{slug}:{role}"] = user.id
                if enroll_2fa and role in ("owner", "admin"):
                    secret = pyotp.random_base32()
                    s.add(UserSecurity(user_id=user.id, totp_secret=encryption.encrypt(secret),
                                       totp_enabled_at=utcnow()))
                    world.secrets[user.email] = secret
    engine.dispose()
    return world


class Codes:
    """TOTP codes that the server has not seen yet: each call gives the next unused time step within the
    accepted window (one step either side), waiting for the clock when the window is used up."""

    _last: dict[str, int] = {}

    @classmethod
    def next(cls, secret: str) -> str:
        while True:
            current = int(time.time() // 30)
            step = max(current - 1, cls._last.get(secret, -1) + 1)
            if step <= current + 1:
                cls._last[secret] = step
                return pyotp.TOTP(secret).at(step * 30)
            time.sleep(1)


class Browser:
    """A browser session against the app: cookie jar, CSRF header on state changes, TOTP when asked."""

    def __init__(self, client: TestClient, world: World):
        self.http, self.world, self.csrf = client, world, None

    def login(self, email: str, password: str = PASSWORD, *, second_factor: bool = True) -> httpx.Response:
        response = self.http.post("/api/v1/auth/login", json={"email": email, "password": password})
        if response.status_code == 200:
            self.csrf = response.json()["csrf_token"]
            if response.json()["status"] == "mfa_required" and second_factor:
                response = self.post("/api/v1/auth/login/second-factor",
                                     json={"code": Codes.next(self.world.secrets[email])})
                if response.status_code == 200:
                    self.csrf = response.json()["csrf_token"]
        return response

    def request(self, method: str, path: str, **kwargs) -> httpx.Response:
        headers = dict(kwargs.pop("headers", {}) or {})
        if self.csrf and method.upper() in ("POST", "PUT", "PATCH", "DELETE"):
            headers.setdefault("X-CSRF-Token", self.csrf)
        response = self.http.request(method, path, headers=headers, **kwargs)
        if response.status_code == 200 and "application/json" in response.headers.get("content-type", ""):
            body = response.json()
            if isinstance(body, dict) and body.get("csrf_token"):
                self.csrf = body["csrf_token"]
        return response

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.request("GET", path, **kwargs)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return self.request("POST", path, **kwargs)

    def put(self, path: str, **kwargs) -> httpx.Response:
        return self.request("PUT", path, **kwargs)

    def delete(self, path: str, **kwargs) -> httpx.Response:
        return self.request("DELETE", path, **kwargs)

    def session_cookie(self) -> str | None:
        return self.http.cookies.get(self.world.settings.session_cookie_name)



# --- a real SMTP server ---------------------------------------------------------------------------

class Inbox:
    def __init__(self):
        self.messages: list = []

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd handler protocol
        from email import message_from_bytes, policy
        self.messages.append(message_from_bytes(envelope.content, policy=policy.default))
        return "250 OK"

    def bodies_to(self, address: str) -> list[str]:
        return [m.get_content() for m in self.messages if m["To"] == address]

    def wait_for(self, count: int, timeout: float = 10) -> None:
        deadline = time.monotonic() + timeout
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)


@contextmanager
def smtp_server(port: int) -> Iterator[Inbox]:
    """aiosmtpd on 127.0.0.1:`port`, collecting every message it receives."""
    from aiosmtpd.controller import Controller
    inbox = Inbox()
    controller = Controller(inbox, hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield inbox
    finally:
        controller.stop()
        asyncio.set_event_loop(asyncio.new_event_loop())  # aiosmtpd leaves its loop closed behind


def token_from(body: str) -> str:
    return body.split("token=", 1)[1].split()[0].strip()


# --- real server processes ------------------------------------------------------------------------

@contextmanager
def uvicorn_process(database_url: str, log: Path, **env_settings) -> Iterator[str]:
    """`ez360`'s API app under a real uvicorn process on 127.0.0.1 (its own interpreter and DB pool)."""
    port = free_port()
    env = {**os.environ, "EZ360_DATABASE_URL": database_url, "EZ360_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
           **{f"EZ360_{k.upper()}": str(v) for k, v in env_settings.items()}}
    with open(log, "w") as out:
        proc = subprocess.Popen([sys.executable, "-m", "uvicorn", "--factory", "operational_api.app:create_app",
                                 "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning"],
                                env=env, stdout=out, stderr=subprocess.STDOUT, cwd=Path(__file__).parents[2])
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                if httpx.get(f"{base}/health/live", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"uvicorn did not start: {log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield base
    finally:
        stop([proc])
