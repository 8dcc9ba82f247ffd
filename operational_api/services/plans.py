"""Plans and their limits (Production Baseline v1): how many users, clients and active projects a company may
have. Limits are data here; the services check them before creating or re-activating anything they count."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from operational_api.db.locking import lock_company
from operational_api.db.models import Client, Company, Membership, Project
from operational_api.services.errors import Conflict, PlanLimitReached, ValidationFailed

PLAN_SET = "Production Baseline v1"


@dataclass(frozen=True)
class PlanLimits:
    title: str
    users: int | None  # None: unlimited
    clients: int | None
    active_projects: int | None


PLANS: dict[str, PlanLimits] = {
    "free": PlanLimits("Free", users=2, clients=10, active_projects=3),
    "pro": PlanLimits("Pro", users=15, clients=500, active_projects=100),
    "business": PlanLimits("Business", users=None, clients=None, active_projects=None),
}
LIMIT_LABELS = {"users": "users", "clients": "clients", "active_projects": "active projects"}


def usage(session: Session, company: Company) -> dict[str, int]:
    return {
        "users": session.scalar(select(func.count()).select_from(Membership)
                                .where(Membership.company_id == company.id)),
        "clients": session.scalar(select(func.count()).select_from(Client)
                                  .where(Client.company_id == company.id, Client.deleted_at.is_(None))),
        "active_projects": session.scalar(select(func.count()).select_from(Project).where(
            Project.company_id == company.id, Project.deleted_at.is_(None), Project.status == "active")),
    }


def check_room(session: Session, company: Company, limit: str) -> None:
    """Refuse one more `limit` ('users', 'clients', 'active_projects') when the plan's limit is reached."""
    lock_company(session, company)  # what is counted is locked: concurrent creations take turns
    plan = PLANS[company.plan]
    maximum = getattr(plan, limit)
    if maximum is None:
        return
    if usage(session, company)[limit] >= maximum:
        raise PlanLimitReached(
            f"the {plan.title} plan ({PLAN_SET}) allows at most {maximum} {LIMIT_LABELS[limit]}; "
            f"{company.name} has reached that limit: upgrade the plan or remove one first")


def change_plan(session: Session, company: Company, plan: str) -> Company:
    """The one way a company's plan changes (billing, or a platform admin through `ez360 companies set-plan`);
    company admins cannot change it themselves. A downgrade below what the company already uses is refused."""
    if plan not in PLANS:
        raise ValidationFailed(f"unknown plan {plan!r}; choose one of {', '.join(PLANS)}")
    lock_company(session, company)
    if plan != company.plan:
        limits, used = PLANS[plan], usage(session, company)
        for limit, label in LIMIT_LABELS.items():
            maximum = getattr(limits, limit)
            if maximum is not None and used[limit] > maximum:
                raise Conflict(f"the {limits.title} plan allows at most {maximum} {label}; {company.name} has "
                               f"{used[limit]}")
        company.plan = plan
        session.flush()
    return company
