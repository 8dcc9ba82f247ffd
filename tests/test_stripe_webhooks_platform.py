"""Payouts of the platform Stripe account go to the company EZ360_STRIPE_PLATFORM_COMPANY names, and nowhere
else: not to whichever company happens to have no Stripe account (any user can create one)."""

from __future__ import annotations

import json

from fastapi.testclient import TestClient
from sqlalchemy import func, select

from operational_api.app import create_app
from operational_api.db.models import Account, JournalLine
from operational_api.db.stripe_models import StripeEvent, StripePosting
from operational_api.services import ledger
from operational_api.stripe_integration import processing, queue
from tests.support.localstripe_server import app_settings, build_world, signed_headers, stripe_event

PAYOUT = {"id": "po_platform1", "object": "payout", "amount": 5000, "currency": "usd", "status": "paid",
          "arrival_date": 1772700000}


def _bank_balance(sessions, company_id: int) -> int:
    with sessions() as s:
        return s.scalar(select(func.coalesce(func.sum(JournalLine.debit_minor - JournalLine.credit_minor), 0))
                        .join(Account, Account.id == JournalLine.account_id)
                        .where(Account.company_id == company_id, Account.code == ledger.BANK))


def test_a_platform_payout_waits_as_a_failed_event_until_the_platform_company_is_named(tmp_path):
    url = f"sqlite:///{tmp_path / 'ops.sqlite3'}"
    world = build_world(url)  # acme is the only company without a connected Stripe account
    app = create_app(app_settings(url))  # EZ360_STRIPE_PLATFORM_COMPANY not set
    sessions = app.state.sessionmaker
    event = stripe_event("payout.paid", PAYOUT)  # no `account`: the platform account's own payout
    body = json.dumps(event).encode()
    assert TestClient(app).post("/webhooks/stripe", content=body, headers=signed_headers(body)).status_code == 200

    with sessions() as s:
        row = s.scalar(select(StripeEvent).where(StripeEvent.event_id == event["id"]))
        assert row.status == "failed" and "platform_company_not_configured" in row.last_error
        assert "EZ360_STRIPE_PLATFORM_COMPANY" in row.last_error
        assert s.scalar(select(func.count()).select_from(StripePosting)) == 0
    assert _bank_balance(sessions, world.company_id) == 0  # acme's books did not take it
    with sessions() as s:
        assert [e.event_id for e in queue.events_needing_attention(s)] == [event["id"]]

    with sessions() as s, s.begin():  # a slug that names no company is a reason of its own
        queue.requeue(s, event["id"])
    processing.process_pending(sessions, config=processing.ProcessingConfig(platform_company="initech"))
    with sessions() as s:
        row = s.scalar(select(StripeEvent).where(StripeEvent.event_id == event["id"]))
        assert row.status == "failed" and "platform_company_unknown" in row.last_error

    with sessions() as s, s.begin():  # the operator names the company, and retries the event
        queue.requeue(s, event["id"])
    report = processing.process_pending(sessions, config=processing.ProcessingConfig(platform_company="acme"))
    assert report.processed == 1
    assert _bank_balance(sessions, world.company_id) == 5000
