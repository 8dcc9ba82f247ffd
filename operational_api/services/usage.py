"""Product usage events captured server-side for adoption analytics."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from operational_api.db.models import Company, Membership, UsageEvent, User

EVENT_NAMES = (
    "login", "client_created", "project_created", "time_logged", "invoice_created", "invoice_sent",
    "payment_recorded", "expense_recorded", "report_viewed", "stripe_connected", "teammate_invited",
    "two_factor_enabled", "credit_note_issued", "refund_recorded", "journal_entry_posted", "period_closed",
    "onboarding_step_completed",
)


def record_usage_event(session: Session, company: Company, user: User | None, name: str, at: datetime,
                       **properties: str) -> UsageEvent:
    if name not in EVENT_NAMES:
        raise ValueError(f"unknown usage event {name!r}")
    event = UsageEvent(company_id=company.id, user_id=user.id if user else None, event_name=name,
                       occurred_at=at, properties=properties)
    session.add(event)
    return event


def record_for_user_companies(session: Session, user_id: int, name: str, at: datetime) -> int:
    """An account-level event (a sign-in, 2FA turned on) counted in each company the user belongs to,
    since adoption is read per company."""
    memberships = session.scalars(select(Membership).where(Membership.user_id == user_id)).all()
    for membership in memberships:
        session.add(UsageEvent(company_id=membership.company_id, user_id=user_id, event_name=name,
                               occurred_at=at, properties={}))
    return len(memberships)
