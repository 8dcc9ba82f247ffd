"""The ledger: journal entries (draft, post, reverse), the chart of accounts, closed periods; and the audit log."""

from __future__ import annotations

from datetime import date

from fastapi import Depends, Request
from sqlalchemy import select

from operational_api.api.deps import Ctx, RowId, company_ctx
from operational_api.api.listing import where_given
from operational_api.db.audit_trail import AUDITED
from operational_api.db.models import Account, AuditLog, ClosedPeriod, JournalEntry, JournalLine
from operational_api.services import ledger
from operational_api.services.errors import ValidationFailed
from operational_api.web import l10n
from operational_api.web.actions import act, attempt, company_pages
from operational_api.web.forms import FormState, form_data, form_lists
from operational_api.web.lists import Filters, list_page
from operational_api.web.rendering import go, render

router = company_pages()


def base(ctx: Ctx) -> str:
    return f"/app/c/{ctx.company.id}/ledger"


def accounts(ctx: Ctx) -> list[Account]:
    return list(ctx.db.scalars(ctx.scoped.select(Account).order_by(Account.code)))


@router.get("/ledger")
def entries(request: Request, ctx: Ctx = Depends(company_ctx("ledger:read"))):
    f = Filters(request)
    status, source = f.choice("status", ("draft", "posted")), f.text("source_type")
    date_from, date_to = f.day("from"), f.day("to")
    stmt = ctx.scoped.select(JournalEntry)
    stmt = where_given(stmt, (status, lambda: JournalEntry.status == status),
                       (source, lambda: JournalEntry.source_type == source),
                       (date_from, lambda: JournalEntry.entry_date >= date_from),
                       (date_to, lambda: JournalEntry.entry_date <= date_to))
    view = list_page(request, ctx.db, stmt, JournalEntry, f, sorts=["entry_date", "created_at", "id"],
                     default="-entry_date")
    return render(request, "company/ledger.html", ctx=ctx, view=view)


@router.get("/ledger/new")
def new_entry(request: Request, ctx: Ctx = Depends(company_ctx("ledger:write"))):
    form = FormState(values={"entry_date": date.today().isoformat(), "memo": ""})
    return render(request, "company/entry_form.html", ctx=ctx, form=form, accounts=accounts(ctx),
                  rows=[{"account": "", "debit": "", "credit": ""} for _ in range(4)])


@router.post("/ledger/new")
def create_entry(request: Request, lists: dict = Depends(form_lists), ctx: Ctx = Depends(company_ctx("ledger:write"))):
    first = {k: (v[0] if v else "") for k, v in lists.items()}
    state = FormState(values={k: first.get(k, "").strip() for k in ("entry_date", "memo")})
    rows = [{"account": a, "debit": d, "credit": c} for a, d, c in
            zip(lists.get("account", []), lists.get("debit", []), lists.get("credit", []), strict=False)]
    loc, currency = l10n.user_locale(request), ctx.company.base_currency

    def act():
        try:
            day = date.fromisoformat(state.values["entry_date"])
        except ValueError:
            raise ValidationFailed("entry_date: enter a date") from None
        legs = [ledger.Leg(r["account"],
                           debit_minor=l10n.parse_money(r["debit"] or "0", currency, loc, "debit", allow_zero=True),
                           credit_minor=l10n.parse_money(r["credit"] or "0", currency, loc, "credit", allow_zero=True))
                for r in rows if r["account"] and (r["debit"].strip() or r["credit"].strip())]
        entry = ledger.draft_entry(ctx.db, ctx.company, day, state.values["memo"], currency, legs)
        if first.get("action") == "post":
            ledger.post(ctx.db, ctx.company, entry)
            ctx.track("journal_entry_posted")
        return entry

    entry, error = attempt(ctx.db, act)
    if error:
        return render(request, "company/entry_form.html", ctx=ctx, form=state.fail(error, ("entry_date", "memo")),
                      accounts=accounts(ctx), rows=rows, status=422)
    return go(f"{base(ctx)}/{entry.id}", "entry_posted" if entry.status == "posted" else "entry_created")


def _entry_page(request: Request, ctx: Ctx, entry: JournalEntry, error: str | None = None, status: int = 200):
    lines = ctx.db.execute(select(JournalLine, Account).join(Account, Account.id == JournalLine.account_id)
                           .where(JournalLine.journal_entry_id == entry.id).order_by(JournalLine.id)).all()
    reversal = ctx.db.scalar(select(JournalEntry).where(JournalEntry.reversal_of_id == entry.id))
    return render(request, "company/entry.html", ctx=ctx, entry=entry, lines=lines, reversal=reversal, error=error,
                  status=status)


@router.get("/ledger/{entry_id}")
def entry_page(request: Request, entry_id: RowId, ctx: Ctx = Depends(company_ctx("ledger:read"))):
    return _entry_page(request, ctx, ctx.get(JournalEntry, entry_id))


def _entry_action(request: Request, ctx: Ctx, entry_id: int, action, done: str, target=None):
    entry = ctx.get(JournalEntry, entry_id)
    result, error = attempt(ctx.db, lambda: action(entry))
    if error:
        return _entry_page(request, ctx, ctx.get(JournalEntry, entry_id), error.detail, error.status)
    return go(target(result) if target else f"{base(ctx)}/{entry_id}", done)


@router.post("/ledger/{entry_id}/post")
def post_entry(request: Request, entry_id: RowId, ctx: Ctx = Depends(company_ctx("ledger:write"))):
    def act(entry):
        ledger.post(ctx.db, ctx.company, entry)
        ctx.track("journal_entry_posted")
    return _entry_action(request, ctx, entry_id, act, "entry_posted")


@router.post("/ledger/{entry_id}/reverse")
def reverse(request: Request, entry_id: RowId, ctx: Ctx = Depends(company_ctx("ledger:write"))):
    return _entry_action(request, ctx, entry_id, lambda e: ledger.reverse_entry(ctx.db, ctx.company, e),
                         "entry_reversed", target=lambda r: f"{base(ctx)}/{r.id}")


@router.post("/ledger/{entry_id}/delete")
def delete_entry(request: Request, entry_id: RowId, ctx: Ctx = Depends(company_ctx("ledger:write"))):
    return _entry_action(request, ctx, entry_id, lambda e: ledger.delete_draft(ctx.db, e), "entry_deleted",
                         target=lambda _: base(ctx))


# -- chart of accounts and closed periods ------------------------------------------------------------------

@router.get("/accounts")
def chart(request: Request, ctx: Ctx = Depends(company_ctx("ledger:read"))):
    f = Filters(request)
    kind = f.choice("type", ledger.ACCOUNT_TYPES)
    stmt = ctx.scoped.select(Account)
    if kind:
        stmt = stmt.where(Account.type == kind)
    view = list_page(request, ctx.db, stmt, Account, f, sorts=["code", "name", "id"], default="code", limit=100)
    balances = {(r["code"], r["currency"]): r for r in ledger.trial_balance(ctx.db, ctx.company)}
    return render(request, "company/accounts.html", ctx=ctx, view=view, types=ledger.ACCOUNT_TYPES,
                  balances=balances, form=FormState(values={"type": "expense"}))


@router.post("/accounts")
def add_account(request: Request, form: dict = Depends(form_data), ctx: Ctx = Depends(company_ctx("ledger:write"))):
    state = FormState(values={k: form.get(k, "").strip() for k in ("code", "name", "type")})
    _, error = attempt(ctx.db, lambda: ledger.create_account(ctx.db, ctx.company, **state.values))
    if error:
        request.scope["query_string"] = b""
        f = Filters(request)
        view = list_page(request, ctx.db, ctx.scoped.select(Account), Account, f, sorts=["code"], default="code",
                         limit=100)
        return render(request, "company/accounts.html", ctx=ctx, view=view, types=ledger.ACCOUNT_TYPES, balances={},
                      form=state.fail(error, ("code", "name", "type")), status=error.status)
    return go(f"/app/c/{ctx.company.id}/accounts", "account_created")


@router.get("/periods")
def periods(request: Request, ctx: Ctx = Depends(company_ctx("ledger:read"))):
    view = list_page(request, ctx.db, ctx.scoped.select(ClosedPeriod), ClosedPeriod, Filters(request),
                     sorts=["period", "closed_at"], default="-period")
    return render(request, "company/periods.html", ctx=ctx, view=view, form=FormState())


@router.post("/periods")
def close(request: Request, form: dict = Depends(form_data), ctx: Ctx = Depends(company_ctx("ledger:close_period"))):
    period = form.get("period", "").strip()

    def act():
        row = ledger.close_period(ctx.db, ctx.company, period, ctx.principal.user_id)
        ctx.track("period_closed", period=period)
        return row

    _, error = attempt(ctx.db, act)
    if error:
        state = FormState(values={"period": period}).fail(error, ("period",))
        view = list_page(request, ctx.db, ctx.scoped.select(ClosedPeriod), ClosedPeriod, Filters(request),
                         sorts=["period"], default="-period")
        return render(request, "company/periods.html", ctx=ctx, view=view, form=state, status=error.status)
    return go(f"/app/c/{ctx.company.id}/periods", "period_closed")


@router.post("/periods/{period}/reopen")
def reopen(request: Request, period: str, ctx: Ctx = Depends(company_ctx("ledger:reopen_period"))):
    return act(ctx.db, lambda: ledger.reopen_period(ctx.db, ctx.company, period),
               f"/app/c/{ctx.company.id}/periods", "period_reopened")


# -- audit log ---------------------------------------------------------------------------------------------

@router.get("/audit")
def audit(request: Request, ctx: Ctx = Depends(company_ctx("audit:read"))):
    f = Filters(request)
    entity, action = f.choice("entity_type", AUDITED), f.choice("action", ("create", "update", "transition",
                                                                           "delete", "restore"))
    entity_id, actor = f.integer("entity_id"), f.integer("actor_user_id")
    stmt = ctx.scoped.select(AuditLog)
    stmt = where_given(stmt, (entity, lambda: AuditLog.entity_type == entity),
                       (action, lambda: AuditLog.action == action),
                       (entity_id, lambda: AuditLog.entity_id == entity_id),
                       (actor, lambda: AuditLog.actor_user_id == actor))
    view = list_page(request, ctx.db, stmt, AuditLog, f, sorts=["seq"], default="-seq", limit=50)
    return render(request, "company/audit.html", ctx=ctx, view=view, entities=list(AUDITED))
