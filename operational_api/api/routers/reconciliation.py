"""Reconciliation resolutions: finance's decisions on warehouse reconciliation items (append-only, audited).

Written by the finance workbench in the dashboards, as the signed-in user (session cookie + CSRF token), or by
any API client with a finance/admin/owner token. There is no update and no delete: a new decision (or
`reopened`) supersedes the one before it."""

from __future__ import annotations

from typing import Literal

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict

from operational_api.api.deps import Ctx, company_ctx, company_router
from operational_api.api.listing import Cursor, Limit, paginate, sort_query
from operational_api.api.schemas import Page, Text, Timestamp
from operational_api.db.reconciliation_models import ReconciliationResolution
from operational_api.services import reconciliation

router = company_router("reconciliation/resolutions", "reconciliation")
Pair = Literal[reconciliation.PAIRS]  # type: ignore[valid-type]
Action = Literal[reconciliation.ACTIONS]  # type: ignore[valid-type]


class ResolutionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"pair": "stripe_payout~erp_bank_transaction", "item_key": "stripe_payout~erp_bank_transaction:po_123",
         "action": "accepted_difference", "note": "bank fee of 0.35 EUR charged by the receiving bank"}]})
    pair: Pair
    item_key: Text(reconciliation.KEY_MAX, 1)
    action: Action
    linked_key: Text(reconciliation.KEY_MAX, 1) | None = None
    note: Text(reconciliation.NOTE_MAX, 1)


class ResolutionOut(BaseModel):
    id: int
    pair: str
    item_key: str
    action: str
    linked_key: str | None
    note: str
    user_id: int
    created_at: Timestamp


def out(row: ReconciliationResolution) -> ResolutionOut:
    return ResolutionOut.model_validate(row, from_attributes=True)


@router.post("", response_model=ResolutionOut, status_code=201,
             summary="Record a decision on a reconciliation item (append-only; the latest decision wins)")
def create_resolution(body: ResolutionIn, ctx: Ctx = Depends(company_ctx("reconcile"))):
    row = reconciliation.record(ctx.db, ctx.company.id, ctx.principal.user_id, **body.model_dump())
    return out(row)


@router.get("", response_model=Page[ResolutionOut], summary="The company's reconciliation decisions, newest first")
def list_resolutions(ctx: Ctx = Depends(company_ctx("reconcile")), limit: Limit = 50, cursor: Cursor = None,
                     sort: str = sort_query(["id", "created_at"], "-id"),
                     pair: Pair | None = None,
                     item_key: list[Text(reconciliation.KEY_MAX, 1)] | None = Query(None, max_length=200)):
    stmt = reconciliation.history(ctx.db, ctx.company.id, pairs=[pair] if pair else None, item_keys=item_key)
    rows, nxt = paginate(ctx.db, stmt, ReconciliationResolution, sort=sort, cursor=cursor, limit=limit)
    return Page[ResolutionOut](items=[out(r) for r in rows], next_cursor=nxt)
