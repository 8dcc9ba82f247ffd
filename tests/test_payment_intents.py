"""A Stripe payment intent for an invoice, created through the stripe SDK against localstripe."""

from __future__ import annotations

from datetime import date

import pytest
import stripe
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from operational_api.app import create_app
from operational_api.db.models import Client, Company, Invoice
from operational_api.db.stripe_models import StripePaymentIntent
from operational_api.services import payments
from operational_api.services.errors import ValidationFailed
from operational_api.stripe_integration import intents
from tests.support.localstripe_server import TEST_CARD, app_settings, build_world, localstripe_server


@pytest.fixture(scope="module")
def localstripe(tmp_path_factory):
    with localstripe_server(tmp_path_factory.mktemp("localstripe")) as server:
        yield server


@pytest.fixture
def setup(tmp_path, localstripe):
    url = f"sqlite:///{tmp_path / 'ops.sqlite3'}"
    world = build_world(url)
    app = create_app(app_settings(url, stripe_api_base=localstripe.url, stripe_api_key=localstripe.api_key))
    return TestClient(app), world, app.state.sessionmaker


def _sdk(localstripe) -> stripe.StripeClient:
    return stripe.StripeClient(localstripe.api_key, base_addresses={"api": localstripe.url})


def _auth(world, who="finance"):
    return {"Authorization": f"Bearer {world.tokens[who]}"}


def _path(world, invoice_id=None, company_id=None):
    return (f"/api/v1/companies/{company_id or world.company_id}/invoices/{invoice_id or world.invoice_id}"
            "/payment-intent")


def test_finance_gets_a_payment_intent_for_the_amount_due(setup, localstripe):
    client, world, sessions = setup
    response = client.post(_path(world), headers=_auth(world))
    assert response.status_code == 201, response.text
    body = response.json()
    assert (body["amount"], body["amount_minor"], body["currency"], body["created"]) == ("123.45", 12345, "USD", True)
    assert body["client_secret"].startswith(body["payment_intent_id"] + "_secret_")
    assert body["status"] == "requires_payment_method" and body["stripe_account"] is None
    at_stripe = _sdk(localstripe).v1.payment_intents.retrieve(body["payment_intent_id"])
    assert (at_stripe.amount, at_stripe.currency) == (12345, "usd")
    assert at_stripe.metadata["ez360_invoice_id"] == str(world.invoice_id)
    with sessions() as s:
        row = s.scalar(select(StripePaymentIntent))
        assert (row.invoice_id, row.company_id, row.amount_minor, row.stripe_payment_intent_id) == (
            world.invoice_id, world.company_id, 12345, body["payment_intent_id"])


def test_asking_again_returns_the_same_open_intent(setup):
    client, world, sessions = setup
    first = client.post(_path(world), headers=_auth(world)).json()
    again = client.post(_path(world), headers=_auth(world))
    assert again.status_code == 200
    assert again.json()["payment_intent_id"] == first["payment_intent_id"] and again.json()["created"] is False
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(StripePaymentIntent)) == 1


def test_no_second_intent_while_a_payment_waits_to_be_booked(setup, localstripe):
    client, world, sessions = setup
    sdk = _sdk(localstripe)
    customer = sdk.v1.customers.create({"email": "ap@initech.test"})
    card = sdk.v1.customers.payment_sources.create(customer.id, {"source": sdk.v1.tokens.create(
        {"card": TEST_CARD}).id})
    with sessions() as s, s.begin():
        s.get(Client, s.get(Invoice, world.invoice_id).client_id).stripe_customer_id = customer.id
    pi_id = client.post(_path(world), headers=_auth(world)).json()["payment_intent_id"]
    sdk.v1.payment_intents.update(pi_id, {"payment_method": card.id})
    sdk.v1.payment_intents.confirm(pi_id)  # paid at Stripe; no webhook has booked it here
    again = client.post(_path(world), headers=_auth(world))
    assert again.status_code == 409 and f"Stripe payment succeeded ({pi_id})" in again.json()["detail"]


def test_a_partly_paid_invoice_gets_an_intent_for_the_rest_with_the_clients_stripe_customer(setup, localstripe):
    client, world, sessions = setup
    customer = _sdk(localstripe).v1.customers.create({"email": "ap@initech.test"})
    with sessions() as s, s.begin():
        invoice = s.get(Invoice, world.invoice_id)
        payer = s.get(Client, invoice.client_id)
        payer.stripe_customer_id = customer.id
        payments.record_payment(s, s.get(Company, world.company_id), payer, method="bank", currency="USD",
                                amount_minor=2345, received_on=date(2026, 3, 5),
                                allocations=[payments.Allocation(invoice, 2345)])
    body = client.post(_path(world), headers=_auth(world)).json()
    assert (body["amount"], body["amount_minor"]) == ("100.00", 10000)
    assert _sdk(localstripe).v1.payment_intents.retrieve(body["payment_intent_id"]).customer == customer.id


def test_only_sent_or_partly_paid_invoices_with_something_due_can_be_paid(setup):
    client, world, sessions = setup
    draft = client.post(_path(world, world.draft_invoice_id), headers=_auth(world))
    assert draft.status_code == 409 and "only a sent or partially paid invoice" in draft.json()["detail"]
    with sessions() as s, s.begin():
        invoice = s.get(Invoice, world.invoice_id)
        payments.record_payment(s, s.get(Company, world.company_id), s.get(Client, invoice.client_id),
                                method="bank", currency="USD", amount_minor=12345, received_on=date(2026, 3, 5),
                                allocations=[payments.Allocation(invoice, 12345)])
    assert client.post(_path(world), headers=_auth(world)).status_code == 409
    with sessions() as s:
        assert s.scalar(select(func.count()).select_from(StripePaymentIntent)) == 0


def test_another_companys_invoice_answers_404(setup):
    client, world, _ = setup
    under_own_company = client.post(_path(world, world.other_invoice_id), headers=_auth(world))
    assert under_own_company.status_code == 404
    assert under_own_company.json()["detail"] == f"invoice {world.other_invoice_id} not found"
    under_their_company = client.post(_path(world, world.other_invoice_id, world.other_company_id),
                                      headers=_auth(world))
    assert under_their_company.status_code == 404


def test_a_viewer_may_not_create_a_payment_intent(setup):
    client, world, _ = setup
    assert client.post(_path(world), headers=_auth(world, "viewer")).status_code == 403
    assert client.post(_path(world)).status_code == 401


def test_a_company_with_a_connected_account_gets_the_intent_on_that_account(setup):
    client, world, sessions = setup
    response = client.post(_path(world, world.other_invoice_id, world.other_company_id),
                           headers=_auth(world, "globex"))
    assert response.status_code == 201
    assert (response.json()["stripe_account"], response.json()["currency"]) == ("acct_globex", "EUR")


def test_stripe_unreachable_answers_502_and_records_nothing(tmp_path):
    url = f"sqlite:///{tmp_path / 'ops.sqlite3'}"
    world = build_world(url)
    app = create_app(app_settings(url, stripe_api_base="http://127.0.0.1:9"))
    response = TestClient(app).post(_path(world), headers=_auth(world))
    assert response.status_code == 502 and response.json()["title"] == "Stripe did not complete the request"
    with app.state.sessionmaker() as s:
        assert s.scalar(select(func.count()).select_from(StripePaymentIntent)) == 0


def test_amounts_follow_stripes_units_not_floats():
    assert intents.to_stripe_amount(12345, "USD") == 12345
    assert intents.to_stripe_amount(500, "JPY") == 500
    assert intents.to_stripe_amount(5, "ISK") == 500  # Stripe takes ISK with two zero decimals
    assert intents.from_stripe_amount(500, "ISK") == 5
    assert intents.to_stripe_amount(12340, "KWD") == 12340
    with pytest.raises(ValidationFailed, match="multiples of 0.010"):
        intents.to_stripe_amount(12345, "KWD")
    for bad in (12.5, "100", -1, True):
        with pytest.raises(ValidationFailed):
            intents.from_stripe_amount(bad, "USD")
