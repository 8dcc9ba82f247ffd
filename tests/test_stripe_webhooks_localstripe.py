"""Stripe webhooks with real signed deliveries: localstripe (a Stripe-compatible server) sends its events to
the operational API served by uvicorn, signed with the secret it was configured with, about a second after
each event. The API creates intents through the stripe SDK against the same localstripe.
"""

from __future__ import annotations

import time

import httpx
import pytest
import stripe
from sqlalchemy import select

from operational_api.app import create_app
from operational_api.db.models import Account, Client, Company, Invoice, JournalLine, Payment
from operational_api.db.stripe_models import StripeEvent, StripePosting
from operational_api.services import ledger
from operational_api.stripe_integration import intents, processing
from tests.support.live_server import serve_app
from tests.support.localstripe_server import (
    ROTATED_SECRET,
    TEST_CARD,
    TEST_SECRET,
    app_settings,
    build_world,
    localstripe_server,
)


@pytest.fixture
def db_url(empty_ops_db):
    return empty_ops_db


@pytest.fixture
def localstripe(tmp_path):
    with localstripe_server(tmp_path) as server:
        yield server


def _sdk(localstripe) -> stripe.StripeClient:
    return stripe.StripeClient(localstripe.api_key, base_addresses={"api": localstripe.url})


def _served(url, localstripe, **settings):
    app = create_app(app_settings(url, stripe_api_base=localstripe.url, stripe_api_key=localstripe.api_key,
                                  **settings))
    return app, serve_app(app)


def _wait(predicate, what: str, timeout: float = 20.0):
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def _event_status(sessions, event_type: str) -> list[str]:
    with sessions() as s:
        return list(s.scalars(select(StripeEvent.status).where(StripeEvent.type == event_type)))


def _paying_customer(sdk: stripe.StripeClient) -> tuple[str, str]:
    """A customer with a card attached as a source (what localstripe needs to charge)."""
    customer = sdk.v1.customers.create({"email": "ap@initech.test"})
    token = sdk.v1.tokens.create({"card": TEST_CARD})
    card = sdk.v1.customers.payment_sources.create(customer.id, {"source": token.id})
    return customer.id, card.id


def test_a_real_payment_intent_succeeded_delivery_pays_the_invoice(db_url, localstripe):
    world = build_world(db_url)
    app, server = _served(db_url, localstripe)
    sessions = app.state.sessionmaker
    sdk = _sdk(localstripe)
    customer_id, card_id = _paying_customer(sdk)
    with sessions() as s, s.begin():
        s.get(Client, s.get(Invoice, world.invoice_id).client_id).stripe_customer_id = customer_id
    with server as base:
        localstripe.register_webhook("ez360", f"{base}/webhooks/stripe", TEST_SECRET)
        created = httpx.post(f"{base}/api/v1/companies/{world.company_id}/invoices/{world.invoice_id}/payment-intent",
                             headers={"Authorization": f"Bearer {world.tokens['finance']}"})
        assert created.status_code == 201, created.text
        pi_id = created.json()["payment_intent_id"]
        sdk.v1.payment_intents.update(pi_id, {"payment_method": card_id})  # the customer pays
        charge_id = sdk.v1.payment_intents.confirm(pi_id).latest_charge.id
        localstripe.wait_for_log('webhook "payment_intent.succeeded" successfully delivered')
        _wait(lambda: _event_status(sessions, "payment_intent.succeeded") == ["processed"], "processing")
    with sessions() as s:
        invoice = s.get(Invoice, world.invoice_id)
        assert (invoice.status, invoice.amount_paid_minor) == ("paid", 12345)
        [payment] = s.scalars(select(Payment)).all()
        assert (payment.method, payment.amount_minor, payment.stripe_payment_intent_id, payment.stripe_charge_id) == (
            "stripe", 12345, pi_id, charge_id)
        # the fee comes from the charge's balance transaction, read through the SDK: localstripe charges none
        assert [(p.kind, p.amount_minor) for p in s.scalars(select(StripePosting).order_by(StripePosting.id))] == [
            ("payment", 12345), ("fee", 0)]


def test_a_real_delivery_before_the_app_knows_the_intent_waits_then_pays(db_url, localstripe):
    world = build_world(db_url)
    app, server = _served(db_url, localstripe)
    sessions = app.state.sessionmaker
    sdk = _sdk(localstripe)
    customer_id, card_id = _paying_customer(sdk)
    with server as base:
        localstripe.register_webhook("ez360", f"{base}/webhooks/stripe", TEST_SECRET)
        # The route's Stripe call succeeded, but its database commit has not landed when Stripe delivers.
        pi = sdk.v1.payment_intents.create({
            "amount": 12345, "currency": "usd", "customer": customer_id, "payment_method": card_id,
            "metadata": {"ez360_company_id": str(world.company_id), "ez360_invoice_id": str(world.invoice_id)}})
        sdk.v1.payment_intents.confirm(pi.id)
        localstripe.wait_for_log('webhook "payment_intent.succeeded" successfully delivered')
        _wait(lambda: _event_status(sessions, "payment_intent.succeeded") == ["waiting"], "waiting")
        with sessions() as s, s.begin():  # now the commit lands
            intents.remember_intent(s, s.get(Company, world.company_id), s.get(Invoice, world.invoice_id), pi.id,
                                    status=pi.status, amount_minor=12345, stripe_account=None)
        report = processing.process_pending(sessions, config=processing.ProcessingConfig.from_settings(
            app.state.settings))
    assert report.processed == 1
    with sessions() as s:
        assert s.get(Invoice, world.invoice_id).status == "paid"


def test_real_deliveries_verify_with_a_rotated_secret_and_are_refused_with_an_unknown_one(tmp_path, localstripe):
    url = f"sqlite:///{tmp_path / 'ops.sqlite3'}"
    build_world(url)
    app, server = _served(url, localstripe)
    with server as base:
        localstripe.register_webhook("old-secret", f"{base}/webhooks/stripe", ROTATED_SECRET, ["customer.created"])
        localstripe.register_webhook("unknown", f"{base}/webhooks/stripe", "whsec_unknown", ["customer.created"])
        _sdk(localstripe).v1.customers.create({"email": "x@example.org"})
        localstripe.wait_for_log('webhook "customer.created" successfully delivered')
        localstripe.wait_for_log('webhook "customer.created" failed with response code 400')
        _wait(lambda: _event_status(app.state.sessionmaker, "customer.created") == ["ignored"], "processing")


def test_a_real_test_mode_delivery_is_refused_by_a_live_deployment(tmp_path, localstripe):
    url = f"sqlite:///{tmp_path / 'ops.sqlite3'}"
    build_world(url)
    app, server = _served(url, localstripe, stripe_mode="live", stripe_webhook_secrets_live=TEST_SECRET)
    with server as base:
        localstripe.register_webhook("ez360", f"{base}/webhooks/stripe", TEST_SECRET, ["customer.created"])
        _sdk(localstripe).v1.customers.create({"email": "x@example.org"})
        localstripe.wait_for_log('webhook "customer.created" failed with response code 400')
    with app.state.sessionmaker() as s:
        assert s.scalars(select(StripeEvent)).all() == []


def test_a_real_payout_paid_delivery_moves_stripe_clearing_to_bank(tmp_path, localstripe):
    url = f"sqlite:///{tmp_path / 'ops.sqlite3'}"
    world = build_world(url)
    app, server = _served(url, localstripe, stripe_platform_company="acme")
    sessions = app.state.sessionmaker
    with server as base:
        localstripe.register_webhook("ez360", f"{base}/webhooks/stripe", TEST_SECRET)
        payout = _sdk(localstripe).v1.payouts.create({"amount": 5000, "currency": "eur", "status": "paid"})
        localstripe.wait_for_log('webhook "payout.paid" successfully delivered')
        _wait(lambda: _event_status(sessions, "payout.paid") == ["processed"], "processing")
    assert _event_status(sessions, "payout.created") == ["ignored"]
    with sessions() as s:
        [posting] = s.scalars(select(StripePosting)).all()
        assert (posting.kind, posting.stripe_object_id, posting.amount_minor, posting.currency,
                posting.company_id) == ("payout", payout.id, 5000, "EUR", world.company_id)
        lines = s.execute(select(Account.code, JournalLine.debit_minor, JournalLine.credit_minor)
                          .join(Account, Account.id == JournalLine.account_id)
                          .where(JournalLine.company_id == world.company_id, Account.code.in_(
                              (ledger.BANK, ledger.STRIPE_CLEARING)))).all()
        assert sorted(lines) == [(ledger.BANK, 5000, 0), (ledger.STRIPE_CLEARING, 0, 5000)]
