"""Payments, their allocation to invoices, client credit, refunds; Stripe fees and payouts in the ledger.

A payment is immutable once recorded (database trigger): what it paid is its allocation rows (append-only).
What is not allocated is the client's credit, which can later be applied to other invoices of the same client
and currency. A refund gives money back on a payment and follows a documented order:

1. it first uses the payment's unapplied credit (the overpayment goes back to the client);
2. then it takes back allocations from the payment's invoices, most recently allocated first, each by a
   negative allocation row naming the refund; each such invoice's paid amount drops and its status follows
   (paid -> partially_paid -> sent). The invoice is owed again: issue a credit note if it should not be.

Ledger: Cr the account the money came into (bank, cash or Stripe clearing), Dr client credit for part 1 and
Dr accounts receivable for part 2. So no minor unit is created or lost: for every payment,
amount = allocated (net of refunds) + refunded + unapplied credit.

Concurrency: a refund or credit application locks the payment, then the invoices it touches (by id), in the
order of `operational_api.db.locking`, and checks what is left after the lock: of ten concurrent refunds of
60.00 on a 100.00 payment one succeeds and nine get 409. The database checks the same sums at commit
(migration 0009): allocations + refunds never exceed the payment, an invoice's allocations never its total.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ez360.core.money import format_money
from operational_api.db.locking import lock, lock_one, retrying
from operational_api.db.models import Client, Company, Invoice, JournalEntry, Payment, PaymentAllocation, Refund
from operational_api.services import validation
from operational_api.services.errors import Conflict, ValidationFailed
from operational_api.services.invoicing import OPEN_STATES, amount_due, settle_status
from operational_api.services.ledger import (
    AR,
    BANK,
    CASH,
    CLIENT_CREDIT,
    FEES,
    STRIPE_CLEARING,
    Leg,
    period_is_closed,
    period_of,
    post_entry,
)

DEBIT_ACCOUNT = {"bank": BANK, "cash": CASH, "card": STRIPE_CLEARING, "stripe": STRIPE_CLEARING}
METHODS = tuple(DEBIT_ACCOUNT)
PAYABLE_STATES = OPEN_STATES


@dataclass(frozen=True)
class Allocation:
    invoice: Invoice
    amount_minor: int


@dataclass(frozen=True)
class PaymentBalance:
    amount_minor: int
    allocated_minor: int  # net of refunds taken back from invoices
    refunded_minor: int
    unapplied_minor: int  # the client's credit from this payment


def balance(session: Session, payment: Payment) -> PaymentBalance:
    allocated = session.scalar(select(func.coalesce(func.sum(PaymentAllocation.amount_minor), 0))
                               .where(PaymentAllocation.payment_id == payment.id))
    refunded = session.scalar(select(func.coalesce(func.sum(Refund.amount_minor), 0))
                              .where(Refund.payment_id == payment.id))
    allocated, refunded = int(allocated), int(refunded)
    return PaymentBalance(payment.amount_minor, allocated, refunded, payment.amount_minor - allocated - refunded)


def client_credit(session: Session, company: Company, client: Client) -> dict[str, int]:
    """Unapplied credit per currency: overpayments not yet applied to an invoice nor refunded."""
    credit: dict[str, int] = defaultdict(int)
    for payment in session.scalars(select(Payment).where(Payment.company_id == company.id,
                                                         Payment.client_id == client.id)):
        credit[payment.currency] += balance(session, payment).unapplied_minor
    return {cur: amount for cur, amount in sorted(credit.items()) if amount}


def _check_allocations(company: Company, client_id: int, currency: str, allocations: list[Allocation]) -> dict:
    per_invoice: dict[int, int] = defaultdict(int)
    invoices: dict[int, Invoice] = {}
    for a in allocations:
        inv = a.invoice
        if inv.company_id != company.id or inv.client_id != client_id:
            raise ValidationFailed(f"invoice {inv.number} belongs to another client or company")
        if inv.status not in PAYABLE_STATES:
            raise Conflict(f"invoice {inv.number or inv.id} is {inv.status} and cannot take a payment")
        if inv.currency != currency:
            raise ValidationFailed(f"invoice {inv.number} is in {inv.currency}, the payment in {currency}")
        if isinstance(a.amount_minor, bool) or not isinstance(a.amount_minor, int) or a.amount_minor <= 0:
            raise ValidationFailed(f"allocation to {inv.number} must be positive and at most the amount due")
        per_invoice[inv.id] += a.amount_minor
        invoices[inv.id] = inv
    for invoice_id, amount in per_invoice.items():
        if amount > amount_due(invoices[invoice_id]):
            raise ValidationFailed(f"allocation to {invoices[invoice_id].number} must be positive and at most the "
                                   f"amount due ({amount_due(invoices[invoice_id])})")
    return {invoice_id: (invoices[invoice_id], amount) for invoice_id, amount in per_invoice.items()}


def _lock_invoices(session: Session, allocations: list[Allocation]) -> list[Allocation]:
    """Lock the allocations' invoices (lock order: by id) and use their state after the lock."""
    locked = lock(session, Invoice, [a.invoice.id for a in allocations])
    return [Allocation(locked.get(a.invoice.id, a.invoice), a.amount_minor) for a in allocations]


NEW_ALLOCATIONS = "ez360_new_allocations"  # session.info: payment id -> the allocations this session added


def _apply(session: Session, company: Company, payment: Payment, per_invoice: dict) -> None:
    added = [PaymentAllocation(company_id=company.id, payment_id=payment.id, invoice_id=invoice.id,
                               amount_minor=amount) for invoice, amount in per_invoice.values()]
    session.add_all(added)
    session.flush()  # the allocation rows first: the database checks an invoice's paid amount against them
    session.info.setdefault(NEW_ALLOCATIONS, {}).setdefault(payment.id, []).extend(added)
    for invoice, amount in per_invoice.values():
        invoice.amount_paid_minor += amount
        settle_status(invoice)
    session.flush()


def _check_open(session: Session, company: Company, day: date, what: str) -> None:
    if period_is_closed(session, company.id, day):
        raise Conflict(f"the period {period_of(day)} is closed: no {what} can be dated {day}")


@retrying
def record_payment(session: Session, company: Company, client: Client, *, method: str, currency: str,
                   amount_minor: int, received_on: date, allocations: list[Allocation], reference: str = "",
                   stripe_payment_intent_id: str | None = None, stripe_charge_id: str | None = None) -> Payment:
    """Record money received; what is not allocated to an invoice becomes client credit."""
    if method not in DEBIT_ACCOUNT:
        raise ValidationFailed(f"unknown payment method {method!r}")
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise ValidationFailed("a payment amount must be positive")
    validation.amount_minor(amount_minor, "amount")
    currency = validation.currency_code(currency)
    if client.company_id != company.id:
        raise ValidationFailed("the client belongs to another company")
    validation.text(reference, "reference", max_length=100)
    for name, value in (("stripe_payment_intent_id", stripe_payment_intent_id),
                        ("stripe_charge_id", stripe_charge_id)):
        if value is not None:
            validation.text(value, name, max_length=60, required=True)
    if method == "stripe" and not (stripe_charge_id or stripe_payment_intent_id):
        raise ValidationFailed("a Stripe payment names its stripe_charge_id or stripe_payment_intent_id")
    allocated = sum(a.amount_minor for a in allocations)
    allocations = _lock_invoices(session, allocations)
    if allocated > amount_minor:
        raise ValidationFailed("allocations exceed the payment amount")
    per_invoice = _check_allocations(company, client.id, currency, allocations)
    if stripe_charge_id and session.scalar(select(Payment.id).where(Payment.company_id == company.id,
                                                                    Payment.stripe_charge_id == stripe_charge_id)):
        raise Conflict(f"a payment for Stripe charge {stripe_charge_id} is already recorded")
    _check_open(session, company, received_on, "payment")
    payment = Payment(
        company_id=company.id, client_id=client.id, method=method, currency=currency,
        amount_minor=amount_minor, received_on=received_on, reference=reference,
        stripe_payment_intent_id=stripe_payment_intent_id, stripe_charge_id=stripe_charge_id,
    )
    session.add(payment)
    session.flush()
    _apply(session, company, payment, per_invoice)
    legs = [Leg(DEBIT_ACCOUNT[method], debit_minor=amount_minor)]
    if allocated:
        legs.append(Leg(AR, credit_minor=allocated))
    if amount_minor - allocated:
        legs.append(Leg(CLIENT_CREDIT, credit_minor=amount_minor - allocated))
    post_entry(session, company, received_on, f"Payment {reference or payment.id}"[:300], payment.currency, legs,
               source_type="payment", source_id=payment.id)
    return payment


@retrying
def apply_credit(session: Session, company: Company, payment: Payment, allocations: list[Allocation],
                 on: date) -> list[PaymentAllocation]:
    """Apply a payment's unapplied credit to invoices of the same client: Dr client credit, Cr AR."""
    if payment.company_id != company.id:
        raise ValidationFailed("the payment belongs to another company")
    if not allocations:
        raise ValidationFailed("allocations: name at least one invoice")
    payment = lock_one(session, payment)
    allocations = _lock_invoices(session, allocations)
    per_invoice = _check_allocations(company, payment.client_id, payment.currency, allocations)
    total = sum(amount for _, amount in per_invoice.values())
    unapplied = balance(session, payment).unapplied_minor
    if total > unapplied:
        raise Conflict(f"allocations exceed the payment's unapplied credit "
                       f"({format_money(unapplied, payment.currency)})")
    _check_open(session, company, on, "allocation")
    _apply(session, company, payment, per_invoice)
    post_entry(session, company, on, f"Client credit from payment {payment.id} applied", payment.currency,
               [Leg(CLIENT_CREDIT, debit_minor=total), Leg(AR, credit_minor=total)],
               source_type="credit_applied", source_id=payment.id)
    return list(session.scalars(select(PaymentAllocation).where(PaymentAllocation.payment_id == payment.id)
                                .order_by(PaymentAllocation.id.desc()).limit(len(per_invoice))))


@retrying
def record_refund(session: Session, company: Company, payment: Payment, *, amount_minor: int, refunded_on: date,
                  reason: str = "", stripe_refund_id: str | None = None) -> Refund:
    """Give back (part of) a payment; see the module docstring for the order and the postings.

    Re-recording the same `stripe_refund_id` for the same payment and amount returns the existing refund
    (webhook re-delivery changes nothing); with another payment or amount it is a conflict.
    """
    if payment.company_id != company.id:
        raise ValidationFailed("the payment belongs to another company")
    if isinstance(amount_minor, bool) or not isinstance(amount_minor, int) or amount_minor <= 0:
        raise ValidationFailed("a refund amount must be positive")
    validation.text(reason, "reason", max_length=300)
    payment = lock_one(session, payment)  # first: a re-delivered webhook waits here and then finds the refund
    if stripe_refund_id is not None:
        validation.text(stripe_refund_id, "stripe_refund_id", max_length=60, required=True)
        existing = session.scalar(select(Refund).where(Refund.company_id == company.id,
                                                       Refund.stripe_refund_id == stripe_refund_id))
        if existing is not None:
            if existing.payment_id == payment.id and existing.amount_minor == amount_minor:
                return existing
            raise Conflict(f"Stripe refund {stripe_refund_id} is already recorded with another payment or amount")
    state = balance(session, payment)
    refundable = payment.amount_minor - state.refunded_minor
    if amount_minor > payment.amount_minor:
        raise ValidationFailed(f"a refund cannot exceed what was paid "
                               f"({format_money(payment.amount_minor, payment.currency)} of payment {payment.id})")
    if amount_minor > refundable:
        raise Conflict(f"a refund cannot exceed what was paid and not yet refunded "
                       f"({format_money(refundable, payment.currency)} of payment {payment.id})")
    _check_open(session, company, refunded_on, "refund")
    from_credit = min(amount_minor, state.unapplied_minor)
    rest = amount_minor - from_credit
    takebacks = _takebacks(session, payment, rest)
    refund = Refund(company_id=company.id, payment_id=payment.id, currency=payment.currency,
                    amount_minor=amount_minor, refunded_on=refunded_on, reason=reason,
                    stripe_refund_id=stripe_refund_id)
    session.add(refund)
    session.flush()
    for invoice, amount in takebacks:
        session.add(PaymentAllocation(company_id=company.id, payment_id=payment.id, invoice_id=invoice.id,
                                      amount_minor=-amount, refund_id=refund.id))
    session.flush()
    for invoice, amount in takebacks:
        invoice.amount_paid_minor -= amount
        settle_status(invoice)
    session.flush()
    legs = [Leg(DEBIT_ACCOUNT[payment.method], credit_minor=amount_minor)]
    if from_credit:
        legs.append(Leg(CLIENT_CREDIT, debit_minor=from_credit))
    if rest:
        legs.append(Leg(AR, debit_minor=rest))
    post_entry(session, company, refunded_on, f"Refund of payment {payment.reference or payment.id}"[:300],
               payment.currency, legs, source_type="refund", source_id=refund.id)
    return refund


def _takebacks(session: Session, payment: Payment, amount: int) -> list[tuple[Invoice, int]]:
    """(invoice, amount) to take back from the payment's invoices, most recently allocated first."""
    net: dict[int, int] = defaultdict(int)
    latest: dict[int, int] = {}
    for row in session.scalars(select(PaymentAllocation).where(PaymentAllocation.payment_id == payment.id)):
        net[row.invoice_id] += row.amount_minor
        if row.amount_minor > 0:
            latest[row.invoice_id] = max(latest.get(row.invoice_id, 0), row.id)
    locked = lock(session, Invoice, [i for i in net if net[i] > 0])
    out = []
    for invoice_id in sorted((i for i in net if net[i] > 0), key=lambda i: -latest[i]):
        if amount == 0:
            break
        take = min(amount, net[invoice_id])
        out.append((locked[invoice_id], take))
        amount -= take
    return out


def record_stripe_fee(session: Session, company: Company, *, currency: str, fee_minor: int, on: date,
                      charge_id: str) -> JournalEntry:
    return post_entry(session, company, on, f"Stripe fee {charge_id}"[:300], currency.upper(),
                      [Leg(FEES, debit_minor=fee_minor), Leg(STRIPE_CLEARING, credit_minor=fee_minor)],
                      source_type="stripe_fee")


def record_payout(session: Session, company: Company, *, currency: str, amount_minor: int, on: date,
                  payout_id: str) -> JournalEntry:
    return post_entry(session, company, on, f"Stripe payout {payout_id}"[:300], currency.upper(),
                      [Leg(BANK, debit_minor=amount_minor), Leg(STRIPE_CLEARING, credit_minor=amount_minor)],
                      source_type="stripe_payout")
