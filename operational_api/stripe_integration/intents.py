"""Payment intents for invoices, created through the official stripe SDK.

Which Stripe account: a company with a connected account (`companies.stripe_account_id`, Stripe Connect)
gets the intent created *on that account* (a direct charge, `Stripe-Account` header), so the money and the
fees are the company's own; a company without one uses the platform account itself. The account used is
recorded with the intent, and processing refuses an event from any other connected account. The local
test server (localstripe) has no Connect: it ignores the header and every event arrives without an
`account`, i.e. as the platform account's; companies in those tests have no connected account.

Money: the intent is for the invoice's amount due in integer minor units. Stripe's unit is the ISO 4217
minor unit except ISK, which Stripe takes with two (always zero) decimals; Stripe also requires the last
digit of three-decimal currencies (KWD, BHD, JOD, OMR, TND) to be 0, which is refused here with a clear
reason instead of a Stripe error.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import stripe
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from ez360.core.settings import Settings
from operational_api.db.models import Client, Company, Invoice, utcnow
from operational_api.db.stripe_models import StripeEvent, StripePaymentIntent
from operational_api.services.errors import Conflict, DomainError, ValidationFailed
from operational_api.services.invoicing import OPEN_STATES as PAYABLE_STATES
from operational_api.services.invoicing import amount_due

OPEN_INTENT_STATES = ("requires_payment_method", "requires_confirmation", "requires_action")
MONEY_MOVING_STATES = ("processing", "requires_capture", "succeeded")
STRIPE_SCALE = {"ISK": 100}  # Stripe minor units per ISO minor unit, where they differ
THREE_DECIMAL = frozenset({"KWD", "BHD", "JOD", "OMR", "TND"})


class StripeUnavailable(DomainError):
    status = 502
    title = "Stripe did not complete the request"


def stripe_client(settings: Settings) -> stripe.StripeClient:
    """The SDK client for this deployment; `stripe_api_base` points it at a local server in tests/demo."""
    base = settings.stripe_api_base.rstrip("/")
    return stripe.StripeClient(settings.stripe_api_key.get_secret_value(),
                               base_addresses={"api": base} if base else None,  # type: ignore[arg-type]
                               max_network_retries=1)


def to_stripe_amount(amount_minor: int, currency: str) -> int:
    currency = currency.upper()
    if currency in THREE_DECIMAL and amount_minor % 10:
        raise ValidationFailed(f"Stripe charges {currency} only in multiples of 0.010; the amount due "
                               f"({amount_minor} minor units) is not one")
    return amount_minor * STRIPE_SCALE.get(currency, 1)


def from_stripe_amount(amount: object, currency: str) -> int:
    if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
        raise ValidationFailed(f"Stripe amount {amount!r} is not a non-negative integer")
    scale = STRIPE_SCALE.get(currency.upper(), 1)
    if amount % scale:
        raise ValidationFailed(f"Stripe amount {amount} {currency} has a fraction of the currency's unit")
    return amount // scale


@dataclass(frozen=True)
class IntentResult:
    row: StripePaymentIntent
    client_secret: str | None
    created: bool


def create_for_invoice(session: Session, company: Company, invoice: Invoice, client: stripe.StripeClient, *,
                       user_id: int | None = None) -> IntentResult:
    """An open payment intent for the invoice's amount due: an existing open one for that amount, or a new one."""
    if invoice.company_id != company.id:
        raise ValidationFailed("the invoice belongs to another company")
    if invoice.status not in PAYABLE_STATES:
        raise Conflict(f"invoice {invoice.number or invoice.id} is {invoice.status}; only a sent or partially "
                       "paid invoice can be paid")
    due = amount_due(invoice)
    if due <= 0:
        raise Conflict(f"invoice {invoice.number} has nothing left to pay")
    stripe_amount = to_stripe_amount(due, invoice.currency)
    options: dict = {"stripe_account": company.stripe_account_id} if company.stripe_account_id else {}

    existing = session.scalars(
        select(StripePaymentIntent).where(
            StripePaymentIntent.company_id == company.id, StripePaymentIntent.invoice_id == invoice.id,
            StripePaymentIntent.amount_minor == due, StripePaymentIntent.currency == invoice.currency,
            StripePaymentIntent.status.in_(OPEN_INTENT_STATES))
        .order_by(StripePaymentIntent.id.desc())
    ).first()
    if existing is not None:
        intent = _call(lambda: client.v1.payment_intents.retrieve(existing.stripe_payment_intent_id, None, options))
        existing.status = intent.status
        if intent.status in OPEN_INTENT_STATES:
            return IntentResult(existing, intent.client_secret, created=False)
        if intent.status in MONEY_MOVING_STATES:  # paid, but the webhook has not reached the books yet
            raise Conflict(f"invoice {invoice.number} has a Stripe payment {intent.status.replace('_', ' ')} "
                           f"({intent.id}); it is booked when Stripe's event arrives")

    attempt = session.scalar(select(StripePaymentIntent.id).where(StripePaymentIntent.invoice_id == invoice.id)
                             .order_by(StripePaymentIntent.id.desc()).limit(1)) or 0
    params: dict = {
        "amount": stripe_amount, "currency": invoice.currency.lower(),
        "metadata": {"ez360_company_id": str(company.id), "ez360_invoice_id": str(invoice.id),
                     "ez360_invoice_number": invoice.number or ""},
    }
    customer = session.get(Client, invoice.client_id)
    if customer is not None and customer.stripe_customer_id:
        params["customer"] = customer.stripe_customer_id
    # Same invoice, same amount due, same last intent: a retried or double-clicked request gets the same
    # intent back from Stripe instead of a second one.
    options["idempotency_key"] = f"ez360-pi-{company.id}-{invoice.id}-{due}-{attempt}"
    intent = _call(lambda: client.v1.payment_intents.create(params, options))
    row = remember_intent(session, company, invoice, intent.id, status=intent.status, amount_minor=due,
                          stripe_account=company.stripe_account_id, user_id=user_id)
    return IntentResult(row, intent.client_secret, created=True)


def remember_intent(session: Session, company: Company, invoice: Invoice, payment_intent_id: str, *,
                    status: str, amount_minor: int, stripe_account: str | None,
                    user_id: int | None = None) -> StripePaymentIntent:
    """Record that this intent pays this invoice, and wake events that were waiting for it."""
    row = session.scalar(select(StripePaymentIntent)
                         .where(StripePaymentIntent.stripe_payment_intent_id == payment_intent_id))
    if row is not None:
        if (row.company_id, row.invoice_id) != (company.id, invoice.id):
            raise Conflict(f"payment intent {payment_intent_id} already pays another invoice")
        return row
    row = StripePaymentIntent(company_id=company.id, invoice_id=invoice.id,
                              stripe_payment_intent_id=payment_intent_id, stripe_account=stripe_account,
                              currency=invoice.currency, amount_minor=amount_minor, status=status,
                              created_by_user_id=user_id)
    session.add(row)
    session.flush()
    wake_waiting(session)
    return row


def wake_waiting(session: Session, now: datetime | None = None) -> int:
    """Make every waiting event due now: something they may have been waiting for is now known."""
    result = session.execute(update(StripeEvent).where(StripeEvent.status == "waiting")
                             .values(next_attempt_at=now or utcnow()))
    return result.rowcount or 0


def _call(request):
    try:
        return request()
    except stripe.StripeError as exc:
        message = getattr(exc, "user_message", None) or str(exc) or type(exc).__name__
        raise StripeUnavailable(f"Stripe answered: {message}") from None
