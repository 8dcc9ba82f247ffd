"""The audit log of a company: read it, and verify its hash chain and the records against it."""

from __future__ import annotations

from typing import Any, Literal

from fastapi import Depends, Query
from pydantic import BaseModel

from operational_api.api.deps import Ctx, company_ctx, company_router
from operational_api.api.listing import Cursor, Limit, paginate, sort_query, where_given
from operational_api.api.schemas import Page, Text, Timestamp
from operational_api.db.audit_trail import AUDITED
from operational_api.db.models import AuditLog
from operational_api.services.audit import verify

router = company_router("audit-log", "audit")
Action = Literal["create", "update", "transition", "delete", "restore"]


class AuditOut(BaseModel):
    id: int
    seq: int
    occurred_at: Timestamp
    actor_user_id: int | None
    actor: str
    request_id: str | None
    action: str
    entity_type: str
    entity_id: int
    before: dict[str, Any] | None
    after: dict[str, Any] | None
    hash: str


class FindingOut(BaseModel):
    problem: str
    detail: str
    audit_row_id: int | None
    entity_type: str | None
    entity_id: int | None


class VerifyOut(BaseModel):
    intact: bool
    findings: list[FindingOut]


@router.get("", response_model=Page[AuditOut], summary="The company's audit log")
def list_audit(ctx: Ctx = Depends(company_ctx("audit:read")), limit: Limit = 50, cursor: Cursor = None,
               sort: str = sort_query(["seq"], "-seq"),
               entity_type: Literal[tuple(AUDITED)] | None = None,  # type: ignore[valid-type]
               entity_id: int | None = Query(None, ge=1, le=2**31 - 1), action: Action | None = None,
               actor_user_id: int | None = Query(None, ge=1, le=2**31 - 1), request_id: Text(100) | None = None):
    stmt = ctx.scoped.select(AuditLog)
    stmt = where_given(
        stmt,
        (entity_type, lambda: AuditLog.entity_type == entity_type),
        (entity_id, lambda: AuditLog.entity_id == entity_id),
        (action, lambda: AuditLog.action == action),
        (actor_user_id, lambda: AuditLog.actor_user_id == actor_user_id),
        (request_id, lambda: AuditLog.request_id == request_id),
    )
    rows, nxt = paginate(ctx.db, stmt, AuditLog, sort=sort, cursor=cursor, limit=limit)
    return Page[AuditOut](items=[AuditOut.model_validate(r, from_attributes=True) for r in rows], next_cursor=nxt)


@router.get("/verify", response_model=VerifyOut, summary="Verify the hash chain and the records against it")
def verify_audit(ctx: Ctx = Depends(company_ctx("audit:read"))):
    findings = verify(ctx.db, ctx.company.id)
    return VerifyOut(intact=not findings, findings=[
        FindingOut(problem=f.problem, detail=f.detail, audit_row_id=f.audit_row_id, entity_type=f.entity_type,
                   entity_id=f.entity_id) for f in findings])
