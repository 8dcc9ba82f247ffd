"""Request context for company-scoped routes: the principal (via `require`), the audit actor, the company and
scoped reads, and server-side usage tracking."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Annotated, TypeVar

from fastapi import APIRouter, Depends, HTTPException, Path, Request
from sqlalchemy.orm import Session

from operational_api.api.context import Principal, get_db, require
from operational_api.api.routing import MoneyRoute
from operational_api.api.schemas import ERROR_RESPONSES
from operational_api.db.audit_trail import Actor, set_actor
from operational_api.db.models import Company, User, utcnow
from operational_api.db.scoped import Scoped
from operational_api.services import onboarding
from operational_api.services.usage import record_usage_event

T = TypeVar("T")
MAX_ID = 2**31 - 1  # ids are 32-bit integers in the ops DB
RowId = Annotated[int, Path(ge=1, le=MAX_ID)]


@dataclass
class Ctx:
    principal: Principal
    db: Session
    company: Company
    request_id: str | None

    def get(self, model: type[T], row_id: int) -> T:
        return Scoped(self.db, self.company.id).get(model, row_id)

    @property
    def scoped(self) -> Scoped:
        return Scoped(self.db, self.company.id)

    @property
    def user(self) -> User:
        return self.db.get(User, self.principal.user_id)

    def track(self, event: str, **properties: str) -> None:
        """Record a product usage event for the adoption analytics, and any onboarding step it completes."""
        record_usage_event(self.db, self.company, self.user, event, utcnow(), **properties)
        self.db.flush()
        onboarding.record_progress(self.db, self.company, self.user)


def company_ctx(permission: str) -> Callable[..., Ctx]:
    guard = require(permission)

    async def dependency(request: Request, principal: Principal = Depends(guard),
                         db: Session = Depends(get_db)) -> Ctx:
        # async: no worker-thread hop; the company is in the session already (read with the membership)
        request_id = getattr(request.state, "request_id", None)
        set_actor(db, Actor(principal.user_id, f"user:{principal.user_id} ({principal.role} via {principal.via})",
                            request_id))
        return Ctx(principal, db, db.get(Company, principal.company_id), request_id)

    dependency.permission = permission  # read by the permission-matrix tests
    return dependency


async def company_id_in_range(company_id: int = Path(...)) -> None:
    """Runs before authentication: an id beyond the database's integer range cannot name a company."""
    if company_id > MAX_ID:
        raise HTTPException(404, f"company {company_id} not found")


def company_router(resource: str, tag: str) -> APIRouter:
    return APIRouter(prefix=f"/api/v1/companies/{{company_id}}/{resource}".rstrip("/"), tags=[tag],
                     route_class=MoneyRoute, responses=ERROR_RESPONSES,
                     dependencies=[Depends(company_id_in_range)])
