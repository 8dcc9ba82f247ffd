"""The onboarding checklist of a company, computed from what the company has actually done.

Steps: add a client, a project, an invoice; connect Stripe; invite a teammate; enable 2FA. A step is done
when its evidence exists (the first row, the Stripe account id, a second member) or when its usage event was
recorded (`stripe_connected`, `teammate_invited`, `two_factor_enabled`, recorded by the flows that do those
things). `record_progress` emits one `onboarding_step_completed` usage event per step, the first time the step
is seen done, so adoption analytics can see when companies get through onboarding.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from operational_api.db.models import Client, Company, Invoice, Membership, Project, UsageEvent, User, utcnow
from operational_api.services.usage import record_usage_event

STEPS: tuple[tuple[str, str], ...] = (
    ("add_client", "Add a client"),
    ("add_project", "Add a project"),
    ("create_invoice", "Create an invoice"),
    ("connect_stripe", "Connect Stripe"),
    ("invite_teammate", "Invite a teammate"),
    ("enable_2fa", "Enable two-factor authentication"),
)
STEP_EVENTS = {"connect_stripe": "stripe_connected", "invite_teammate": "teammate_invited",
               "enable_2fa": "two_factor_enabled"}


@dataclass(frozen=True)
class Step:
    key: str
    title: str
    done: bool
    completed_at: datetime | None


def _first(session: Session, model, company_id: int) -> datetime | None:
    return session.scalar(select(func.min(model.created_at)).where(model.company_id == company_id))


def _event(session: Session, company_id: int, name: str) -> datetime | None:
    return session.scalar(select(func.min(UsageEvent.occurred_at)).where(UsageEvent.company_id == company_id,
                                                                         UsageEvent.event_name == name))


def checklist(session: Session, company: Company) -> list[Step]:
    evidence: dict[str, datetime | None] = {
        "add_client": _first(session, Client, company.id),
        "add_project": _first(session, Project, company.id),
        "create_invoice": _first(session, Invoice, company.id),
    }
    for key, event in STEP_EVENTS.items():
        evidence[key] = _event(session, company.id, event)
    if evidence["connect_stripe"] is None and company.stripe_account_id:
        evidence["connect_stripe"] = company.updated_at
    if evidence["invite_teammate"] is None:
        members = session.scalars(select(Membership.created_at).where(Membership.company_id == company.id)
                                  .order_by(Membership.created_at).limit(2)).all()
        if len(members) > 1:
            evidence["invite_teammate"] = members[1]
    if evidence["enable_2fa"] is None:
        evidence["enable_2fa"] = _two_factor_enabled_at(session, company)
    return [Step(key, title, evidence[key] is not None, evidence[key]) for key, title in STEPS]


def _two_factor_enabled_at(session: Session, company: Company) -> datetime | None:
    """When a member first turned 2FA on, if the security layer's table is there."""
    from operational_api.db import security_models

    user_security = getattr(security_models, "UserSecurity", None)
    if user_security is None or not hasattr(user_security, "totp_enabled_at"):
        return None
    return session.scalar(select(func.min(user_security.totp_enabled_at))
                          .join(Membership, Membership.user_id == user_security.user_id)
                          .where(Membership.company_id == company.id))


def record_progress(session: Session, company: Company, user: User | None, at: datetime | None = None) -> list[str]:
    """Emit `onboarding_step_completed` for each step done but not yet reported; returns their keys."""
    reported = {props.get("step") for props in session.scalars(
        select(UsageEvent.properties).where(UsageEvent.company_id == company.id,
                                            UsageEvent.event_name == "onboarding_step_completed"))}
    new = [step.key for step in checklist(session, company) if step.done and step.key not in reported]
    for key in new:
        record_usage_event(session, company, user, "onboarding_step_completed", at or utcnow(), step=key)
    session.flush()
    return new
