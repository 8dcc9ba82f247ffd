"""The event queue: each verified Stripe event stored once, then processed from here.

Storing is all the webhook endpoint does before answering 200, so Stripe never times out on us and a
slow or failing processing step never makes Stripe redeliver. The unique `event_id` makes a redelivery
a no-op even when two deliveries of the same event race (the loser's insert fails and it answers 200).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from operational_api.db.models import utcnow
from operational_api.db.stripe_models import StripeEvent

SessionFactory = Callable[[], Session]
LONG_WAIT = timedelta(hours=1)  # a waiting event older than this is shown for alerting
PLAIN = re.compile(r"[A-Za-z0-9_.\-]{1,255}")  # what an object id or API version looks like; anything else is not kept


@dataclass(frozen=True)
class Enqueued:
    event_id: str
    duplicate: bool


def enqueue(session_factory: SessionFactory, event: dict[str, Any], payload: str,
            now: datetime | None = None) -> Enqueued:
    """Store a verified event (its raw JSON too) unless it is already stored; commits on its own."""
    now = now or utcnow()
    with session_factory() as session:
        if session.scalar(select(StripeEvent.id).where(StripeEvent.event_id == event["id"])) is not None:
            return Enqueued(event["id"], duplicate=True)
        object_id, api_version = event["data"]["object"].get("id"), event.get("api_version")
        session.add(StripeEvent(
            event_id=event["id"], type=event["type"], livemode=event["livemode"], account=event.get("account"),
            api_version=api_version if isinstance(api_version, str) and len(api_version) <= 40
            and PLAIN.fullmatch(api_version) else None,
            created=event["created"], payload=payload,
            object_id=object_id if isinstance(object_id, str) and PLAIN.fullmatch(object_id) else None,
            status="pending", attempts=0, next_attempt_at=now, received_at=now,
        ))
        try:
            session.commit()
        except IntegrityError:  # the same event delivered twice at once: the other delivery stored it
            session.rollback()
            return Enqueued(event["id"], duplicate=True)
    return Enqueued(event["id"], duplicate=False)


def events_needing_attention(session: Session, *, company_id: int | None = None, now: datetime | None = None,
                             limit: int = 200) -> list[StripeEvent]:
    """Failed events, and events still waiting after `LONG_WAIT`: what an alert should report."""
    now = now or utcnow()
    query = (select(StripeEvent)
             .where((StripeEvent.status == "failed")
                    | ((StripeEvent.status == "waiting") & (StripeEvent.received_at < now - LONG_WAIT)))
             .order_by(StripeEvent.created, StripeEvent.id).limit(limit))
    if company_id is not None:
        query = query.where(StripeEvent.company_id == company_id)
    return list(session.scalars(query))


def requeue(session: Session, event_id: str, now: datetime | None = None) -> StripeEvent | None:
    """Make a failed (or waiting) event due again, e.g. after fixing its cause; None if unknown."""
    row = session.scalar(select(StripeEvent).where(StripeEvent.event_id == event_id))
    if row is None:
        return None
    if row.status in ("failed", "waiting"):
        row.next_attempt_at = now or utcnow()
        if row.status == "failed":
            row.attempts = 0  # a fresh set of retries
    return row
