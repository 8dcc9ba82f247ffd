"""Product usage events (captured server-side) and the onboarding checklist."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, Literal

from fastapi import Depends, Query
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel

from operational_api.api.deps import Ctx, company_ctx, company_router
from operational_api.api.listing import Cursor, Limit, paginate, sort_query, where_given
from operational_api.api.schemas import Page, Timestamp
from operational_api.db.models import UsageEvent
from operational_api.services import onboarding
from operational_api.services.usage import EVENT_NAMES

router = company_router("", "usage")


class UsageOut(BaseModel):
    id: int
    user_id: int | None
    event_name: str
    occurred_at: Timestamp
    properties: dict[str, Any]


class StepOut(BaseModel):
    key: str
    title: str
    done: bool
    completed_at: Timestamp | None


class OnboardingOut(BaseModel):
    steps: list[StepOut]
    completed: int
    total: int
    percent: int


def _utc(value: datetime | None, name: str) -> datetime | None:
    """Compare in UTC (PostgreSQL accepts offsets up to 15:59 only; naive times are taken as UTC)."""
    if value is None:
        return None
    try:
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    except OverflowError:
        raise RequestValidationError([{"loc": ("query", name), "msg": "out of range", "type": "value_error"}]) from None


@router.get("/usage-events", response_model=Page[UsageOut], summary="Product usage events")
def list_usage(ctx: Ctx = Depends(company_ctx("usage:read")), limit: Limit = 50, cursor: Cursor = None,
               sort: str = sort_query(["id", "occurred_at"], "-occurred_at"),
               event_name: Literal[EVENT_NAMES] | None = None,  # type: ignore[valid-type]
               user_id: int | None = Query(None, ge=1, le=2**31 - 1), since: datetime | None = None,
               until: datetime | None = None):
    since, until = _utc(since, "since"), _utc(until, "until")
    stmt = ctx.scoped.select(UsageEvent)
    stmt = where_given(
        stmt,
        (event_name, lambda: UsageEvent.event_name == event_name),
        (user_id, lambda: UsageEvent.user_id == user_id),
        (since, lambda: UsageEvent.occurred_at >= since),
        (until, lambda: UsageEvent.occurred_at < until),
    )
    rows, nxt = paginate(ctx.db, stmt, UsageEvent, sort=sort, cursor=cursor, limit=limit)
    return Page[UsageOut](items=[UsageOut.model_validate(r, from_attributes=True) for r in rows], next_cursor=nxt)


@router.get("/onboarding", response_model=OnboardingOut, summary="The onboarding checklist and its progress")
def get_onboarding(ctx: Ctx = Depends(company_ctx("onboarding:read"))):
    steps = onboarding.checklist(ctx.db, ctx.company)
    done = sum(s.done for s in steps)
    return OnboardingOut(steps=[StepOut(key=s.key, title=s.title, done=s.done, completed_at=s.completed_at)
                                for s in steps], completed=done, total=len(steps), percent=done * 100 // len(steps))
