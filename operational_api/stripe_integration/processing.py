"""Processing queued Stripe events into the books.

`process_pending` takes due events in Stripe's `created` order and gives each one of these outcomes:

- processed: its effect is in the books (or it confirmed what was already there);
- ignored: nothing of EZ360's (an event type we do not use, a payment EZ360 did not create);
- waiting: it refers to something the app does not know yet, typically a `payment_intent.succeeded` that
  outran the commit of the intent's creation, or a refund that arrived before its payment; retried with
  backoff, woken as soon as a new intent or payment is recorded, failed after `MAX_WAIT`;
- failed: an error, with its text, the attempt count and the next retry (none after `MAX_ATTEMPTS`);
  `queue.events_needing_attention` lists these for alerting.

Each event is claimed (pending -> processing) in its own short transaction, then applied in a second one
that also records the outcome, so a crash never leaves half an effect and two processors never apply the
same event. The books change only through `services.payments` / `services.ledger`, and every effect is
keyed in `stripe_postings` by (kind, Stripe object id), unique in the database: a second event about the
same charge, refund, dispute or payout changes nothing.

Company and account: a payment is matched to its invoice only through the intent EZ360 created
(`stripe_payment_intents`); refunds and disputes through the payment recorded for their charge; payouts
through the connected account (`companies.stripe_account_id`) or, for the platform account's own
payouts, the company named by `EZ360_STRIPE_PLATFORM_COMPANY`, and only that: never a company guessed because
it has no Stripe account (anyone may create such a company). Without the setting, a platform payout is kept as a
failed event whose error names its reason, `platform_company_not_configured`, and is retried with the
others once the setting is made. An event from a connected account may only touch the company connected to that
account.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from typing import Any

import stripe
from sqlalchemy import and_, or_, select, update
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session

from ez360.core.settings import Settings
from operational_api.db.models import Client, Company, Invoice, Payment, utcnow
from operational_api.db.scoped import Scoped
from operational_api.db.stripe_models import StripeEvent, StripePaymentIntent, StripePosting
from operational_api.services import ledger, payments
from operational_api.services.errors import ValidationFailed
from operational_api.stripe_integration import intents
from operational_api.stripe_integration.queue import SessionFactory

log = logging.getLogger(__name__)

MAX_ATTEMPTS = 10
MAX_WAIT = timedelta(days=3)  # Stripe itself retries a delivery for up to three days
STALE_CLAIM = timedelta(minutes=10)  # a processor that claimed an event and vanished
FIRST_RETRY_SECONDS = 30


@dataclass(frozen=True)
class ProcessingConfig:
    """What processing may need beyond the event: the SDK client for details an event omits (a charge's
    balance transaction for its fee, the refunds of a charge), and the platform account's company."""

    stripe_client: stripe.StripeClient | None = None
    platform_company: str = ""

    @classmethod
    def from_settings(cls, settings: Settings) -> ProcessingConfig:
        return cls(stripe_client=intents.stripe_client(settings), platform_company=settings.stripe_platform_company)


@dataclass
class ProcessReport:
    processed: int = 0
    ignored: int = 0
    waiting: int = 0
    failed: int = 0

    @property
    def attempted(self) -> int:
        return self.processed + self.ignored + self.waiting + self.failed


class Waiting(Exception):
    """The event refers to something not known yet; try again later."""


class NotOurs(Exception):
    """The event concerns nothing EZ360 keeps books for."""


class AccountMismatch(Exception):
    """An event from one Stripe account tried to touch a company that account is not connected to."""


class PlatformCompanyMissing(LookupError):
    """A platform-account event, and no (existing) company is named to take it; the message starts with the
    reason (platform_company_not_configured, platform_company_unknown)."""


def _printable(text: str) -> str:
    """Event content goes into notes and errors: NUL (which PostgreSQL text refuses) is written as an escape."""
    return text.replace("\x00", "\\x00")


@dataclass
class _Ctx:
    session: Session
    event: dict[str, Any]
    config: ProcessingConfig
    now: datetime
    company_id: int | None = None
    notes: list[str] = field(default_factory=list)

    @property
    def obj(self) -> dict[str, Any]:
        return self.event["data"]["object"]

    @property
    def account(self) -> str | None:
        return self.event.get("account")

    @property
    def options(self) -> dict[str, Any]:
        return {"stripe_account": self.account} if self.account else {}


# --- the queue loop -------------------------------------------------------------------------------------

def _due(now: datetime):
    return or_(
        StripeEvent.status == "pending",
        and_(StripeEvent.status.in_(("waiting", "failed")), StripeEvent.next_attempt_at <= now),
        and_(StripeEvent.status == "processing", StripeEvent.locked_at < now - STALE_CLAIM),
    )


def process_pending(session_factory: SessionFactory, limit: int = 100, *, config: ProcessingConfig | None = None,
                    now: datetime | None = None) -> ProcessReport:
    """Process up to `limit` due events, oldest `created` first; each event at most once per call."""
    config = config or ProcessingConfig()
    report = ProcessReport()
    tried: set[int] = set()
    while report.attempted < limit:
        current = now or utcnow()
        with session_factory() as session:
            query = (select(StripeEvent.id).where(_due(current))
                     .order_by(StripeEvent.created, StripeEvent.id).limit(limit - report.attempted))
            if tried:
                query = query.where(StripeEvent.id.not_in(tried))
            batch = list(session.scalars(query))
        if not batch:
            break
        for row_id in batch:
            tried.add(row_id)
            outcome = _process_one(session_factory, row_id, config, current)
            if outcome is not None:
                setattr(report, outcome, getattr(report, outcome) + 1)
    return report


def _process_one(session_factory: SessionFactory, row_id: int, config: ProcessingConfig,
                 now: datetime) -> str | None:
    try:
        with session_factory() as session, session.begin():
            claimed = session.execute(
                update(StripeEvent).where(StripeEvent.id == row_id, _due(now))
                .values(status="processing", locked_at=now, attempts=StripeEvent.attempts + 1)
                .execution_options(synchronize_session=False)
            ).rowcount
    except OperationalError as exc:  # e.g. SQLite busy with another processor: leave it to the next run
        log.warning("Stripe event %s not claimed: %s", row_id, exc)
        return None
    if claimed != 1:
        return None  # another processor has it
    ctx: _Ctx | None = None
    try:
        with session_factory() as session, session.begin():
            row = session.get(StripeEvent, row_id)
            ctx = _Ctx(session, json.loads(row.payload), config, now)
            status = _dispatch(ctx)
            row.status, row.processed_at, row.next_attempt_at, row.locked_at = status, now, None, None
            row.last_error, row.note = None, _printable("; ".join(ctx.notes))[:4000] or None
            row.company_id = ctx.company_id or row.company_id
        return status
    except Waiting as exc:
        return _unfinished(session_factory, row_id, now, "waiting", str(exc), ctx)
    except Exception as exc:  # noqa: BLE001 - any failure is recorded on the event for alerting and retried
        log.error("Stripe event %s failed: %s: %s", row_id, type(exc).__name__, exc)
        return _unfinished(session_factory, row_id, now, "failed", f"{type(exc).__name__}: {exc}", ctx)


def _unfinished(session_factory: SessionFactory, row_id: int, now: datetime, status: str, message: str,
                ctx: _Ctx | None) -> str:
    with session_factory() as session, session.begin():
        row = session.get(StripeEvent, row_id)
        delay = timedelta(seconds=FIRST_RETRY_SECONDS * 2 ** min(max(row.attempts - 1, 0), 12))
        if status == "waiting":
            if now - _aware(row.received_at) > MAX_WAIT:
                status, message = "failed", f"gave up waiting after {MAX_WAIT.days} days: {message}"
                next_attempt = None
            else:
                next_attempt = now + min(delay, timedelta(hours=1))
        else:
            next_attempt = now + min(delay, timedelta(hours=6)) if row.attempts < MAX_ATTEMPTS else None
        row.status, row.last_error, row.next_attempt_at, row.locked_at = (status, _printable(message)[:4000],
                                                                          next_attempt, None)
        if ctx is not None and ctx.company_id:
            row.company_id = ctx.company_id
    if status == "failed":
        log.error("Stripe event %s failed (%s); next attempt %s", row_id, message,
                  next_attempt.isoformat() if next_attempt else "none: needs attention")
    return status


def _dispatch(ctx: _Ctx) -> str:
    handler = HANDLERS.get(ctx.event["type"])
    if handler is None:
        ctx.notes.append(f"EZ360 does not use {ctx.event['type']} events")
        return "ignored"
    try:
        handler(ctx)
    except NotOurs as exc:
        ctx.notes.append(str(exc))
        return "ignored"
    return "processed"


# --- small helpers --------------------------------------------------------------------------------------

def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def _id(value: Any) -> str | None:
    """The id of an expandable field: a plain id, or an expanded object."""
    if isinstance(value, str) and value:
        return value
    if isinstance(value, dict) and isinstance(value.get("id"), str):
        return value["id"]
    return None


def _day(timestamp: Any) -> date:
    return datetime.fromtimestamp(int(timestamp), UTC).date()


def _posting(ctx: _Ctx, kind: str, object_id: str) -> StripePosting | None:
    return ctx.session.scalar(select(StripePosting).where(StripePosting.kind == kind,
                                                          StripePosting.stripe_object_id == object_id))


def _post(ctx: _Ctx, company: Company, kind: str, object_id: str, currency: str, amount_minor: int,
          payment_id: int | None = None) -> StripePosting:
    """Claim the effect before making it: the unique (kind, object) makes a concurrent second application fail
    here, before it touches the books, and its whole transaction roll back (it is retried and finds this)."""
    posting = StripePosting(company_id=company.id, kind=kind, stripe_object_id=object_id, event_id=ctx.event["id"],
                            currency=currency, amount_minor=amount_minor, payment_id=payment_id)
    ctx.session.add(posting)
    ctx.session.flush()
    return posting


def _enter_company(ctx: _Ctx, company: Company) -> Company:
    if ctx.account is not None and ctx.account != company.stripe_account_id:
        raise AccountMismatch(f"an event from Stripe account {ctx.account} cannot touch company {company.slug} "
                              f"(connected account: {company.stripe_account_id or 'none'})")
    ctx.company_id = company.id
    return company


def _intent(ctx: _Ctx, payment_intent_id: str | None) -> StripePaymentIntent | None:
    if payment_intent_id is None:
        return None
    return ctx.session.scalar(select(StripePaymentIntent)
                              .where(StripePaymentIntent.stripe_payment_intent_id == payment_intent_id))


def _currency(value: Any) -> str:
    if not isinstance(value, str) or len(value) != 3:
        raise ValidationFailed(f"Stripe currency {value!r} is not an ISO 4217 code")
    return value.upper()


def _require(module: Any, name: str, what: str) -> Any:
    value = getattr(module, name, None)
    if value is None:
        raise RuntimeError(f"{module.__name__}.{name} is not available yet ({what}); the event is retried")
    return value


# --- payments -------------------------------------------------------------------------------------------

def _on_payment_intent_succeeded(ctx: _Ctx) -> None:
    pi = ctx.obj
    charge = pi.get("latest_charge")
    if charge is None and isinstance(pi.get("charges"), dict) and pi["charges"].get("data"):
        charge = pi["charges"]["data"][0]  # API versions before 2022-11-15
    amount = pi.get("amount_received", pi.get("amount"))
    _apply_payment(ctx, pi["id"], pi.get("metadata") or {}, charge, amount, pi.get("currency"))


def _on_charge_succeeded(ctx: _Ctx) -> None:
    """charge.succeeded / charge.captured / charge.updated: the same payment as its payment_intent.succeeded,
    and often the first event to carry the charge's balance transaction (its fee)."""
    charge = ctx.obj
    if charge.get("status") != "succeeded" or charge.get("captured") is False:
        raise NotOurs(f"charge {charge.get('id')} is {charge.get('status')}, not a captured payment yet")
    payment_intent_id = _id(charge.get("payment_intent"))
    if payment_intent_id is None:
        raise NotOurs(f"charge {charge.get('id')} has no payment intent: not created by EZ360")
    amount = charge.get("amount_captured", charge.get("amount"))
    _apply_payment(ctx, payment_intent_id, charge.get("metadata") or {}, charge, amount, charge.get("currency"))


def _apply_payment(ctx: _Ctx, payment_intent_id: str, metadata: dict[str, Any], charge: Any, amount: Any,
                   currency: Any) -> None:
    session = ctx.session
    intent = _intent(ctx, payment_intent_id)
    if intent is None:
        if metadata.get("ez360_invoice_id"):
            raise Waiting(f"payment intent {payment_intent_id} (invoice {metadata['ez360_invoice_id']}) is not "
                          "known to EZ360 yet")
        raise NotOurs(f"payment intent {payment_intent_id} was not created by EZ360")
    company = _enter_company(ctx, session.get(Company, intent.company_id))
    if metadata.get("ez360_invoice_id") not in (None, str(intent.invoice_id)):
        raise ValidationFailed(f"payment intent {payment_intent_id} names invoice {metadata['ez360_invoice_id']} "
                               f"in its metadata but was created for invoice {intent.invoice_id}")
    invoice = Scoped(session, company.id).get(Invoice, intent.invoice_id)
    currency = _currency(currency)
    if currency != intent.currency:
        raise ValidationFailed(f"payment intent {payment_intent_id} paid in {currency}, created in {intent.currency}")
    amount_minor = intents.from_stripe_amount(amount, currency)
    charge_id = _id(charge)
    # A payment intent succeeds once: its id is the payment's key, whichever event (payment_intent.succeeded,
    # charge.succeeded, charge.updated...) brings the news first.
    if _posting(ctx, "payment", payment_intent_id) is None:
        created = charge.get("created") if isinstance(charge, dict) else None
        received_on = _day(created if created is not None else ctx.event["created"])
        due = intents.amount_due(invoice) if invoice.status in intents.PAYABLE_STATES else 0
        allocated = min(due, amount_minor)  # anything beyond the amount due becomes client credit
        posting = _post(ctx, company, "payment", payment_intent_id, currency, amount_minor)
        payment = payments.record_payment(
            session, company, session.get(Client, invoice.client_id), method="stripe", currency=currency,
            amount_minor=amount_minor, received_on=received_on,
            allocations=[payments.Allocation(invoice, allocated)] if allocated > 0 else [],
            reference=f"Stripe {charge_id or payment_intent_id}", stripe_payment_intent_id=payment_intent_id,
            stripe_charge_id=charge_id)
        posting.payment_id = payment.id
        if allocated < amount_minor:
            ctx.notes.append(f"{amount_minor - allocated} minor units beyond the amount due became client credit")
        intents.wake_waiting(session, ctx.now)  # refunds or disputes may have been waiting for this payment
    intent.status = "succeeded"
    intent.stripe_charge_id = charge_id or intent.stripe_charge_id
    if charge_id is not None:
        _apply_fee(ctx, company, charge_id, charge)


def _apply_fee(ctx: _Ctx, company: Company, charge_id: str, charge: Any) -> None:
    """Book Stripe's fee for a charge once it is known: from an expanded balance transaction in the event,
    or looked up through the SDK when a client is configured."""
    if _posting(ctx, "fee", charge_id) is not None:
        return
    txn = charge.get("balance_transaction") if isinstance(charge, dict) else None
    client = ctx.config.stripe_client
    if not isinstance(txn, dict):
        if client is None:
            return  # fee not known here; a later charge.updated or a configured client books it
        if isinstance(txn, str):
            txn = client.v1.balance_transactions.retrieve(txn, None, ctx.options).to_dict()
        elif not isinstance(charge, dict):
            fetched = client.v1.charges.retrieve(charge_id, {"expand": ["balance_transaction"]}, ctx.options)
            txn = fetched.to_dict().get("balance_transaction")
        if not isinstance(txn, dict):
            return  # the charge has no balance transaction yet
    currency = _currency(txn.get("currency"))
    fee = intents.from_stripe_amount(txn.get("fee", 0), currency)
    _post(ctx, company, "fee", charge_id, currency, fee)  # a known zero fee too: no further look-ups
    if fee:
        payments.record_stripe_fee(ctx.session, company, currency=currency, fee_minor=fee,
                                   on=_day(txn.get("created", ctx.event["created"])), charge_id=charge_id)


def _on_intent_status(ctx: _Ctx) -> None:
    """payment_failed, canceled, processing, requires_action: no money moved; keep the intent's status."""
    intent = _intent(ctx, ctx.obj.get("id"))
    if intent is None:
        raise NotOurs(f"payment intent {ctx.obj.get('id')} was not created by EZ360")
    _enter_company(ctx, ctx.session.get(Company, intent.company_id))
    if intent.status != "succeeded" and isinstance(ctx.obj.get("status"), str):
        intent.status = ctx.obj["status"]


# --- refunds and disputes: through the payment recorded for their charge --------------------------------

def _payment_of_charge(ctx: _Ctx, charge_id: str | None, payment_intent_id: str | None,
                       what: str) -> tuple[Company, Payment]:
    intent = _intent(ctx, payment_intent_id)
    if intent is None and charge_id:
        intent = ctx.session.scalar(select(StripePaymentIntent)
                                    .where(StripePaymentIntent.stripe_charge_id == charge_id))
    if intent is None:
        raise NotOurs(f"{what}: charge {charge_id} is not an EZ360 payment")
    posting = _posting(ctx, "payment", intent.stripe_payment_intent_id)
    if posting is None or posting.payment_id is None:
        raise Waiting(f"{what}: the payment of charge {charge_id} is not recorded yet")
    company = _enter_company(ctx, ctx.session.get(Company, posting.company_id))
    return company, ctx.session.get(Payment, posting.payment_id)


def _on_charge_refunded(ctx: _Ctx) -> None:
    charge = ctx.obj
    listed = charge.get("refunds")
    if isinstance(listed, dict) and isinstance(listed.get("data"), list) and not listed.get("has_more"):
        refunds = listed["data"]
    elif ctx.config.stripe_client is not None:
        page = ctx.config.stripe_client.v1.refunds.list({"charge": charge["id"], "limit": 100}, ctx.options)
        refunds = [refund.to_dict() for refund in page.auto_paging_iter()]
    else:
        raise RuntimeError(f"charge {charge.get('id')}: its refunds are not in the event and no Stripe client "
                           "is configured to list them")
    for refund in refunds:
        _apply_refund(ctx, refund, charge)


def _on_refund(ctx: _Ctx) -> None:
    _apply_refund(ctx, ctx.obj, None)


def _apply_refund(ctx: _Ctx, refund: dict[str, Any], charge: dict[str, Any] | None) -> None:
    refund_id = refund["id"]
    if refund.get("status") != "succeeded":
        ctx.notes.append(f"refund {refund_id} is {refund.get('status')}; it is booked when it succeeds")
        return
    if _posting(ctx, "refund", refund_id) is not None:
        return
    charge_id = _id(refund.get("charge")) or (charge or {}).get("id")
    payment_intent_id = _id(refund.get("payment_intent")) or _id((charge or {}).get("payment_intent"))
    company, payment = _payment_of_charge(ctx, charge_id, payment_intent_id, f"refund {refund_id}")
    currency = _currency(refund.get("currency"))
    if currency != payment.currency:
        raise ValidationFailed(f"refund {refund_id} is in {currency}, its payment in {payment.currency}")
    amount_minor = intents.from_stripe_amount(refund.get("amount"), currency)
    record_refund = _require(payments, "record_refund", "refunds")
    _post(ctx, company, "refund", refund_id, currency, amount_minor, payment_id=payment.id)
    record_refund(ctx.session, company, payment, amount_minor=amount_minor,
                  refunded_on=_day(refund.get("created", ctx.event["created"])),
                  reason=str(refund.get("reason") or ""), stripe_refund_id=refund_id)


def _dispute_payment(ctx: _Ctx) -> tuple[Company, Payment]:
    dispute = ctx.obj
    return _payment_of_charge(ctx, _id(dispute.get("charge")), _id(dispute.get("payment_intent")),
                              f"dispute {dispute.get('id')}")


def _is_inquiry(dispute: dict[str, Any]) -> bool:
    return str(dispute.get("status", "")).startswith("warning_")  # an inquiry moves no money


def _on_dispute_opened(ctx: _Ctx) -> None:
    """charge.dispute.created / charge.dispute.funds_withdrawn: Stripe takes the disputed amount back."""
    if _is_inquiry(ctx.obj):
        raise NotOurs(f"dispute {ctx.obj.get('id')} is an inquiry ({ctx.obj.get('status')}): no money moved")
    company, payment = _dispute_payment(ctx)
    _dispute_withdrawal(ctx, company, payment)


def _on_dispute_settled(ctx: _Ctx) -> None:
    """charge.dispute.funds_reinstated / charge.dispute.closed: a won dispute gives the money back."""
    dispute = ctx.obj
    if _is_inquiry(dispute):
        raise NotOurs(f"dispute {dispute.get('id')} is an inquiry ({dispute.get('status')}): no money moved")
    company, payment = _dispute_payment(ctx)
    _dispute_withdrawal(ctx, company, payment)  # in case its opening event never came
    won = ctx.event["type"] == "charge.dispute.funds_reinstated" or dispute.get("status") == "won"
    if not won or _posting(ctx, "dispute_reinstatement", dispute["id"]) is not None:
        return
    disputes_account = _require(ledger, "DISPUTES", "disputes")
    currency = _currency(dispute.get("currency"))
    amount = intents.from_stripe_amount(dispute.get("amount"), currency)
    _post(ctx, company, "dispute_reinstatement", dispute["id"], currency, amount, payment_id=payment.id)
    ledger.post_entry(ctx.session, company, _day(ctx.event["created"]), f"Stripe dispute {dispute['id']} won",
                      currency, [ledger.Leg(ledger.STRIPE_CLEARING, debit_minor=amount),
                                 ledger.Leg(disputes_account, credit_minor=amount)],
                      source_type="stripe_dispute", source_id=payment.id)


def _dispute_withdrawal(ctx: _Ctx, company: Company, payment: Payment) -> None:
    dispute = ctx.obj
    currency = _currency(dispute.get("currency"))
    if _posting(ctx, "dispute_withdrawal", dispute["id"]) is None:
        disputes_account = _require(ledger, "DISPUTES", "disputes")
        amount = intents.from_stripe_amount(dispute.get("amount"), currency)
        reason = dispute.get("reason") or "no reason given"
        _post(ctx, company, "dispute_withdrawal", dispute["id"], currency, amount, payment_id=payment.id)
        ledger.post_entry(ctx.session, company, _day(dispute.get("created", ctx.event["created"])),
                          f"Stripe dispute {dispute['id']} ({reason})", currency,
                          [ledger.Leg(disputes_account, debit_minor=amount),
                           ledger.Leg(ledger.STRIPE_CLEARING, credit_minor=amount)],
                          source_type="stripe_dispute", source_id=payment.id)
    # Stripe's dispute fee sits on the dispute's balance transactions, once Stripe has withdrawn the funds.
    txns = [t for t in dispute.get("balance_transactions") or [] if isinstance(t, dict)]
    if txns and _posting(ctx, "dispute_fee", dispute["id"]) is None:
        fee_currency = _currency(txns[0].get("currency", currency))
        fee = sum(intents.from_stripe_amount(t.get("fee", 0), fee_currency) for t in txns)
        if fee:
            _post(ctx, company, "dispute_fee", dispute["id"], fee_currency, fee, payment_id=payment.id)
            payments.record_stripe_fee(ctx.session, company, currency=fee_currency, fee_minor=fee,
                                       on=_day(txns[0].get("created", ctx.event["created"])),
                                       charge_id=dispute["id"])


# --- payouts --------------------------------------------------------------------------------------------

def _payout_company(ctx: _Ctx) -> Company:
    session = ctx.session
    if ctx.account is not None:
        company = session.scalar(select(Company).where(Company.stripe_account_id == ctx.account))
        if company is None:
            raise LookupError(f"no company is connected to Stripe account {ctx.account}")
    elif ctx.config.platform_company:
        company = session.scalar(select(Company).where(Company.slug == ctx.config.platform_company))
        if company is None:
            raise PlatformCompanyMissing(f"platform_company_unknown: EZ360_STRIPE_PLATFORM_COMPANY names "
                                         f"{ctx.config.platform_company!r}, which is no company")
    else:
        raise PlatformCompanyMissing("platform_company_not_configured: an event of the platform Stripe account "
                                     "(no connected account) is booked only to the company named by "
                                     "EZ360_STRIPE_PLATFORM_COMPANY, which is not set")
    return _enter_company(ctx, company)


def _on_payout_paid(ctx: _Ctx) -> None:
    payout = ctx.obj
    company = _payout_company(ctx)
    if _posting(ctx, "payout", payout["id"]) is not None:
        return
    currency = _currency(payout.get("currency"))
    amount = intents.from_stripe_amount(payout.get("amount"), currency)
    _post(ctx, company, "payout", payout["id"], currency, amount)
    payments.record_payout(ctx.session, company, currency=currency, amount_minor=amount,
                           on=_day(payout.get("arrival_date") or ctx.event["created"]), payout_id=payout["id"])


def _on_payout_failed(ctx: _Ctx) -> None:
    """A payout booked as paid that the bank then returned: the money is back in the Stripe balance."""
    payout = ctx.obj
    company = _payout_company(ctx)
    paid = _posting(ctx, "payout", payout["id"])
    if paid is None:
        raise NotOurs(f"payout {payout['id']} failed before it was booked as paid: nothing to reverse")
    if _posting(ctx, "payout_failure", payout["id"]) is not None:
        return
    _post(ctx, company, "payout_failure", payout["id"], paid.currency, paid.amount_minor)
    ledger.post_entry(ctx.session, company, _day(ctx.event["created"]), f"Stripe payout {payout['id']} failed",
                      paid.currency, [ledger.Leg(ledger.STRIPE_CLEARING, debit_minor=paid.amount_minor),
                                      ledger.Leg(ledger.BANK, credit_minor=paid.amount_minor)],
                      source_type="stripe_payout")


HANDLERS: dict[str, Callable[[_Ctx], None]] = {
    "payment_intent.succeeded": _on_payment_intent_succeeded,
    "payment_intent.payment_failed": _on_intent_status,
    "payment_intent.canceled": _on_intent_status,
    "payment_intent.processing": _on_intent_status,
    "payment_intent.requires_action": _on_intent_status,
    "charge.succeeded": _on_charge_succeeded,
    "charge.captured": _on_charge_succeeded,
    "charge.updated": _on_charge_succeeded,
    "charge.refunded": _on_charge_refunded,
    "refund.created": _on_refund,
    "refund.updated": _on_refund,
    "charge.refund.updated": _on_refund,
    "charge.dispute.created": _on_dispute_opened,
    "charge.dispute.funds_withdrawn": _on_dispute_opened,
    "charge.dispute.funds_reinstated": _on_dispute_settled,
    "charge.dispute.closed": _on_dispute_settled,
    "payout.paid": _on_payout_paid,
    "payout.failed": _on_payout_failed,
}
