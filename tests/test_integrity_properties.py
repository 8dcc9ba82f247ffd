"""Property tests: money conversion is exact, invoice totals add up, and allocating, crediting and refunding
never create or lose a minor unit."""

from __future__ import annotations

import itertools
from datetime import date
from decimal import Decimal

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import func, select

from ez360.core.money import CURRENCY_EXPONENTS, allocate, from_minor, to_minor
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.db.models import JournalLine
from operational_api.services import companies, invoicing, payments, records, validation
from operational_api.services.errors import ValidationFailed
from tests.support.migrated import migrate

currencies = st.sampled_from(sorted(CURRENCY_EXPONENTS))
minor_amounts = st.integers(min_value=0, max_value=validation.MAX_MINOR)


@given(minor_amounts, currencies)
def test_minor_units_round_trip_through_decimal_exactly(minor, currency):
    assert to_minor(from_minor(minor, currency), currency) == minor
    assert validation.to_minor(from_minor(minor, currency), currency, "amount", allow_zero=True) == minor


@given(minor_amounts, currencies, st.integers(min_value=1, max_value=5))
def test_amounts_with_more_decimals_than_the_currency_allows_are_refused(minor, currency, extra):
    exp = CURRENCY_EXPONENTS[currency]
    too_precise = Decimal(minor * 10**extra + 1).scaleb(-(exp + extra))
    with pytest.raises(ValidationFailed, match="decimal places allowed for"):
        validation.to_minor(too_precise, currency, "amount", allow_zero=True)


@given(st.integers(min_value=0, max_value=10**12), st.lists(st.integers(min_value=0, max_value=10**6), min_size=1,
                                                            max_size=12).filter(lambda w: sum(w) > 0))
def test_allocation_splits_without_creating_or_losing_a_unit(total, weights):
    shares = allocate(total, weights)
    assert sum(shares) == total
    assert all(share >= 0 for share in shares)
    weight_sum = sum(weights)
    assert all(abs(share * weight_sum - total * w) < weight_sum for share, w in zip(shares, weights, strict=True))


lines = st.lists(st.builds(
    invoicing.LineInput, description=st.just("line"),
    quantity=st.decimals(min_value=Decimal("0.0001"), max_value=Decimal("10000"), places=4),
    unit_price_minor=st.integers(min_value=0, max_value=10**9),
    tax_rate_percent=st.decimals(min_value=0, max_value=100, places=2),
    discount_percent=st.decimals(min_value=0, max_value=100, places=2)), min_size=1, max_size=8)


@given(lines)
def test_invoice_line_amounts_are_exact_half_up_roundings(items):
    for line in items:
        net, tax = invoicing.line_amounts(line)
        exact_net = line.quantity * line.unit_price_minor * (100 - line.discount_percent) / 100
        assert abs(Decimal(net) - exact_net) <= Decimal("0.5")
        assert abs(Decimal(tax) - Decimal(net) * line.tax_rate_percent / 100) <= Decimal("0.5")


@pytest.fixture(scope="module")
def books(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('props') / 'ops.sqlite3'}"
    migrate(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    engine.dispose()


_slugs = itertools.count()


def _balance(s, company_id):
    return s.execute(select(func.sum(JournalLine.debit_minor), func.sum(JournalLine.credit_minor))
                     .where(JournalLine.company_id == company_id)).one()


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(items=lines, paid=st.lists(st.integers(min_value=1, max_value=10**9), min_size=1, max_size=4),
       refund_share=st.integers(min_value=0, max_value=100), credit_share=st.integers(min_value=0, max_value=100))
def test_payments_credits_and_refunds_never_create_or_lose_a_cent(books, items, paid, refund_share, credit_share):
    with books() as s, s.begin():
        company = companies.create_company(s, slug=f"p{next(_slugs)}", name="P", base_currency="KWD",
                                           invoice_prefix="P")
        client = records.create_client(s, company, name="C", email="c@example.org")
        invoice = invoicing.create_invoice(s, company, client, items)
        assert invoice.total_minor == sum(sum(invoicing.line_amounts(line)) for line in items)
        if invoice.total_minor == 0:
            return
        invoicing.send_invoice(s, company, invoice, date(2026, 1, 31))
        made = []
        for amount in paid:  # each payment pays what it can and leaves the rest as client credit
            allocate_now = min(amount, invoicing.amount_due(invoice))
            allocs = [payments.Allocation(invoice, allocate_now)] if allocate_now else []
            made.append(payments.record_payment(s, company, client, method="bank", currency="KWD",
                                                amount_minor=amount, received_on=date(2026, 2, 1),
                                                allocations=allocs))
        refund = made[0].amount_minor * refund_share // 100
        if refund:
            payments.record_refund(s, company, made[0], amount_minor=refund, refunded_on=date(2026, 2, 2))
        credit = invoicing.amount_due(invoice) * credit_share // 100
        if credit:
            invoicing.issue_credit_note(s, company, invoice, issue_date=date(2026, 2, 3), amount_minor=credit)
        for payment in made:
            b = payments.balance(s, payment)
            assert b.allocated_minor + b.refunded_minor + b.unapplied_minor == payment.amount_minor
            assert b.unapplied_minor >= 0 and b.allocated_minor >= 0
        allocated = sum(payments.balance(s, p).allocated_minor for p in made)
        assert invoice.amount_paid_minor == allocated
        assert invoice.amount_paid_minor + invoice.credited_minor + invoicing.amount_due(invoice) \
            == invoice.total_minor
        assert invoice.status == invoicing.derived_status(invoice)
        debit, credit_sum = _balance(s, company.id)
        assert debit == credit_sum
