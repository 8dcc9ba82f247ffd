"""Product usage events captured server-side for adoption analytics."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from operational_api.db.models import Company, UsageEvent, User

EVENT_NAMES = (
    "login", "client_created", "project_created", "time_logged", "invoice_created", "invoice_sent",
    "payment_recorded", "expense_recorded", "report_viewed", "stripe_connected", "teammate_invited",
    "two_factor_enabled",
)


def record_usage_event(session: Session, company: Company, user: User | None, name: str, at: datetime,
                       **properties: str) -> UsageEvent:
    if name not in EVENT_NAMES:
        raise ValueError(f"unknown usage event {name!r}")
    event = UsageEvent(company_id=company.id, user_id=user.id if user else None, event_name=name,
                       occurred_at=at, properties=properties)
    session.add(event)
    return event
