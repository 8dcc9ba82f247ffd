"""Expenses: category, amount, billable flag and attachment reference; each one is posted to the ledger."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict

from operational_api.api.deps import Ctx, RowId, company_ctx, company_router
from operational_api.api.listing import Cursor, Limit, paginate, sort_query, where_given
from operational_api.api.routers.clients import DELETED_QUERY, Deleted, filter_deleted
from operational_api.api.schemas import Amount, BusinessDate, Page, Text, Timestamp, money, to_minor
from operational_api.db.models import Expense, Project
from operational_api.services import records

router = company_router("expenses", "expenses")
Category = Literal["software", "travel", "office", "contractors", "other"]


class ExpenseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"category": "travel", "amount": "320.00", "incurred_on": "2026-03-04", "vendor": "Rail Co",
         "billable": True, "project_id": 1, "attachment_ref": "receipts/2026-03/rail.pdf"}]})
    category: Category
    amount: Amount
    currency: Text(3, 3) | None = None
    incurred_on: BusinessDate
    vendor: Text(200) = ""
    project_id: int | None = None
    billable: bool = False
    attachment_ref: Text(300) | None = None


class ExpensePatch(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"amount": "310.00"}]})
    category: Category | None = None
    amount: Amount | None = None
    incurred_on: BusinessDate | None = None
    vendor: Text(200) | None = None
    project_id: int | None = None
    billable: bool | None = None
    attachment_ref: Text(300) | None = None


class ExpenseOut(BaseModel):
    id: int
    project_id: int | None
    category: str
    vendor: str
    currency: str
    amount: Decimal
    incurred_on: date
    billable: bool
    attachment_ref: str | None
    journal_entry_id: int | None
    created_at: Timestamp
    updated_at: Timestamp
    created_by_id: int | None
    updated_by_id: int | None
    deleted_at: Timestamp | None


def out(e: Expense) -> ExpenseOut:
    return ExpenseOut(id=e.id, project_id=e.project_id, category=e.category, vendor=e.vendor, currency=e.currency,
                      amount=money(e.amount_minor, e.currency), incurred_on=e.incurred_on, billable=e.billable,
                      attachment_ref=e.attachment_ref, journal_entry_id=e.journal_entry_id, created_at=e.created_at,
                      updated_at=e.updated_at, created_by_id=e.created_by_id, updated_by_id=e.updated_by_id,
                      deleted_at=e.deleted_at)


@router.get("", response_model=Page[ExpenseOut], summary="List expenses")
def list_expenses(ctx: Ctx = Depends(company_ctx("expenses:read")), limit: Limit = 50, cursor: Cursor = None,
                  sort: str = sort_query(["id", "incurred_on", "amount_minor", "created_at"], "-incurred_on"),
                  category: Category | None = None, project_id: int | None = Query(None, ge=1, le=2**31 - 1),
                  billable: bool | None = None, date_from: date | None = Query(None, alias="from"),
                  date_to: date | None = Query(None, alias="to"), deleted: Deleted = DELETED_QUERY):
    stmt = filter_deleted(ctx.scoped.select(Expense), Expense, deleted)
    stmt = where_given(
        stmt,
        (category, lambda: Expense.category == category),
        (project_id, lambda: Expense.project_id == project_id),
        (billable, lambda: Expense.billable == billable),
        (date_from, lambda: Expense.incurred_on >= date_from),
        (date_to, lambda: Expense.incurred_on <= date_to),
    )
    rows, nxt = paginate(ctx.db, stmt, Expense, sort=sort, cursor=cursor, limit=limit)
    return Page[ExpenseOut](items=[out(e) for e in rows], next_cursor=nxt)


@router.post("", response_model=ExpenseOut, status_code=201, summary="Record an expense (posted to the ledger)")
def create_expense(body: ExpenseIn, ctx: Ctx = Depends(company_ctx("expenses:write"))):
    currency = body.currency or ctx.company.base_currency
    project = ctx.get(Project, body.project_id) if body.project_id else None
    expense = records.record_expense(
        ctx.db, ctx.company, category=body.category, amount_minor=to_minor(body.amount, currency, ("amount",)),
        incurred_on=body.incurred_on, vendor=body.vendor, project=project, billable=body.billable,
        attachment_ref=body.attachment_ref, currency=currency)
    ctx.track("expense_recorded")
    return out(expense)


@router.get("/{expense_id}", response_model=ExpenseOut, summary="An expense")
def get_expense(expense_id: RowId, ctx: Ctx = Depends(company_ctx("expenses:read"))):
    return out(ctx.get(Expense, expense_id))


@router.patch("/{expense_id}", response_model=ExpenseOut,
              summary="Change an expense (a new amount, category or date reverses and re-posts its entry)")
def update_expense(expense_id: RowId, body: ExpensePatch, ctx: Ctx = Depends(company_ctx("expenses:write"))):
    expense = ctx.get(Expense, expense_id)
    changes = {k: v for k, v in body.model_dump(exclude_unset=True, exclude={"amount", "project_id"}).items()
               if v is not None or k == "attachment_ref"}
    if body.amount is not None:
        changes["amount_minor"] = to_minor(body.amount, expense.currency, ("amount",))
    project = ctx.get(Project, body.project_id) if body.project_id else None
    return out(records.update_expense(ctx.db, ctx.company, expense, project=project, **changes))


@router.delete("/{expense_id}", response_model=ExpenseOut, summary="Soft-delete an expense (reverses its entry)")
def delete_expense(expense_id: RowId, ctx: Ctx = Depends(company_ctx("expenses:write"))):
    return out(records.delete_expense(ctx.db, ctx.company, ctx.get(Expense, expense_id)))


@router.post("/{expense_id}/restore", response_model=ExpenseOut, summary="Restore an expense (posts it again)")
def restore_expense(expense_id: RowId, ctx: Ctx = Depends(company_ctx("expenses:write"))):
    return out(records.restore_expense(ctx.db, ctx.company, ctx.get(Expense, expense_id)))
