"""localstripe (a Stripe-compatible server, test-only) as a subprocess on a free 127.0.0.1 port.

`localstripe --port N` binds every interface and persists its store to the shared file
/tmp/localstripe.pickle, which parallel test runs would overwrite; this helper starts the same aiohttp
app bound to 127.0.0.1 only, with the disk persistence switched off, so each server starts empty and
nothing leaves the machine. Webhook endpoints are registered through its `/_config/webhooks/{id}` route;
it signs each delivery like Stripe (`Stripe-Signature: t=<event.created>,v1=<HMAC-SHA256>`) about a
second after the event.
"""

from __future__ import annotations

import subprocess
import sys
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from ez360.cli.processes import stop
from tests.support.platform import free_port

TEST_CARD = {"number": "4242424242424242", "exp_month": "12", "exp_year": "2030", "cvc": "123"}

_LAUNCHER = """
import logging, sys
from aiohttp import web
from localstripe import resources, server

resources.Store.dump_to_disk = lambda self: None   # no shared /tmp/localstripe.pickle
resources.Store.try_load_from_disk = lambda self: None
logging.basicConfig(level=logging.INFO, format="%(message)s")  # webhook delivery outcomes, to the log file
web.run_app(server.app, host="127.0.0.1", port=int(sys.argv[1]), print=None, access_log=None)
"""



@dataclass(frozen=True)
class LocalStripe:
    url: str  # e.g. http://127.0.0.1:54321, the API base for the stripe SDK
    log_path: Path  # localstripe's log: 'webhook "<type>" successfully delivered' / 'failed with response code N'
    api_key: str = "sk_test_ez360_localstripe"

    def log(self) -> str:
        return self.log_path.read_text(errors="replace")

    def wait_for_log(self, text: str, count: int = 1, timeout: float = 20.0) -> None:
        deadline = time.monotonic() + timeout
        while self.log().count(text) < count:
            if time.monotonic() > deadline:
                raise AssertionError(f"localstripe never logged {text!r} x{count}; log:\n{self.log()[-3000:]}")
            time.sleep(0.05)

    def register_webhook(self, name: str, url: str, secret: str, events: list[str] | None = None) -> None:
        data: dict[str, str] = {"url": url, "secret": secret}
        for i, event in enumerate(events or []):
            data[f"events[{i}]"] = event
        response = httpx.post(f"{self.url}/_config/webhooks/{name}", data=data, timeout=10)
        response.raise_for_status()


@contextmanager
def localstripe_server(log_dir: Path, startup_timeout: float = 20.0,
                       launcher: str = _LAUNCHER) -> Iterator[LocalStripe]:
    """Start an empty localstripe; yield it once it answers; stop it (and only it) afterwards.

    `launcher` is the Python program that starts it (argv[1] = port); the default is `_LAUNCHER`."""
    port = free_port()
    log_path = log_dir / f"localstripe-{port}.log"
    log_file = log_path.open("wb")
    proc = subprocess.Popen([sys.executable, "-c", launcher, str(port)], stdout=log_file, stderr=log_file)
    server = LocalStripe(f"http://127.0.0.1:{port}", log_path)
    try:
        deadline = time.monotonic() + startup_timeout
        while True:
            if proc.poll() is not None:
                raise RuntimeError(f"localstripe exited with {proc.returncode}: {server.log()[-2000:]}")
            try:
                httpx.get(f"{server.url}/v1/balance", headers={"Authorization": f"Bearer {server.api_key}"},
                          timeout=1).raise_for_status()
                break
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"localstripe did not answer on port {port} within {startup_timeout}s") from None
                time.sleep(0.1)
        yield server
    finally:
        stop([proc])
        log_file.close()


# --- a small EZ360 world and signed deliveries, shared by the Stripe tests ------------------------------

TEST_SECRET, ROTATED_SECRET, LIVE_SECRET = "whsec_ez360_test_current", "whsec_ez360_test_previous", "whsec_live_x"


@dataclass
class StripeWorld:
    url: str
    company_id: int  # "acme", USD, no connected account (uses the platform account)
    other_company_id: int  # "globex", EUR, connected account acct_globex
    invoice_id: int  # acme, sent, 123.45 USD due
    draft_invoice_id: int
    other_invoice_id: int  # globex, sent
    tokens: dict[str, str]


def build_world(url: str) -> StripeWorld:
    """Migrate `url` and create two companies, members with API tokens, and invoices."""
    from datetime import date
    from decimal import Decimal

    from operational_api.db.engine import make_engine, make_sessionmaker
    from operational_api.security.tokens import issue_token
    from operational_api.services import companies, invoicing, records
    from tests.support.migrated import migrate

    migrate(url)
    engine = make_engine(url)
    tokens: dict[str, str] = {}
    try:
        with make_sessionmaker(engine)() as s, s.begin():
            acme = companies.create_company(s, slug="acme", name="Acme", base_currency="USD", invoice_prefix="AC")
            globex = companies.create_company(s, slug="globex", name="Globex", base_currency="EUR",
                                              invoice_prefix="GX", stripe_account_id="acct_globex")
            for role in ("finance", "viewer"):
                user = companies.create_user(s, email=f"{role}@acme.test", full_name=role, password_hash="x")
                companies.add_member(s, acme, user, role)
                tokens[role] = issue_token(s, acme, user, role, "test")[1]
            boss = companies.create_user(s, email="boss@globex.test", full_name="boss", password_hash="x")
            companies.add_member(s, globex, boss, "owner")
            tokens["globex"] = issue_token(s, globex, boss, "owner", "test")[1]
            client = records.create_client(s, acme, name="Initech", email="ap@initech.test")
            line = [invoicing.LineInput("Consulting", Decimal("1"), 11500, tax_rate_percent=Decimal("7.35"))]
            invoice = invoicing.create_invoice(s, acme, client, line)  # 115.00 + 8.45 tax = 123.45
            invoicing.send_invoice(s, acme, invoice, date(2026, 3, 2))
            draft = invoicing.create_invoice(s, acme, client, line)
            other_client = records.create_client(s, globex, name="Umbrella", email="ap@umbrella.test")
            other = invoicing.create_invoice(s, globex, other_client, line)
            invoicing.send_invoice(s, globex, other, date(2026, 3, 2))
            ids = (acme.id, globex.id, invoice.id, draft.id, other.id)
    finally:
        engine.dispose()
    return StripeWorld(url, ids[0], ids[1], ids[2], ids[3], ids[4], tokens)


def app_settings(url: str, **overrides: Any):
    from ez360.core.settings import Settings

    values: dict[str, Any] = {
        "database_url": url, "environment": "test", "stripe_api_base": "http://127.0.0.1:9",  # nothing there
        "stripe_webhook_secrets_test": f"{TEST_SECRET},{ROTATED_SECRET}", "stripe_webhook_secrets_live": LIVE_SECRET,
        **overrides,
    }
    return Settings(_env_file=None, **values)


def stripe_event(event_type: str, obj: dict[str, Any], *, event_id: str | None = None, created: int | None = None,
                 livemode: bool = False, account: str | None = None) -> dict[str, Any]:
    """An event shaped like Stripe's (API version 2024-06-20 fields that processing reads)."""
    import uuid

    event = {"id": event_id or f"evt_{uuid.uuid4().hex[:24]}", "object": "event", "type": event_type,
             "api_version": "2024-06-20", "created": created or int(time.time()), "livemode": livemode,
             "pending_webhooks": 1, "request": {"id": None, "idempotency_key": None}, "data": {"object": obj}}
    if account:
        event["account"] = account
    return event


def signed_headers(body: bytes, secret: str = TEST_SECRET, timestamp: int | None = None) -> dict[str, str]:
    from operational_api.stripe_integration.signature import sign

    return {"Stripe-Signature": sign(body, secret, timestamp), "Content-Type": "application/json"}
