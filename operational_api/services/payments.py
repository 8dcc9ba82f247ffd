"""Payments and their allocation to invoices; Stripe fees and payouts in the ledger."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy.orm import Session

from operational_api.db.models import Client, Company, Invoice, Payment, PaymentAllocation
from operational_api.services.errors import Conflict, ValidationFailed
from operational_api.services.ledger import (
    AR,
    BANK,
    CASH,
    CLIENT_CREDIT,
    FEES,
    STRIPE_CLEARING,
    Leg,
    post_entry,
)

DEBIT_ACCOUNT = {"bank": BANK, "cash": CASH, "card": STRIPE_CLEARING, "stripe": STRIPE_CLEARING}
PAYABLE_STATES = ("sent", "partially_paid")


@dataclass(frozen=True)
class Allocation:
    invoice: Invoice
    amount_minor: int


def record_payment(session: Session, company: Company, client: Client, *, method: str, currency: str,
                   amount_minor: int, received_on: date, allocations: list[Allocation], reference: str = "",
                   stripe_payment_intent_id: str | None = None, stripe_charge_id: str | None = None) -> Payment:
    """Record money received; what is not allocated to an invoice becomes client credit."""
    if method not in DEBIT_ACCOUNT:
        raise ValidationFailed(f"unknown payment method {method!r}")
    if amount_minor <= 0:
        raise ValidationFailed("a payment amount must be positive")
    allocated = sum(a.amount_minor for a in allocations)
    if allocated > amount_minor:
        raise ValidationFailed("allocations exceed the payment amount")
    for a in allocations:
        inv = a.invoice
        if inv.company_id != company.id or inv.client_id != client.id:
            raise ValidationFailed(f"invoice {inv.number} belongs to another client or company")
        if inv.status not in PAYABLE_STATES:
            raise Conflict(f"invoice {inv.number} is {inv.status} and cannot take a payment")
        if inv.currency != currency.upper():
            raise ValidationFailed(f"invoice {inv.number} is in {inv.currency}, the payment in {currency}")
        if a.amount_minor <= 0 or a.amount_minor > inv.total_minor - inv.amount_paid_minor:
            raise ValidationFailed(f"allocation to {inv.number} must be positive and at most the amount due")
    payment = Payment(
        company_id=company.id, client_id=client.id, method=method, currency=currency.upper(),
        amount_minor=amount_minor, received_on=received_on, reference=reference,
        stripe_payment_intent_id=stripe_payment_intent_id, stripe_charge_id=stripe_charge_id,
    )
    session.add(payment)
    session.flush()
    for a in allocations:
        session.add(PaymentAllocation(company_id=company.id, payment_id=payment.id, invoice_id=a.invoice.id,
                                      amount_minor=a.amount_minor))
        a.invoice.amount_paid_minor += a.amount_minor
        a.invoice.status = "paid" if a.invoice.amount_paid_minor == a.invoice.total_minor else "partially_paid"
    legs = [Leg(DEBIT_ACCOUNT[method], debit_minor=amount_minor)]
    if allocated:
        legs.append(Leg(AR, credit_minor=allocated))
    if amount_minor - allocated:
        legs.append(Leg(CLIENT_CREDIT, credit_minor=amount_minor - allocated))
    post_entry(session, company, received_on, f"Payment {reference or payment.id}", payment.currency, legs,
               source_type="payment", source_id=payment.id)
    return payment


def record_stripe_fee(session: Session, company: Company, *, currency: str, fee_minor: int, on: date,
                      charge_id: str) -> None:
    post_entry(session, company, on, f"Stripe fee {charge_id}", currency.upper(),
               [Leg(FEES, debit_minor=fee_minor), Leg(STRIPE_CLEARING, credit_minor=fee_minor)],
               source_type="stripe_fee")


def record_payout(session: Session, company: Company, *, currency: str, amount_minor: int, on: date,
                  payout_id: str) -> None:
    post_entry(session, company, on, f"Stripe payout {payout_id}", currency.upper(),
               [Leg(BANK, debit_minor=amount_minor), Leg(STRIPE_CLEARING, credit_minor=amount_minor)],
               source_type="stripe_payout")
