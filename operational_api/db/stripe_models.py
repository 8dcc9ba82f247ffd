"""Persistence of Stripe integration: webhook events and their processing queue (issue: Stripe webhooks).

- `stripe_events`: every verified webhook event, once (unique `event_id`), with its raw JSON; it is also
  the processing queue (status, attempts, next attempt, last error).
- `stripe_payment_intents`: the payment intents EZ360 created for invoices; the only link from a Stripe
  payment to an invoice that processing trusts.
- `stripe_postings`: one row per effect a Stripe object had on the books (a payment intent's payment, a
  charge's fee, a refund, a dispute's withdrawal...). Its unique (kind, stripe_object_id) is what makes a redelivered or
  repeated event change nothing, even when two processors race.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import (
    BigInteger,
    Boolean,
    CheckConstraint,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from operational_api.db.models import Base, Timestamps, utcnow

EVENT_STATUSES = ("pending", "processing", "waiting", "processed", "ignored", "failed")
POSTING_KINDS = ("payment", "fee", "refund", "dispute_withdrawal", "dispute_fee", "dispute_reinstatement",
                 "payout", "payout_failure")


def _in(column: str, values: tuple[str, ...]) -> str:
    return f"{column} in ({', '.join(repr(v) for v in values)})"


class StripeEvent(Base):
    __tablename__ = "stripe_events"
    __table_args__ = (
        UniqueConstraint("event_id", name="uq_stripe_events_event_id"),
        CheckConstraint(_in("status", EVENT_STATUSES), name="ck_stripe_event_status"),
        Index("ix_stripe_events_status_next_attempt", "status", "next_attempt_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    event_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(100))
    livemode: Mapped[bool] = mapped_column(Boolean)
    account: Mapped[str | None] = mapped_column(String(255))  # connected account; None = the platform's own
    api_version: Mapped[str | None] = mapped_column(String(40))
    created: Mapped[int] = mapped_column(BigInteger)  # Stripe's epoch seconds; the processing order
    object_id: Mapped[str | None] = mapped_column(String(255))
    payload: Mapped[str] = mapped_column(Text)  # the raw JSON body exactly as signed
    status: Mapped[str] = mapped_column(String(20), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    locked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(Text)  # why it failed or what it waits for
    note: Mapped[str | None] = mapped_column(Text)  # for processed/ignored events: what processing concluded
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"), index=True)
    received_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    processed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class StripePaymentIntent(Timestamps, Base):
    __tablename__ = "stripe_payment_intents"
    __table_args__ = (
        UniqueConstraint("stripe_payment_intent_id", name="uq_stripe_payment_intents_pi"),
        CheckConstraint("amount_minor > 0", name="ck_stripe_payment_intent_positive"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    stripe_payment_intent_id: Mapped[str] = mapped_column(String(255))
    stripe_account: Mapped[str | None] = mapped_column(String(255))  # None = created on the platform account
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(40))
    stripe_charge_id: Mapped[str | None] = mapped_column(String(255))
    created_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))


class StripePosting(Base):
    __tablename__ = "stripe_postings"
    __table_args__ = (
        UniqueConstraint("kind", "stripe_object_id", name="uq_stripe_postings_kind_object"),
        CheckConstraint(_in("kind", POSTING_KINDS), name="ck_stripe_posting_kind"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    kind: Mapped[str] = mapped_column(String(30))
    stripe_object_id: Mapped[str] = mapped_column(String(255))
    event_id: Mapped[str] = mapped_column(String(255))
    currency: Mapped[str] = mapped_column(String(3))
    amount_minor: Mapped[int] = mapped_column(BigInteger)
    payment_id: Mapped[int | None] = mapped_column(ForeignKey("payments.id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
