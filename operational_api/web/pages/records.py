"""Clients, projects, time (list and weekly timesheet) and expenses: lists, forms and actions on the services
in `operational_api.services.records`."""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from fastapi import Depends, HTTPException, Request
from sqlalchemy import select

from operational_api.api.deps import Ctx, RowId, company_ctx
from operational_api.api.listing import where_given
from operational_api.db.models import Client, Expense, Membership, Project, TimeEntry, User
from operational_api.permissions import allowed
from operational_api.services import billing, payments, records
from operational_api.services.errors import ValidationFailed
from operational_api.services.ledger import EXPENSE_ACCOUNTS
from operational_api.web import l10n
from operational_api.web.actions import act, attempt, company_pages
from operational_api.web.forms import FormState, form_data
from operational_api.web.lists import Filters, list_page
from operational_api.web.rendering import go, render

router = company_pages()
DELETED = ("exclude", "include", "only")


def today() -> date:
    return datetime.now(UTC).date()


def where_deleted(stmt, model, deleted: str | None):
    if deleted == "only":
        return stmt.where(model.deleted_at.is_not(None))
    if deleted == "include":
        return stmt
    return stmt.where(model.deleted_at.is_(None))


def client_options(ctx: Ctx) -> list[tuple[int, str]]:
    rows = ctx.db.scalars(ctx.scoped.select(Client).where(Client.deleted_at.is_(None)).order_by(Client.name)
                          .limit(500))
    return [(c.id, f"{c.name} ({c.currency})") for c in rows]


def project_options(ctx: Ctx, active_only: bool = False) -> list[tuple[int, str]]:
    stmt = ctx.scoped.select(Project).where(Project.deleted_at.is_(None)).order_by(Project.name).limit(500)
    if active_only:
        stmt = stmt.where(Project.status.in_(("active", "on_hold")))
    return [(p.id, p.name) for p in ctx.db.scalars(stmt)]


def _day(value: str, field: str) -> date:
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed(f"{field}: enter a date") from None


def base(ctx: Ctx) -> str:
    return f"/app/c/{ctx.company.id}"


# -- clients -----------------------------------------------------------------------------------------------

@router.get("/clients")
def clients(request: Request, ctx: Ctx = Depends(company_ctx("clients:read"))):
    f = Filters(request)
    q, currency, deleted = f.text("q"), f.text("currency"), f.choice("deleted", DELETED)
    stmt = where_deleted(ctx.scoped.select(Client), Client, deleted)
    if q:
        stmt = stmt.where(Client.name.ilike(f"%{q}%"))
    if currency:
        stmt = stmt.where(Client.currency == currency.upper())
    view = list_page(request, ctx.db, stmt, Client, f, sorts=["name", "created_at", "id"], default="name")
    return render(request, "company/clients.html", ctx=ctx, view=view)


CLIENT_FIELDS = ("name", "email", "currency")


@router.get("/clients/new")
def new_client(request: Request, ctx: Ctx = Depends(company_ctx("clients:write"))):
    return render(request, "company/client_form.html", ctx=ctx, client=None,
                  form=FormState(values={"currency": ctx.company.base_currency}))


@router.post("/clients/new")
def create_client(request: Request, form: dict = Depends(form_data), ctx: Ctx = Depends(company_ctx("clients:write"))):
    state = FormState(values={k: form.get(k, "").strip() for k in CLIENT_FIELDS})

    def act():
        client = records.create_client(ctx.db, ctx.company, name=state.values["name"], email=state.values["email"],
                                       currency=state.values["currency"] or None)
        ctx.track("client_created")
        return client

    client, error = attempt(ctx.db, act)
    if error:
        return render(request, "company/client_form.html", ctx=ctx, client=None, status=422,
                      form=state.fail(error, CLIENT_FIELDS))
    return go(f"{base(ctx)}/clients/{client.id}", "client_created")


@router.get("/clients/{client_id}")
def client_page(request: Request, client_id: RowId, ctx: Ctx = Depends(company_ctx("clients:read"))):
    client = ctx.get(Client, client_id)
    projects = ctx.db.scalars(ctx.scoped.select(Project).where(Project.client_id == client.id,
                                                               Project.deleted_at.is_(None)).order_by(Project.name))
    work = billing.unbilled_work(ctx.db, ctx.company, client)
    credit = payments.client_credit(ctx.db, ctx.company, client) if allowed(ctx.principal.role, "payments:read") \
        else {}
    form = FormState(values={"name": client.name, "email": client.email, "currency": client.currency})
    return render(request, "company/client.html", ctx=ctx, client=client, projects=list(projects), work=work,
                  credit=credit, form=form,
                  unbilled_hours=sum((Decimal(e.hours) for e in work.time_entries), Decimal(0)),
                  unbilled_minor=sum(round(Decimal(e.hours) * e.rate_minor) for e in work.time_entries)
                  + sum(e.amount_minor for e in work.expenses))


@router.post("/clients/{client_id}")
def update_client(request: Request, client_id: RowId, form: dict = Depends(form_data),
                  ctx: Ctx = Depends(company_ctx("clients:write"))):
    client = ctx.get(Client, client_id)
    state = FormState(values={k: form.get(k, "").strip() for k in CLIENT_FIELDS})
    changes = {k: v for k, v in state.values.items() if v != getattr(client, k)}
    _, error = attempt(ctx.db, lambda: records.update_client(ctx.db, ctx.company, client, **changes))
    if error:
        return render(request, "company/client_form.html", ctx=ctx, client=ctx.get(Client, client_id), status=422,
                      form=state.fail(error, CLIENT_FIELDS))
    return go(f"{base(ctx)}/clients/{client_id}", "client_saved")


@router.post("/clients/{client_id}/delete")
def delete_client(request: Request, client_id: RowId, ctx: Ctx = Depends(company_ctx("clients:write"))):
    client = ctx.get(Client, client_id)
    return act(ctx.db, lambda: records.delete_client(ctx.db, ctx.company, client),
               f"{base(ctx)}/clients", "client_deleted")


@router.post("/clients/{client_id}/restore")
def restore_client(request: Request, client_id: RowId, ctx: Ctx = Depends(company_ctx("clients:write"))):
    client = ctx.get(Client, client_id)
    return act(ctx.db, lambda: records.restore_client(ctx.db, ctx.company, client),
               f"{base(ctx)}/clients/{client_id}", "client_restored")


# -- projects ----------------------------------------------------------------------------------------------

PROJECT_FIELDS = ("client_id", "name", "hourly_rate", "budget", "status")


@router.get("/projects")
def projects(request: Request, ctx: Ctx = Depends(company_ctx("projects:read"))):
    f = Filters(request)
    client_id, status = f.integer("client_id"), f.choice("status", records.PROJECT_STATUSES)
    deleted = f.choice("deleted", DELETED)
    stmt = where_deleted(ctx.scoped.select(Project), Project, deleted)
    if client_id:
        stmt = stmt.where(Project.client_id == client_id)
    if status:
        stmt = stmt.where(Project.status == status)
    view = list_page(request, ctx.db, stmt, Project, f, sorts=["name", "created_at", "budget_minor", "id"],
                     default="name")
    names = dict(client_options(ctx))
    return render(request, "company/projects.html", ctx=ctx, view=view, clients=client_options(ctx), names=names,
                  statuses=records.PROJECT_STATUSES)


@router.get("/projects/new")
def new_project(request: Request, ctx: Ctx = Depends(company_ctx("projects:write"))):
    values = {"client_id": request.query_params.get("client_id", ""), "status": "active", "budget": ""}
    return render(request, "company/project_form.html", ctx=ctx, project=None, form=FormState(values=values),
                  clients=client_options(ctx), statuses=records.PROJECT_STATUSES)


def _client_currency(ctx: Ctx, client_id: str) -> tuple[Client | None, str]:
    try:
        client = ctx.get(Client, int(client_id))
    except (ValueError, TypeError, Exception):  # noqa: BLE001 - an unknown client is a form error below
        return None, ctx.company.base_currency
    return client, client.currency


@router.post("/projects/new")
def create_project(request: Request, form: dict = Depends(form_data),
                   ctx: Ctx = Depends(company_ctx("projects:write"))):
    state = FormState(values={k: form.get(k, "").strip() for k in PROJECT_FIELDS})
    loc = l10n.user_locale(request)
    client, currency = _client_currency(ctx, state.values["client_id"])

    def act():
        if client is None:
            raise ValidationFailed("client_id: choose a client")
        project = records.create_project(
            ctx.db, ctx.company, client, name=state.values["name"], status=state.values["status"] or "active",
            hourly_rate_minor=l10n.parse_money(state.values["hourly_rate"], currency, loc, "hourly_rate",
                                               allow_zero=True),
            budget_minor=l10n.parse_money(state.values["budget"] or "0", currency, loc, "budget", allow_zero=True))
        ctx.track("project_created")
        return project

    project, error = attempt(ctx.db, act)
    if error:
        return render(request, "company/project_form.html", ctx=ctx, project=None, status=422,
                      form=state.fail(error, PROJECT_FIELDS), clients=client_options(ctx),
                      statuses=records.PROJECT_STATUSES)
    return go(f"{base(ctx)}/projects/{project.id}", "project_created")


@router.get("/projects/{project_id}")
def project_page(request: Request, project_id: RowId, ctx: Ctx = Depends(company_ctx("projects:read"))):
    project = ctx.get(Project, project_id)
    fmt_amount = l10n.amount
    loc = l10n.user_locale(request)
    values = {"name": project.name, "status": project.status, "client_id": str(project.client_id),
              "hourly_rate": fmt_amount(project.hourly_rate_minor, project.currency, loc),
              "budget": fmt_amount(project.budget_minor, project.currency, loc)}
    return render(request, "company/project_form.html", ctx=ctx, project=project, form=FormState(values=values),
                  clients=client_options(ctx), statuses=records.PROJECT_STATUSES,
                  client=ctx.get(Client, project.client_id))


@router.post("/projects/{project_id}")
def update_project(request: Request, project_id: RowId, form: dict = Depends(form_data),
                   ctx: Ctx = Depends(company_ctx("projects:write"))):
    project = ctx.get(Project, project_id)
    state = FormState(values={k: form.get(k, "").strip() for k in PROJECT_FIELDS})
    loc = l10n.user_locale(request)

    def act():
        return records.update_project(
            ctx.db, ctx.company, project, name=state.values["name"],
            hourly_rate_minor=l10n.parse_money(state.values["hourly_rate"], project.currency, loc, "hourly_rate",
                                               allow_zero=True),
            budget_minor=l10n.parse_money(state.values["budget"] or "0", project.currency, loc, "budget",
                                          allow_zero=True),
            status=state.values["status"] or project.status)

    _, error = attempt(ctx.db, act)
    if error:
        project = ctx.get(Project, project_id)
        return render(request, "company/project_form.html", ctx=ctx, project=project, status=422,
                      form=state.fail(error, PROJECT_FIELDS), clients=client_options(ctx),
                      statuses=records.PROJECT_STATUSES, client=ctx.get(Client, project.client_id))
    return go(f"{base(ctx)}/projects/{project_id}", "project_saved")


@router.post("/projects/{project_id}/delete")
def delete_project(request: Request, project_id: RowId, ctx: Ctx = Depends(company_ctx("projects:write"))):
    project = ctx.get(Project, project_id)
    return act(ctx.db, lambda: records.delete_project(ctx.db, ctx.company, project),
               f"{base(ctx)}/projects", "project_deleted")


# -- time --------------------------------------------------------------------------------------------------

TIME_FIELDS = ("project_id", "work_date", "hours", "description", "billable")


def members(ctx: Ctx) -> dict[int, str]:
    rows = ctx.db.execute(select(User.id, User.full_name, User.email).join(Membership, Membership.user_id == User.id)
                          .where(Membership.company_id == ctx.company.id))
    return {uid: name or email for uid, name, email in rows.all()}


@router.get("/time")
def time_entries(request: Request, ctx: Ctx = Depends(company_ctx("time:read"))):
    f = Filters(request)
    project_id, user_id, billable = f.integer("project_id"), f.integer("user_id"), f.flag("billable")
    date_from, date_to = f.day("from"), f.day("to")
    stmt = where_deleted(ctx.scoped.select(TimeEntry), TimeEntry, f.choice("deleted", DELETED))
    stmt = where_given(stmt, (project_id, lambda: TimeEntry.project_id == project_id),
                       (user_id, lambda: TimeEntry.user_id == user_id),
                       (billable, lambda: TimeEntry.billable.is_(bool(billable))),
                       (date_from, lambda: TimeEntry.work_date >= date_from),
                       (date_to, lambda: TimeEntry.work_date <= date_to))
    view = list_page(request, ctx.db, stmt, TimeEntry, f, sorts=["work_date", "created_at", "id"],
                     default="-work_date")
    billed = billing.billed_status(ctx.db, ctx.company.id, [t.id for t in view.rows], "time_entry_id")
    return render(request, "company/time.html", ctx=ctx, view=view, projects=project_options(ctx),
                  names=dict(project_options(ctx)), people=members(ctx), billed=billed)


def _monday(day: date) -> date:
    return day - timedelta(days=day.weekday())


def _week(ctx: Ctx, start: date, user_id: int, form: FormState | None = None) -> dict:
    days = [start + timedelta(days=i) for i in range(7)]
    entries = ctx.db.scalars(ctx.scoped.select(TimeEntry).where(
        TimeEntry.user_id == user_id, TimeEntry.deleted_at.is_(None), TimeEntry.work_date >= days[0],
        TimeEntry.work_date <= days[-1]).order_by(TimeEntry.work_date, TimeEntry.id)).all()
    grid: dict[int, dict[date, Decimal]] = defaultdict(lambda: defaultdict(Decimal))
    for e in entries:
        grid[e.project_id][e.work_date] += Decimal(e.hours)
    per_day = {d: sum((grid[p][d] for p in grid), Decimal(0)) for d in days}
    names = dict(project_options(ctx))
    for pid in grid:
        names.setdefault(pid, ctx.db.get(Project, pid).name)
    values = {"work_date": (today() if days[0] <= today() <= days[-1] else days[0]).isoformat(), "billable": "1"}
    return dict(days=days, grid=grid, per_day=per_day, total=sum(per_day.values(), Decimal(0)), names=names,
                entries=entries, people=members(ctx), person=user_id, start=start,
                prev=(start - timedelta(days=7)).isoformat(), next=(start + timedelta(days=7)).isoformat(),
                projects=project_options(ctx, active_only=True), form=form or FormState(values=values),
                may_log=user_id == ctx.principal.user_id)


@router.get("/time/week")
def timesheet(request: Request, ctx: Ctx = Depends(company_ctx("time:read"))):
    f = Filters(request)
    week = _week(ctx, _monday(f.day("start") or today()), f.integer("user_id") or ctx.principal.user_id)
    return render(request, "company/timesheet.html", ctx=ctx, **week)


@router.post("/time/new")
def log_time(request: Request, form: dict = Depends(form_data), ctx: Ctx = Depends(company_ctx("time:write"))):
    state = FormState(values={k: form.get(k, "").strip() for k in TIME_FIELDS})
    loc = l10n.user_locale(request)

    def act():
        try:
            project = ctx.get(Project, int(state.values["project_id"]))
        except ValueError:
            raise ValidationFailed("project_id: choose a project") from None
        hours = l10n.parse_decimal(state.values["hours"], loc, "hours")
        entry = records.log_time(ctx.db, ctx.company, project, ctx.user, work_date=_day(state.values["work_date"],
                                                                                        "work_date"),
                                 hours=hours, cost_rate_minor=0, billable=bool(state.values["billable"]),
                                 description=state.values["description"])
        ctx.track("time_logged")
        return entry

    entry, error = attempt(ctx.db, act)
    if error:
        try:
            start = _monday(date.fromisoformat(state.values["work_date"]))
        except ValueError:
            start = _monday(today())
        week = _week(ctx, start, ctx.principal.user_id, state.fail(error, TIME_FIELDS))
        return render(request, "company/timesheet.html", ctx=ctx, status=422, **week)
    return go(f"{base(ctx)}/time/week", "time_logged", start=_monday(entry.work_date).isoformat())


@router.post("/time/{entry_id}/delete")
def delete_time(request: Request, entry_id: RowId, ctx: Ctx = Depends(company_ctx("time:write"))):
    entry = ctx.get(TimeEntry, entry_id)
    if entry.user_id != ctx.principal.user_id and not allowed(ctx.principal.role, "time:write_others"):
        raise HTTPException(403, f"your role ({ctx.principal.role}) may change only your own time entries")
    return act(ctx.db, lambda: records.delete_time_entry(ctx.db, ctx.company, entry),
               f"{base(ctx)}/time", "time_deleted")


# -- expenses ----------------------------------------------------------------------------------------------

EXPENSE_FIELDS = ("category", "amount", "currency", "incurred_on", "vendor", "project_id", "billable")


@router.get("/expenses")
def expenses(request: Request, ctx: Ctx = Depends(company_ctx("expenses:read"))):
    f = Filters(request)
    category, project_id = f.choice("category", EXPENSE_ACCOUNTS), f.integer("project_id")
    billable, date_from, date_to = f.flag("billable"), f.day("from"), f.day("to")
    stmt = where_deleted(ctx.scoped.select(Expense), Expense, f.choice("deleted", DELETED))
    stmt = where_given(stmt, (category, lambda: Expense.category == category),
                       (project_id, lambda: Expense.project_id == project_id),
                       (billable, lambda: Expense.billable.is_(bool(billable))),
                       (date_from, lambda: Expense.incurred_on >= date_from),
                       (date_to, lambda: Expense.incurred_on <= date_to))
    view = list_page(request, ctx.db, stmt, Expense, f, sorts=["incurred_on", "amount_minor", "created_at", "id"],
                     default="-incurred_on")
    billed = billing.billed_status(ctx.db, ctx.company.id, [e.id for e in view.rows], "expense_id")
    return render(request, "company/expenses.html", ctx=ctx, view=view, categories=list(EXPENSE_ACCOUNTS),
                  projects=project_options(ctx), names=dict(project_options(ctx)), billed=billed)


@router.get("/expenses/new")
def new_expense(request: Request, ctx: Ctx = Depends(company_ctx("expenses:write"))):
    values = {"currency": ctx.company.base_currency, "incurred_on": today().isoformat(), "category": "other"}
    return render(request, "company/expense_form.html", ctx=ctx, form=FormState(values=values),
                  categories=list(EXPENSE_ACCOUNTS), projects=project_options(ctx))


@router.post("/expenses/new")
def create_expense(request: Request, form: dict = Depends(form_data),
                   ctx: Ctx = Depends(company_ctx("expenses:write"))):
    state = FormState(values={k: form.get(k, "").strip() for k in EXPENSE_FIELDS})
    loc = l10n.user_locale(request)

    def act():
        currency = (state.values["currency"] or ctx.company.base_currency).upper()
        project = ctx.get(Project, int(state.values["project_id"])) if state.values["project_id"] else None
        expense = records.record_expense(
            ctx.db, ctx.company, category=state.values["category"], currency=currency,
            amount_minor=l10n.parse_money(state.values["amount"], currency, loc, "amount"),
            incurred_on=_day(state.values["incurred_on"], "incurred_on"), vendor=state.values["vendor"],
            project=project, billable=bool(state.values["billable"]))
        ctx.track("expense_recorded")
        return expense

    _, error = attempt(ctx.db, act)
    if error:
        return render(request, "company/expense_form.html", ctx=ctx, form=state.fail(error, EXPENSE_FIELDS),
                      categories=list(EXPENSE_ACCOUNTS), projects=project_options(ctx), status=422)
    return go(f"{base(ctx)}/expenses", "expense_recorded")


@router.post("/expenses/{expense_id}/delete")
def delete_expense(request: Request, expense_id: RowId, ctx: Ctx = Depends(company_ctx("expenses:write"))):
    expense = ctx.get(Expense, expense_id)
    return act(ctx.db, lambda: records.delete_expense(ctx.db, ctx.company, expense),
               f"{base(ctx)}/expenses", "expense_deleted")
