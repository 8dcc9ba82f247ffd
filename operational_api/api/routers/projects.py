"""Projects: budget, billable hourly rate and status (active, on_hold, completed, cancelled)."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict

from operational_api.api.deps import Ctx, RowId, company_ctx, company_router
from operational_api.api.listing import Cursor, Limit, paginate, sort_query
from operational_api.api.routers.clients import DELETED_QUERY, Deleted, filter_deleted
from operational_api.api.schemas import Amount, Page, Text, Timestamp, money, to_minor
from operational_api.db.models import Client, Project
from operational_api.services import records

router = company_router("projects", "projects")
Status = Literal["active", "on_hold", "completed", "cancelled"]


class ProjectIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"client_id": 1, "name": "Website rebuild", "hourly_rate": "150.00", "budget": "60000.00"}]})
    client_id: int
    name: Text(200, 1)
    hourly_rate: Amount
    budget: Amount = Decimal(0)
    status: Status = "active"


class ProjectPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"status": "on_hold"}]})
    name: Text(200, 1) | None = None
    hourly_rate: Amount | None = None
    budget: Amount | None = None
    status: Status | None = None


class ProjectOut(BaseModel):
    id: int
    client_id: int
    name: str
    status: str
    currency: str
    hourly_rate: Decimal
    budget: Decimal
    created_at: Timestamp
    updated_at: Timestamp
    created_by_id: int | None
    updated_by_id: int | None
    deleted_at: Timestamp | None


def out(p: Project) -> ProjectOut:
    return ProjectOut(id=p.id, client_id=p.client_id, name=p.name, status=p.status, currency=p.currency,
                      hourly_rate=money(p.hourly_rate_minor, p.currency), budget=money(p.budget_minor, p.currency),
                      created_at=p.created_at, updated_at=p.updated_at, created_by_id=p.created_by_id,
                      updated_by_id=p.updated_by_id, deleted_at=p.deleted_at)


@router.get("", response_model=Page[ProjectOut], summary="List projects")
def list_projects(ctx: Ctx = Depends(company_ctx("projects:read")), limit: Limit = 50, cursor: Cursor = None,
                  sort: str = sort_query(["id", "name", "created_at", "updated_at", "budget_minor"], "name"),
                  client_id: int | None = Query(None, ge=1, le=2**31 - 1), status: Status | None = None,
                  deleted: Deleted = DELETED_QUERY):
    stmt = filter_deleted(ctx.scoped.select(Project), Project, deleted)
    if client_id:
        stmt = stmt.where(Project.client_id == client_id)
    if status:
        stmt = stmt.where(Project.status == status)
    rows, nxt = paginate(ctx.db, stmt, Project, sort=sort, cursor=cursor, limit=limit)
    return Page[ProjectOut](items=[out(p) for p in rows], next_cursor=nxt)


@router.post("", response_model=ProjectOut, status_code=201, summary="Create a project for a client")
def create_project(body: ProjectIn, ctx: Ctx = Depends(company_ctx("projects:write"))):
    client = ctx.get(Client, body.client_id)
    project = records.create_project(
        ctx.db, ctx.company, client, name=body.name, status=body.status,
        hourly_rate_minor=to_minor(body.hourly_rate, client.currency, ("hourly_rate",), allow_zero=True),
        budget_minor=to_minor(body.budget, client.currency, ("budget",), allow_zero=True))
    ctx.track("project_created")
    return out(project)


@router.get("/{project_id}", response_model=ProjectOut, summary="A project")
def get_project(project_id: RowId, ctx: Ctx = Depends(company_ctx("projects:read"))):
    return out(ctx.get(Project, project_id))


@router.patch("/{project_id}", response_model=ProjectOut, summary="Change a project (status changes follow the "
                                                                  "project life cycle)")
def update_project(project_id: RowId, body: ProjectPatch, ctx: Ctx = Depends(company_ctx("projects:write"))):
    project = ctx.get(Project, project_id)
    changes = {}
    if body.name is not None:
        changes["name"] = body.name
    if body.hourly_rate is not None:
        changes["hourly_rate_minor"] = to_minor(body.hourly_rate, project.currency, ("hourly_rate",), allow_zero=True)
    if body.budget is not None:
        changes["budget_minor"] = to_minor(body.budget, project.currency, ("budget",), allow_zero=True)
    if body.status is not None:
        changes["status"] = body.status
    return out(records.update_project(ctx.db, ctx.company, project, **changes))


@router.delete("/{project_id}", response_model=ProjectOut, summary="Soft-delete a project (restorable)")
def delete_project(project_id: RowId, ctx: Ctx = Depends(company_ctx("projects:write"))):
    return out(records.delete_project(ctx.db, ctx.company, ctx.get(Project, project_id)))


@router.post("/{project_id}/restore", response_model=ProjectOut, summary="Restore a soft-deleted project")
def restore_project(project_id: RowId, ctx: Ctx = Depends(company_ctx("projects:write"))):
    return out(records.restore_project(ctx.db, ctx.company, ctx.get(Project, project_id)))
