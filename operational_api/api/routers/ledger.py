"""The ledger: chart of accounts, journal entries (draft -> posted, reversal), closed periods, trial balance."""

from __future__ import annotations

from datetime import date
from decimal import Decimal
from typing import Literal

from fastapi import Depends, Path, Query
from pydantic import BaseModel, ConfigDict, Field

from operational_api.api import pages
from operational_api.api.deps import Ctx, RowId, company_ctx, company_router
from operational_api.api.listing import Cursor, Limit, paginate, sort_query, where_given
from operational_api.api.schemas import Amount, BusinessDate, Page, Text, Timestamp, money, to_minor
from operational_api.db.models import Account, ClosedPeriod, JournalEntry
from operational_api.services import ledger

router = company_router("ledger", "ledger")
AccountType = Literal["asset", "liability", "equity", "income", "expense"]


class AccountIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"code": "6700", "name": "Training", "type": "expense"}]})
    code: Text(20, 1)
    name: Text(120, 1)
    type: AccountType


class AccountOut(BaseModel):
    id: int
    code: str
    name: str
    type: str


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    account_code: Text(20, 1)
    debit: Amount = Decimal(0)
    credit: Amount = Decimal(0)


class EntryIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "entry_date": "2026-03-31", "memo": "Accrued software subscription", "currency": "USD",
        "lines": [{"account_code": "6200", "debit": "99.00"}, {"account_code": "1000", "credit": "99.00"}],
        "post": True}]})
    entry_date: BusinessDate
    memo: Text(300) = ""
    currency: Text(3, 3) | None = Field(None, description="Default: the company's base currency")
    lines: list[LineIn] = Field(min_length=2, max_length=200)
    post: bool = Field(False, description="Post at once (otherwise a draft)")


class EntryPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"memo": "Corrected memo"}]})
    entry_date: BusinessDate | None = None
    memo: Text(300) | None = None
    lines: list[LineIn] | None = Field(None, min_length=2, max_length=200)


class ReverseIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"on": "2026-04-01"}]})
    on: BusinessDate | None = Field(None, description="Default: the original's date if its period is open, else today")
    memo: Text(300) | None = None


class PeriodIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"period": "2026-03"}]})
    period: Text(7, 7) = Field(pattern=r"^\d{4}-\d{2}$")


class EntryLineOut(BaseModel):
    account_code: str
    debit: Decimal
    credit: Decimal


class EntryOut(BaseModel):
    id: int
    entry_date: date
    memo: str
    currency: str
    status: str
    source_type: str
    source_id: int | None
    reversal_of_id: int | None
    posted_at: Timestamp | None
    lines: list[EntryLineOut]
    created_at: Timestamp
    created_by_id: int | None


class PeriodOut(BaseModel):
    period: str
    closed_at: Timestamp
    closed_by_id: int | None


class BalanceOut(BaseModel):
    code: str
    name: str
    type: str
    currency: str
    debit: Decimal
    credit: Decimal
    balance: Decimal = Field(description="Debits minus credits")


def entry_dict(e, lines) -> dict:
    """A journal entry with its lines (rows carrying the account code)."""
    cur = e.currency
    return {"id": e.id, "entry_date": e.entry_date, "memo": e.memo, "currency": cur, "status": e.status,
            "source_type": e.source_type, "source_id": e.source_id, "reversal_of_id": e.reversal_of_id,
            "posted_at": e.posted_at, "created_at": e.created_at, "created_by_id": e.created_by_id,
            "lines": [{"account_code": ln.code, "debit": money(ln.debit_minor, cur),
                       "credit": money(ln.credit_minor, cur)} for ln in lines]}


def entry_out(ctx: Ctx, e: JournalEntry) -> dict:
    ctx.db.flush()  # after a write: the lines just added are read by a plain select (no autoflush)
    return entry_dict(e, pages.entry_lines(ctx.db, ctx.company.id, [e.id]).get(e.id, ()))


def _legs(lines: list[LineIn], currency: str) -> list[ledger.Leg]:
    return [ledger.Leg(ln.account_code, debit_minor=to_minor(ln.debit, currency, ("lines", i, "debit"),
                                                             allow_zero=True),
                       credit_minor=to_minor(ln.credit, currency, ("lines", i, "credit"), allow_zero=True))
            for i, ln in enumerate(lines)]


@router.get("/accounts", response_model=Page[AccountOut], summary="The chart of accounts")
def list_accounts(ctx: Ctx = Depends(company_ctx("ledger:read")), type: AccountType | None = None,
                  limit: Limit = 100, cursor: Cursor = None, sort: str = sort_query(["code", "name", "id"], "code")):
    stmt = where_given(ctx.scoped.select(Account), (type, lambda: Account.type == type))
    rows, nxt = paginate(ctx.db, stmt, Account, sort=sort, cursor=cursor, limit=limit)
    return Page[AccountOut](items=[AccountOut(id=a.id, code=a.code, name=a.name, type=a.type) for a in rows],
                            next_cursor=nxt)


@router.post("/accounts", response_model=AccountOut, status_code=201, summary="Add an account to the chart")
def create_account(body: AccountIn, ctx: Ctx = Depends(company_ctx("ledger:write"))):
    a = ledger.create_account(ctx.db, ctx.company, code=body.code, name=body.name, type=body.type)
    return AccountOut(id=a.id, code=a.code, name=a.name, type=a.type)


@router.get("/entries", response_model=Page[EntryOut], summary="List journal entries")
def list_entries(ctx: Ctx = Depends(company_ctx("ledger:read")), limit: Limit = 50, cursor: Cursor = None,
                 sort: str = sort_query(["id", "entry_date", "created_at"], "-entry_date"),
                 status: Literal["draft", "posted"] | None = None, source_type: Text(30) | None = None,
                 currency: Text(3) | None = None, date_from: date | None = Query(None, alias="from"),
                 date_to: date | None = Query(None, alias="to")):
    stmt = ctx.scoped.select(JournalEntry)
    stmt = where_given(
        stmt,
        (status, lambda: JournalEntry.status == status),
        (source_type, lambda: JournalEntry.source_type == source_type),
        (currency, lambda: JournalEntry.currency == (currency or "").upper()),
        (date_from, lambda: JournalEntry.entry_date >= date_from),
        (date_to, lambda: JournalEntry.entry_date <= date_to),
    )
    rows, nxt = paginate(ctx.db, stmt, JournalEntry, sort=sort, cursor=cursor, limit=limit)
    lines = pages.entry_lines(ctx.db, ctx.company.id, [e.id for e in rows])
    return {"items": [entry_dict(e, lines.get(e.id, ())) for e in rows], "next_cursor": nxt}


@router.post("/entries", response_model=EntryOut, status_code=201,
             summary="Create a manual journal entry (a draft, or posted at once if it balances)")
def create_entry(body: EntryIn, ctx: Ctx = Depends(company_ctx("ledger:write"))):
    currency = (body.currency or ctx.company.base_currency).upper()
    entry = ledger.draft_entry(ctx.db, ctx.company, body.entry_date, body.memo, currency, _legs(body.lines, currency))
    if body.post:
        ledger.post(ctx.db, ctx.company, entry)
        ctx.track("journal_entry_posted")
    return entry_out(ctx, entry)


@router.get("/entries/{entry_id}", response_model=EntryOut, summary="A journal entry with its lines")
def get_entry(entry_id: RowId, ctx: Ctx = Depends(company_ctx("ledger:read"))):
    return entry_out(ctx, ctx.get(JournalEntry, entry_id))


@router.patch("/entries/{entry_id}", response_model=EntryOut, summary="Change a draft (a posted entry answers 409)")
def update_entry(entry_id: RowId, body: EntryPatch, ctx: Ctx = Depends(company_ctx("ledger:write"))):
    entry = ctx.get(JournalEntry, entry_id)
    ledger.update_draft(ctx.db, ctx.company, entry)  # 409 for a posted entry first
    legs = _legs(body.lines, entry.currency) if body.lines is not None else None
    ledger.update_draft(ctx.db, ctx.company, entry, entry_date=body.entry_date, memo=body.memo, legs=legs)
    return entry_out(ctx, entry)


@router.delete("/entries/{entry_id}", status_code=204, summary="Delete a draft (a posted entry answers 409)")
def delete_entry(entry_id: RowId, ctx: Ctx = Depends(company_ctx("ledger:write"))):
    ledger.delete_draft(ctx.db, ctx.get(JournalEntry, entry_id))


@router.post("/entries/{entry_id}/post", response_model=EntryOut,
             summary="Post a draft: refused unless debits equal credits and its period is open")
def post_entry(entry_id: RowId, ctx: Ctx = Depends(company_ctx("ledger:write"))):
    entry = ledger.post(ctx.db, ctx.company, ctx.get(JournalEntry, entry_id))
    ctx.track("journal_entry_posted")
    return entry_out(ctx, entry)


@router.post("/entries/{entry_id}/reverse", response_model=EntryOut, status_code=201,
             summary="Correct a posted entry with a reversal entry")
def reverse_entry(entry_id: RowId, body: ReverseIn | None = None, ctx: Ctx = Depends(company_ctx("ledger:write"))):
    reversal = ledger.reverse_entry(ctx.db, ctx.company, ctx.get(JournalEntry, entry_id),
                                    on=body.on if body else None, memo=body.memo if body else None)
    return entry_out(ctx, reversal)


@router.get("/periods", response_model=Page[PeriodOut], summary="Closed periods")
def list_periods(ctx: Ctx = Depends(company_ctx("ledger:read")), limit: Limit = 50, cursor: Cursor = None,
                 sort: str = sort_query(["period", "closed_at"], "period")):
    rows, nxt = paginate(ctx.db, ctx.scoped.select(ClosedPeriod), ClosedPeriod, sort=sort, cursor=cursor, limit=limit)
    return Page[PeriodOut](items=[PeriodOut(period=p.period, closed_at=p.closed_at, closed_by_id=p.closed_by_id)
                                  for p in rows], next_cursor=nxt)


@router.post("/periods", response_model=PeriodOut, status_code=201, summary="Close a month to postings")
def close_period(body: PeriodIn, ctx: Ctx = Depends(company_ctx("ledger:close_period"))):
    row = ledger.close_period(ctx.db, ctx.company, body.period, ctx.principal.user_id)
    ctx.track("period_closed", period=body.period)
    return PeriodOut(period=row.period, closed_at=row.closed_at, closed_by_id=row.closed_by_id)


@router.delete("/periods/{period}", status_code=204, summary="Reopen a closed month")
def reopen_period(period: str = Path(..., pattern=r"^\d{4}-\d{2}$", examples=["2026-03"]),
                  ctx: Ctx = Depends(company_ctx("ledger:reopen_period"))):
    ledger.reopen_period(ctx.db, ctx.company, period)


@router.get("/trial-balance", response_model=list[BalanceOut], summary="Posted debits and credits per account")
def trial_balance(ctx: Ctx = Depends(company_ctx("ledger:read")), currency: Text(3) | None = None):
    return [BalanceOut(code=r["code"], name=r["name"], type=r["type"], currency=r["currency"],
                       debit=money(r["debit_minor"], r["currency"]), credit=money(r["credit_minor"], r["currency"]),
                       balance=money(r["debit_minor"] - r["credit_minor"], r["currency"]))
            for r in ledger.trial_balance(ctx.db, ctx.company, currency)]

