"""Input the API used to answer with a server error, or to accept although no finance system reads it the same
way: every case answers 4xx with a problem document, on SQLite and on PostgreSQL, and stores nothing."""

from __future__ import annotations

import base64
import json

import pytest
from sqlalchemy import func, select

from operational_api.db.models import Invoice
from operational_api.db.stripe_models import StripeEvent
from tests.support.integrity import build_api_world, session_scope
from tests.support.localstripe_server import stripe_event
from tests.support.migrated import migrate
from tests.support.postgres import temporary_database

SECRET = "whsec_ez360_tests"  # what build_api_world configures


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def api(request, tmp_path_factory):
    """One world per engine for the whole module; a client and a draft invoice to send."""
    def build(url):
        migrate(url)
        world = build_api_world(url)
        world.client.raise_server_exceptions = False  # a 500 must show as a 500, not as a test crash
        client = world.call("POST", "/clients", json={"name": "Bounds", "email": "ap@example.org"}).json()
        world.client_id = client["id"]
        return world

    if request.param == "sqlite":
        yield build(f"sqlite:///{tmp_path_factory.mktemp('bounds') / 'ops.sqlite3'}")
    else:
        with temporary_database() as url:
            world = build(url)
            yield world
            world.client.close()


def _problem(response, status: int | None = None) -> dict:
    assert 400 <= response.status_code < 500, (response.status_code, response.text)
    if status is not None:
        assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    return response.json()


def _cursor(*values) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(values)).encode()).decode()


@pytest.mark.parametrize(("sort", "cursor"), [
    ("name", _cursor("name", "a\u0000b", 1)),  # NUL: PostgreSQL text cannot hold it
    ("name", _cursor("name", "\ud800", 1)),  # a lone surrogate: not encodable text
    ("name", base64.urlsafe_b64encode(b'["name", "\\udfff", 1]').decode()),
    ("created_at", _cursor("created_at", "2026-03-01T10:00:00-23:59", 1)),  # valid ISO 8601, beyond PostgreSQL
    ("created_at", _cursor("created_at", "0001-01-01T00:00:00+23:59", 1)),  # before year 1 once in UTC
    ("created_at", _cursor("created_at", 17, 1)),
], ids=["nul", "surrogate", "surrogate-escaped", "offset-23:59", "out-of-range", "not-a-time"])
def test_a_list_cursor_the_server_never_made_answers_400(api, sort, cursor):
    response = api.call("GET", "/clients", params={"sort": sort, "cursor": cursor})
    assert "invalid cursor" in _problem(response, 400)["detail"]


def test_sending_an_invoice_dated_9999_12_31_is_refused_and_stores_nothing(api):
    draft = api.call("POST", "/invoices", json={"client_id": api.client_id,
                                                "lines": [{"quantity": "1", "unit_price": "10.00"}]}).json()
    problem = _problem(api.call("POST", f"/invoices/{draft['id']}/send", json={"issue_date": "9999-12-31"}), 422)
    assert problem["errors"][0]["loc"] == ["body", "issue_date"]
    assert api.call("GET", f"/invoices/{draft['id']}").json()["status"] == "draft"


@pytest.mark.parametrize("day", ["0001-01-01", "9999-12-31", "1899-12-31", "3000-01-01"])
def test_dates_outside_the_business_range_are_refused_naming_the_field(api, day):
    with session_scope(api.url) as db:
        before = db.scalar(select(func.count()).select_from(Invoice))
    problem = _problem(api.call("POST", "/invoices", json={"client_id": api.client_id, "due_date": day,
                                                           "lines": [{"quantity": "1", "unit_price": "1"}]}), 422)
    assert problem["errors"][0]["loc"] == ["body", "due_date"]
    assert "1900-01-01" in problem["errors"][0]["msg"] and "2999-12-31" in problem["errors"][0]["msg"]
    payment = api.call("POST", "/payments", json={"client_id": api.client_id, "method": "bank", "amount": "1",
                                                  "received_on": day})
    assert _problem(payment, 422)["errors"][0]["loc"] == ["body", "received_on"]
    with session_scope(api.url) as db:
        assert db.scalar(select(func.count()).select_from(Invoice)) == before


def test_the_first_and_last_business_days_are_accepted(api):
    for day in ("1900-01-01", "2999-12-31"):
        made = api.call("POST", "/invoices", json={"client_id": api.client_id, "due_date": day,
                                                   "lines": [{"quantity": "1", "unit_price": "1"}]})
        assert made.status_code == 201 and made.json()["due_date"] == day


@pytest.mark.parametrize("amount", ["1_000", "\u0661\u0662", "\uff11\uff12", "1e3", " 12", "12,50", "+-1"],
                         ids=["underscore", "arabic-indic", "fullwidth", "exponent", "space", "comma", "signs"])
def test_amounts_are_plain_ascii_decimals_only(api, amount):
    response = api.call("POST", "/invoices", json={"client_id": api.client_id,
                                                   "lines": [{"quantity": "1", "unit_price": amount}]})
    assert _problem(response, 422)["errors"][0]["loc"] == ["body", "lines", 0, "unit_price"]
    assert _problem(api.call("POST", "/payments", json={"client_id": api.client_id, "method": "bank",
                                                        "amount": amount, "received_on": "2026-03-02"}), 422)


def test_ascii_amounts_still_arrive_exactly(api):
    made = api.call("POST", "/invoices", json={"client_id": api.client_id,
                                               "lines": [{"quantity": "1", "unit_price": "1000.10"},
                                                         {"quantity": "2", "unit_price": 0.1}]})
    assert made.status_code == 201 and made.json()["total"] == "1000.30"


@pytest.mark.parametrize("fmt", ["{prefix}-{seq:.0e}", "{prefix}-{seq:,}", "{prefix}-{seq:>8}", "{seq}-{seq}",
                                 "{prefix}-{year:.2}-{seq}", "{prefix!r}-{seq}", "{0}-{seq}", "{prefix}-{year}"])
def test_invoice_number_formats_outside_the_placeholder_whitelist_are_refused(api, fmt):
    problem = _problem(api.call("PATCH", "/settings", json={"invoice_number_format": fmt}), 422)
    assert "{seq:0Nd}" in problem["detail"]
    assert api.call("GET", "/settings").json()["invoice_number_format"] == "{prefix}-{year}-{seq:05d}"


def test_text_with_a_lone_surrogate_is_refused(api):
    body = '{"name": "bad \\udc80 name", "email": "ap@example.org"}'
    response = api.client.post(api.path("/clients"), content=body,
                               headers={**api.headers(), "content-type": "application/json"})
    assert _problem(response, 422)["errors"][0]["loc"] == ["body", "name"]


@pytest.mark.parametrize("field", ["id", "type", "account"])
def test_signed_webhooks_with_nul_in_id_type_or_account_are_refused(api, field):
    from operational_api.stripe_integration.signature import sign
    event = stripe_event("payout.paid", {"id": "po_nul", "object": "payout", "amount": 1, "currency": "usd"},
                         account="acct_1Nul")
    event[field] = {"id": "evt_\u0000nul", "type": "payout.\u0000paid", "account": "acct_\u0000nul"}[field]
    body = json.dumps(event).encode()
    response = api.client.post("/webhooks/stripe", content=body, headers={"Stripe-Signature": sign(body, SECRET)})
    assert field in _problem(response, 400)["detail"]
    with session_scope(api.url) as db:
        assert db.scalar(select(func.count()).select_from(StripeEvent).where(StripeEvent.object_id == "po_nul")) == 0
