"""The onboarding checklist of a company, computed from what the company has actually done.

Steps: add a client, a project, an invoice; connect Stripe; invite a teammate; enable 2FA. A step is done
when its evidence exists (the first row, the Stripe account id, a second member) or when its usage event was
recorded (`stripe_connected`, `teammate_invited`, `two_factor_enabled`, recorded by the flows that do those
things). `record_progress` emits one `onboarding_step_completed` usage event per step, the first time the step
is seen done, so adoption analytics can see when companies get through onboarding.
"""

from __future__ import annotations

import weakref
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
FIRST_ROW = {"add_client": Client, "add_project": Project, "create_invoice": Invoice}


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


def _evidence(session: Session, company: Company, key: str) -> datetime | None:
    """When the company first did what the step asks (None: not yet)."""
    if key in FIRST_ROW:
        return _first(session, FIRST_ROW[key], company.id)
    found = _event(session, company.id, STEP_EVENTS[key])
    if found is not None:
        return found
    if key == "connect_stripe":
        return company.updated_at if company.stripe_account_id else None
    if key == "invite_teammate":
        members = session.scalars(select(Membership.created_at).where(Membership.company_id == company.id)
                                  .order_by(Membership.created_at).limit(2)).all()
        return members[1] if len(members) > 1 else None
    return _two_factor_enabled_at(session, company)


def checklist(session: Session, company: Company) -> list[Step]:
    evidence = {key: _evidence(session, company, key) for key, _title in STEPS}
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


# companies (per database) whose every step is reported: usage events are append-only, so nothing is left to
# look for there; a tracked request then costs no onboarding query at all (it cost eight)
_all_reported: weakref.WeakKeyDictionary[object, set[int]] = weakref.WeakKeyDictionary()


def record_progress(session: Session, company: Company, user: User | None, at: datetime | None = None) -> list[str]:
    """Emit `onboarding_step_completed` for each step done but not yet reported; returns their keys."""
    done_companies = _all_reported.setdefault(session.get_bind(), set())
    if company.id in done_companies:
        return []
    reported = {props.get("step") for props in session.scalars(
        select(UsageEvent.properties).where(UsageEvent.company_id == company.id,
                                            UsageEvent.event_name == "onboarding_step_completed"))}
    new = [key for key, _title in STEPS if key not in reported and _evidence(session, company, key) is not None]
    for key in new:
        record_usage_event(session, company, user, "onboarding_step_completed", at or utcnow(), step=key)
    session.flush()
    if not new and reported >= {key for key, _title in STEPS}:
        done_companies.add(company.id)  # read back as stored, not just written here (a rollback would lose them)
    return new
