"""Every allowed and every refused state transition of invoices, journal entries and projects, through the
services and (for the final records) straight at the database, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from itertools import product

import pytest
from sqlalchemy import text
from sqlalchemy.exc import DBAPIError

from operational_api.db.models import Invoice
from operational_api.services import companies, invoicing, ledger, payments, records
from operational_api.services.errors import Conflict, DomainError, ImmutableRecord
from operational_api.services.invoicing import TRANSITIONS
from operational_api.services.records import PROJECT_STATUSES, PROJECT_TRANSITIONS
from tests.support.integrity import session_scope

STATES = ("draft", "sent", "partially_paid", "paid", "void")
DAY = date(2026, 1, 31)


@pytest.fixture
def db(ops_db):
    url = ops_db
    with session_scope(url) as s:
        company = companies.create_company(s, slug="acme", name="Acme", base_currency="USD", invoice_prefix="ACM")
        client = records.create_client(s, company, name="C", email="c@example.org")
        s.commit()
        yield s, company, client


def _invoice(s, company, client, state: str) -> tuple[Invoice, payments.Payment | None]:
    """An invoice of 1000 minor units brought to `state` through the services."""
    inv = invoicing.create_invoice(s, company, client, [invoicing.LineInput("x", Decimal(1), 1000)])
    payment = None
    if state == "draft":
        return inv, None
    invoicing.send_invoice(s, company, inv, DAY)
    if state in ("partially_paid", "paid"):
        amount = 400 if state == "partially_paid" else 1000
        payment = payments.record_payment(s, company, client, method="bank", currency="USD", amount_minor=amount,
                                          received_on=DAY, allocations=[payments.Allocation(inv, amount)])
    if state == "void":
        invoicing.issue_credit_note(s, company, inv, issue_date=DAY)
    assert inv.status == state
    return inv, payment


def _pay(s, company, client, inv, amount):
    return payments.record_payment(s, company, client, method="bank", currency="USD", amount_minor=amount,
                                   received_on=DAY, allocations=[payments.Allocation(inv, amount)])


ALLOWED_MOVES = {
    ("draft", "sent"): lambda s, c, cl, inv, p: invoicing.send_invoice(s, c, inv, DAY),
    ("sent", "partially_paid"): lambda s, c, cl, inv, p: _pay(s, c, cl, inv, 1),
    ("sent", "paid"): lambda s, c, cl, inv, p: _pay(s, c, cl, inv, 1000),
    ("sent", "void"): lambda s, c, cl, inv, p: invoicing.issue_credit_note(s, c, inv, issue_date=DAY),
    ("partially_paid", "paid"): lambda s, c, cl, inv, p: _pay(s, c, cl, inv, 600),
    ("partially_paid", "sent"): lambda s, c, cl, inv, p: payments.record_refund(s, c, p, amount_minor=400,
                                                                                refunded_on=DAY),
    ("paid", "partially_paid"): lambda s, c, cl, inv, p: payments.record_refund(s, c, p, amount_minor=1,
                                                                                refunded_on=DAY),
    ("paid", "sent"): lambda s, c, cl, inv, p: payments.record_refund(s, c, p, amount_minor=1000, refunded_on=DAY),
}


def test_the_documented_transitions_are_exactly_the_ones_exercised():
    assert set(ALLOWED_MOVES) == set(TRANSITIONS)


@pytest.mark.parametrize("move", sorted(TRANSITIONS), ids="->".join)
def test_every_allowed_invoice_transition(db, move):
    s, company, client = db
    inv, payment = _invoice(s, company, client, move[0])
    ALLOWED_MOVES[move](s, company, client, inv, payment)
    assert inv.status == move[1]
    s.commit()


REFUSED_BY_SERVICES = {
    ("draft", "partially_paid"): lambda s, c, cl, inv, p: _pay(s, c, cl, inv, 1),
    ("draft", "paid"): lambda s, c, cl, inv, p: _pay(s, c, cl, inv, 1000),
    ("draft", "void"): lambda s, c, cl, inv, p: invoicing.issue_credit_note(s, c, inv, issue_date=DAY),
    ("sent", "sent"): lambda s, c, cl, inv, p: invoicing.send_invoice(s, c, inv, DAY),
    ("sent", "draft"): lambda s, c, cl, inv, p: invoicing.update_draft(s, c, inv, notes="back to draft"),
    ("paid", "void"): lambda s, c, cl, inv, p: invoicing.issue_credit_note(s, c, inv, issue_date=DAY),
    ("paid", "paid"): lambda s, c, cl, inv, p: _pay(s, c, cl, inv, 1),
    ("void", "sent"): lambda s, c, cl, inv, p: invoicing.send_invoice(s, c, inv, DAY),
    ("void", "paid"): lambda s, c, cl, inv, p: _pay(s, c, cl, inv, 1000),
    ("void", "void"): lambda s, c, cl, inv, p: invoicing.issue_credit_note(s, c, inv, issue_date=DAY),
}


@pytest.mark.parametrize("move", sorted(REFUSED_BY_SERVICES), ids="->".join)
def test_refused_invoice_transitions_through_the_services(db, move):
    s, company, client = db
    inv, payment = _invoice(s, company, client, move[0])
    with pytest.raises((Conflict, ImmutableRecord)):
        REFUSED_BY_SERVICES[move](s, company, client, inv, payment)
    assert inv.status == move[0]


REFUSED_IN_DB = sorted((a, b) for a, b in product(STATES, STATES) if a != b and (a, b) not in TRANSITIONS)


@pytest.mark.parametrize("move", REFUSED_IN_DB, ids="->".join)
def test_refused_invoice_transitions_fail_in_the_database_too(db, move):
    s, company, client = db
    inv, _ = _invoice(s, company, client, move[0])
    s.commit()
    with pytest.raises(DBAPIError, match="ez360:"), s.bind.connect() as conn:
        conn.execute(text("UPDATE invoices SET status = :to WHERE id = :id"), {"to": move[1], "id": inv.id})
        conn.commit()


def test_journal_entry_transitions(db):
    s, company, _ = db
    legs = [ledger.Leg("1000", debit_minor=5), ledger.Leg("4000", credit_minor=5)]
    draft = ledger.draft_entry(s, company, DAY, "d", "USD", legs)
    ledger.update_draft(s, company, draft, memo="still a draft")  # draft -> draft (edit): allowed
    with pytest.raises(Conflict, match="draft"):
        ledger.reverse_entry(s, company, draft)  # draft -> reversed: refused
    ledger.post(s, company, draft)  # draft -> posted: allowed
    with pytest.raises(ImmutableRecord):
        ledger.post(s, company, draft)  # posted -> posted again: refused
    with pytest.raises(ImmutableRecord):
        ledger.update_draft(s, company, draft, memo="x")  # posted -> edited: refused
    with pytest.raises(ImmutableRecord):
        ledger.delete_draft(s, draft)  # posted -> deleted: refused
    reversal = ledger.reverse_entry(s, company, draft)  # posted -> reversed: allowed once
    assert reversal.status == "posted" and reversal.reversal_of_id == draft.id
    with pytest.raises(Conflict, match="already reversed"):
        ledger.reverse_entry(s, company, draft)
    other = ledger.draft_entry(s, company, DAY, "gone", "USD", legs)
    ledger.delete_draft(s, other)  # draft -> deleted: allowed
    s.commit()
    with pytest.raises(DBAPIError, match="immutable"), s.bind.connect() as conn:
        conn.execute(text("UPDATE journal_entries SET status = 'draft' WHERE id = :id"), {"id": draft.id})
        conn.commit()


@pytest.mark.parametrize("move", [(a, b) for a, b in product(PROJECT_STATUSES, PROJECT_STATUSES) if a != b],
                         ids="->".join)
def test_every_project_status_change_is_allowed_or_refused_as_documented(db, move):
    s, company, client = db
    project = records.create_project(s, company, client, name="P", hourly_rate_minor=100)
    project.status = move[0]
    s.flush()
    if move[1] in PROJECT_TRANSITIONS[move[0]]:
        records.change_project_status(s, company, project, move[1])
        assert project.status == move[1]
    else:
        with pytest.raises(DomainError):
            records.change_project_status(s, company, project, move[1])
        assert project.status == move[0]
