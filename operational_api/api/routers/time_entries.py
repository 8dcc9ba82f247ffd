"""Time entries: hours on a project, billable or not, at a rate and a cost rate. Staff change only their own
entries; roles with `time:write_others` change anyone's."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from fastapi import Depends, HTTPException, Query
from pydantic import BaseModel, ConfigDict, Field

from operational_api.api.deps import Ctx, RowId, company_ctx, company_router
from operational_api.api.listing import Cursor, Limit, paginate, sort_query, where_given
from operational_api.api.routers.clients import DELETED_QUERY, Deleted, filter_deleted
from operational_api.api.schemas import Amount, BusinessDate, Page, Text, Timestamp, money, to_minor
from operational_api.db.models import Membership, Project, TimeEntry, User
from operational_api.permissions import allowed
from operational_api.services import records

router = company_router("time-entries", "time")
Hours = Field(gt=0, le=24, max_digits=4, decimal_places=2, examples=["7.5"])


class TimeIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"project_id": 1, "work_date": "2026-03-02", "hours": "7.5", "billable": True, "cost_rate": "65.00",
         "description": "Sprint planning"}]})
    project_id: int
    work_date: BusinessDate
    hours: Decimal = Hours
    billable: bool = True
    rate: Amount | None = Field(None, description="Billable hourly rate; default the project's")
    cost_rate: Amount = Decimal(0)
    description: Text(500) = ""
    user_id: int | None = Field(None, description="Whose time (default: yours; others need time:write_others)")


class TimePatch(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"hours": "6", "billable": False}]})
    work_date: BusinessDate | None = None
    hours: Decimal | None = Field(None, gt=0, le=24, max_digits=4, decimal_places=2)
    billable: bool | None = None
    rate: Amount | None = None
    cost_rate: Amount | None = None
    description: Text(500) | None = None


class TimeOut(BaseModel):
    id: int
    project_id: int
    user_id: int
    work_date: date
    hours: Decimal
    billable: bool
    currency: str
    rate: Decimal
    cost_rate: Decimal
    description: str
    created_at: Timestamp
    updated_at: Timestamp
    created_by_id: int | None
    updated_by_id: int | None
    deleted_at: Timestamp | None


def out(t: TimeEntry) -> TimeOut:
    return TimeOut(id=t.id, project_id=t.project_id, user_id=t.user_id, work_date=t.work_date,
                   hours=Decimal(t.hours).quantize(Decimal("0.01")), billable=t.billable, currency=t.currency,
                   rate=money(t.rate_minor, t.currency), cost_rate=money(t.cost_rate_minor, t.currency),
                   description=t.description, created_at=t.created_at, updated_at=t.updated_at,
                   created_by_id=t.created_by_id, updated_by_id=t.updated_by_id, deleted_at=t.deleted_at)


def _may_touch(ctx: Ctx, user_id: int) -> None:
    if user_id != ctx.principal.user_id and not allowed(ctx.principal.role, "time:write_others"):
        raise HTTPException(403, f"your role ({ctx.principal.role}) may change only your own time entries")


@router.get("", response_model=Page[TimeOut], summary="List time entries")
def list_time(ctx: Ctx = Depends(company_ctx("time:read")), limit: Limit = 50, cursor: Cursor = None,
              sort: str = sort_query(["id", "work_date", "created_at", "updated_at"], "-work_date"),
              project_id: int | None = Query(None, ge=1, le=2**31 - 1),
              user_id: int | None = Query(None, ge=1, le=2**31 - 1), billable: bool | None = None,
              date_from: date | None = Query(None, alias="from"), date_to: date | None = Query(None, alias="to"),
              deleted: Deleted = DELETED_QUERY):
    stmt = filter_deleted(ctx.scoped.select(TimeEntry), TimeEntry, deleted)
    stmt = where_given(
        stmt,
        (project_id, lambda: TimeEntry.project_id == project_id),
        (user_id, lambda: TimeEntry.user_id == user_id),
        (billable, lambda: TimeEntry.billable == billable),
        (date_from, lambda: TimeEntry.work_date >= date_from),
        (date_to, lambda: TimeEntry.work_date <= date_to),
    )
    rows, nxt = paginate(ctx.db, stmt, TimeEntry, sort=sort, cursor=cursor, limit=limit)
    return Page[TimeOut](items=[out(t) for t in rows], next_cursor=nxt)


@router.post("", response_model=TimeOut, status_code=201, summary="Log time on a project")
def log_time(body: TimeIn, ctx: Ctx = Depends(company_ctx("time:write"))):
    project = ctx.get(Project, body.project_id)
    user_id = body.user_id or ctx.principal.user_id
    _may_touch(ctx, user_id)
    member = ctx.db.scalar(ctx.scoped.select(Membership).where(Membership.user_id == user_id))
    if member is None:
        raise HTTPException(404, f"user {user_id} is not a member of this company")
    entry = records.log_time(
        ctx.db, ctx.company, project, ctx.db.get(User, user_id), work_date=body.work_date, hours=body.hours,
        billable=body.billable, description=body.description,
        cost_rate_minor=to_minor(body.cost_rate, project.currency, ("cost_rate",), allow_zero=True),
        rate_minor=None if body.rate is None else to_minor(body.rate, project.currency, ("rate",), allow_zero=True))
    ctx.track("time_logged")
    return out(entry)


@router.get("/{entry_id}", response_model=TimeOut, summary="A time entry")
def get_time(entry_id: RowId, ctx: Ctx = Depends(company_ctx("time:read"))):
    return out(ctx.get(TimeEntry, entry_id))


@router.patch("/{entry_id}", response_model=TimeOut, summary="Change a time entry")
def update_time(entry_id: RowId, body: TimePatch, ctx: Ctx = Depends(company_ctx("time:write"))):
    entry = ctx.get(TimeEntry, entry_id)
    _may_touch(ctx, entry.user_id)
    changes = {k: v for k, v in body.model_dump(exclude_unset=True, exclude={"rate", "cost_rate"}).items()
               if v is not None}
    if body.rate is not None:
        changes["rate_minor"] = to_minor(body.rate, entry.currency, ("rate",), allow_zero=True)
    if body.cost_rate is not None:
        changes["cost_rate_minor"] = to_minor(body.cost_rate, entry.currency, ("cost_rate",), allow_zero=True)
    return out(records.update_time_entry(ctx.db, ctx.company, entry, **changes))


@router.delete("/{entry_id}", response_model=TimeOut, summary="Soft-delete a time entry (restorable)")
def delete_time(entry_id: RowId, ctx: Ctx = Depends(company_ctx("time:write"))):
    entry = ctx.get(TimeEntry, entry_id)
    _may_touch(ctx, entry.user_id)
    return out(records.delete_time_entry(ctx.db, ctx.company, entry))


@router.post("/{entry_id}/restore", response_model=TimeOut, summary="Restore a soft-deleted time entry")
def restore_time(entry_id: RowId, ctx: Ctx = Depends(company_ctx("time:write"))):
    entry = ctx.get(TimeEntry, entry_id)
    _may_touch(ctx, entry.user_id)
    return out(records.restore_time_entry(ctx.db, ctx.company, entry))
