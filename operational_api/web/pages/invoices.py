"""Invoices: list, draft with lines and a live totals preview (the server's own line rules, sent back as a
fragment by htmx or by a plain "Preview totals" button), drafting from unbilled work, send (mailed with its
PDF and a link), credit notes, printable view and PDF. A sent invoice is immutable: an edit shows the
service's refusal."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal

from fastapi import BackgroundTasks, Depends, HTTPException, Request, Response
from sqlalchemy import select

from operational_api.api.deps import Ctx, RowId, company_ctx
from operational_api.api.listing import where_given
from operational_api.api.routers.auth import send_soon
from operational_api.db.models import Client, CreditNote, Invoice, Payment, PaymentAllocation, Project
from operational_api.services import billing, invoicing
from operational_api.services.errors import DomainError, ValidationFailed
from operational_api.services.invoice_pdf import render_pdf
from operational_api.web import l10n
from operational_api.web.actions import attempt, company_pages
from operational_api.web.forms import FormState, form_data, form_lists
from operational_api.web.lists import Filters, list_page
from operational_api.web.pages.records import client_options, where_deleted
from operational_api.web.rendering import go, render

router = company_pages("/invoices")
STATUSES = ("draft", "sent", "partially_paid", "paid", "void")
LINE_KEYS = ("description", "quantity", "unit_price", "tax_rate", "discount")
BLANK_LINES = 2


def today() -> date:
    return datetime.now(UTC).date()


def base(ctx: Ctx) -> str:
    return f"/app/c/{ctx.company.id}/invoices"


@dataclass
class LineRow:
    """One line as typed, and what the server's rules make of it."""

    values: dict[str, str]
    net: int | None = None
    tax: int | None = None
    error: str | None = None


@dataclass
class Draft:
    lines: list[LineRow]
    currency: str
    parsed: list[invoicing.LineInput]

    @property
    def subtotal(self) -> int:
        return sum(r.net or 0 for r in self.lines)

    @property
    def tax(self) -> int:
        return sum(r.tax or 0 for r in self.lines)

    @property
    def total(self) -> int:
        return self.subtotal + self.tax

    @property
    def errors(self) -> list[str]:
        return [f"line {i}: {r.error}" for i, r in enumerate(self.lines, start=1) if r.error]


def read_lines(lists: dict[str, list[str]], currency: str, request: Request) -> Draft:
    loc = l10n.user_locale(request)
    columns = [lists.get(f"line_{k}", []) for k in LINE_KEYS]
    rows, parsed = [], []
    for cells in zip(*columns, strict=False):
        values = dict(zip(LINE_KEYS, (c.strip() for c in cells), strict=True))
        if not any(values[k] for k in ("description", "quantity", "unit_price")):
            continue
        row = LineRow(values)
        try:
            line = invoicing.LineInput(
                values["description"], l10n.parse_decimal(values["quantity"] or "1", loc, "quantity"),
                l10n.parse_money(values["unit_price"], currency, loc, "unit price", allow_zero=True),
                tax_rate_percent=Decimal(values["tax_rate"] or "0"),
                discount_percent=l10n.parse_decimal(values["discount"] or "0", loc, "discount"))
            row.net, row.tax = invoicing.line_amounts(line)  # the server's rounding rules, per line
            parsed.append(line)
        except DomainError as exc:
            row.error = exc.detail
        except ArithmeticError:
            row.error = "tax rate: choose one of the company's rates"
        rows.append(row)
    return Draft(rows, currency, parsed)


def rows_of(ctx: Ctx, invoice: Invoice, request: Request) -> list[LineRow]:
    loc = l10n.user_locale(request)
    return [LineRow({"description": ln.description, "quantity": l10n.decimal_text(ln.quantity, loc),
                     "unit_price": l10n.amount(ln.unit_price_minor, invoice.currency, loc),
                     "tax_rate": f"{Decimal(ln.tax_rate_percent).normalize():f}",
                     "discount": l10n.decimal_text(ln.discount_percent, loc) if ln.discount_percent else ""},
                    ln.net_minor, ln.tax_minor) for ln in invoicing.lines_of(ctx.db, invoice)]


def tax_options(ctx: Ctx, rows: list[LineRow]) -> list[tuple[str, str]]:
    options = [(f"{Decimal(r.rate_percent).normalize():f}", f"{r.name} ({Decimal(r.rate_percent).normalize():f}%)")
               for r in billing.tax_rates(ctx.db, ctx.company)] or [("0", "No tax (0%)")]
    known = {v for v, _ in options}
    for row in rows:
        rate = row.values.get("tax_rate") or "0"
        if rate not in known:
            options.append((rate, f"{rate}%"))
            known.add(rate)
    return options


def _editor(request: Request, ctx: Ctx, *, invoice: Invoice | None, form: FormState, draft_rows: list[LineRow],
            currency: str, status: int = 200, extra_blank: int = BLANK_LINES, draft: Draft | None = None):
    default_rate = f"{billing.default_tax_percent(ctx.db, ctx.company).normalize():f}"
    blanks = [LineRow({"description": "", "quantity": "", "unit_price": "", "tax_rate": default_rate,
                       "discount": ""}) for _ in range(extra_blank)]
    rows = draft_rows + blanks
    totals = draft or Draft(draft_rows, currency, [])
    return render(request, "company/invoice_form.html", ctx=ctx, invoice=invoice, form=form, rows=rows,
                  totals=totals, currency=currency, clients=client_options(ctx), taxes=tax_options(ctx, rows),
                  status=status, projects=_projects(ctx, invoice))


def _projects(ctx: Ctx, invoice: Invoice | None) -> list[tuple[int, str]]:
    stmt = ctx.scoped.select(Project).where(Project.deleted_at.is_(None)).order_by(Project.name).limit(500)
    if invoice is not None:
        stmt = stmt.where(Project.client_id == invoice.client_id)
    return [(p.id, p.name) for p in ctx.db.scalars(stmt)]


# -- list --------------------------------------------------------------------------------------------------

@router.get("")
def invoices(request: Request, ctx: Ctx = Depends(company_ctx("invoices:read"))):
    f = Filters(request)
    status, client_id, overdue = f.choice("status", STATUSES), f.integer("client_id"), f.flag("overdue")
    issued_from, issued_to = f.day("from"), f.day("to")
    stmt = where_deleted(ctx.scoped.select(Invoice), Invoice, f.choice("deleted", ("exclude", "include", "only")))
    late = Invoice.status.in_(invoicing.OPEN_STATES) & (Invoice.due_date < today())
    stmt = where_given(stmt, (status, lambda: Invoice.status == status),
                       (client_id, lambda: Invoice.client_id == client_id),
                       (overdue, lambda: late if overdue else ~late),
                       (issued_from, lambda: Invoice.issue_date >= issued_from),
                       (issued_to, lambda: Invoice.issue_date <= issued_to))
    view = list_page(request, ctx.db, stmt, Invoice, f, sorts=["created_at", "total_minor", "status", "id"],
                     default="-created_at")
    ids = {i.client_id for i in view.rows}
    names = dict(ctx.db.execute(select(Client.id, Client.name).where(Client.id.in_(ids))).all()) if ids else {}
    return render(request, "company/invoices.html", ctx=ctx, view=view, names=names, statuses=STATUSES,
                  clients=client_options(ctx), today=today())


# -- new draft ---------------------------------------------------------------------------------------------

@router.get("/new")
def new_invoice(request: Request, ctx: Ctx = Depends(company_ctx("invoices:write"))):
    client_id = request.query_params.get("client_id", "")
    currency = ctx.company.base_currency
    if client_id.isdigit():
        client = ctx.db.scalar(ctx.scoped.select(Client).where(Client.id == int(client_id)))
        currency = client.currency if client else currency
    form = FormState(values={"client_id": client_id, "due_date": "", "notes": ""})
    return _editor(request, ctx, invoice=None, form=form, draft_rows=[], currency=currency, extra_blank=3)


def _client(ctx: Ctx, value: str) -> Client:
    if not value.isdigit():
        raise ValidationFailed("client_id: choose a client")
    return ctx.get(Client, int(value))


def _due(value: str) -> date | None:
    if not value:
        return None
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise ValidationFailed("due_date: enter a date") from None


@router.post("/preview")
def preview(request: Request, lists: dict = Depends(form_lists), ctx: Ctx = Depends(company_ctx("invoices:write"))):
    """The totals of the lines being typed, by the server's rules (an htmx fragment)."""
    currency = ctx.company.base_currency
    client_id = (lists.get("client_id") or [""])[0]
    invoice_id = (lists.get("invoice_id") or [""])[0]
    if invoice_id.isdigit():
        currency = ctx.get(Invoice, int(invoice_id)).currency
    elif client_id.isdigit():
        currency = ctx.get(Client, int(client_id)).currency
    draft = read_lines(lists, currency, request)
    return render(request, "company/_totals.html", ctx=ctx, totals=draft, currency=currency)


@router.post("/new")
def create_invoice(request: Request, lists: dict = Depends(form_lists),
                   ctx: Ctx = Depends(company_ctx("invoices:write"))):
    first = {k: (v[0] if v else "") for k, v in lists.items()}
    state = FormState(values={k: first.get(k, "").strip() for k in ("client_id", "due_date", "notes", "project_id")})
    try:
        client = _client(ctx, state.values["client_id"])
        currency = client.currency
    except DomainError as exc:
        client, currency = None, ctx.company.base_currency
        state.fail(exc, ("client_id",))
    draft = read_lines(lists, currency, request)
    action = first.get("action", "save")
    if action != "save" or client is None or draft.errors or not draft.parsed:
        if action == "save" and not draft.errors and not draft.parsed and client is not None:
            state.error = "an invoice needs at least one line: fill in a description, a quantity and a price"
        elif action == "save" and draft.errors:
            state.error = "; ".join(draft.errors)
        return _editor(request, ctx, invoice=None, form=state, draft_rows=draft.lines, currency=currency,
                       extra_blank=BLANK_LINES + (1 if action == "add_line" else 0), draft=draft,
                       status=200 if action != "save" else 422)

    def act():
        project = ctx.get(Project, int(state.values["project_id"])) if state.values["project_id"].isdigit() else None
        invoice = invoicing.create_invoice(ctx.db, ctx.company, client, draft.parsed, project=project,
                                           due_date=_due(state.values["due_date"]), notes=state.values["notes"])
        ctx.track("invoice_created")
        return invoice

    invoice, error = attempt(ctx.db, act)
    if error:
        return _editor(request, ctx, invoice=None, form=state.fail(error, ("client_id", "due_date", "notes")),
                       draft_rows=draft.lines, currency=currency, draft=draft, status=422)
    return go(f"{base(ctx)}/{invoice.id}", "invoice_created")


@router.post("/from-work")
def from_work(request: Request, form: dict = Depends(form_data), ctx: Ctx = Depends(company_ctx("invoices:write"))):
    def act():
        invoice = billing.draft_from_work(ctx.db, ctx.company, _client(ctx, form.get("client_id", "")))
        ctx.track("invoice_created", source="work")
        return invoice

    invoice, error = attempt(ctx.db, act)
    if error:
        raise HTTPException(error.status, error.detail)
    return go(f"{base(ctx)}/{invoice.id}", "invoice_from_work")


# -- one invoice -------------------------------------------------------------------------------------------

def _detail(request: Request, ctx: Ctx, invoice: Invoice, *, error: str | None = None, status: int = 200,
            credit_form: FormState | None = None):
    client = ctx.get(Client, invoice.client_id)
    allocations = ctx.db.execute(
        select(PaymentAllocation, Payment).join(Payment, Payment.id == PaymentAllocation.payment_id)
        .where(PaymentAllocation.invoice_id == invoice.id).order_by(PaymentAllocation.id)).all()
    notes = ctx.db.scalars(select(CreditNote).where(CreditNote.invoice_id == invoice.id).order_by(CreditNote.id)).all()
    work = billing.billed_on(ctx.db, invoice)
    return render(request, "company/invoice.html", ctx=ctx, invoice=invoice, client=client,
                  lines=invoicing.lines_of(ctx.db, invoice), allocations=allocations, credit_notes=notes, work=work,
                  due=invoicing.amount_due(invoice), overdue=invoicing.is_overdue(invoice, today()), error=error,
                  status=status, credit_form=credit_form or FormState())


@router.get("/{invoice_id}")
def invoice_page(request: Request, invoice_id: RowId, ctx: Ctx = Depends(company_ctx("invoices:read"))):
    return _detail(request, ctx, ctx.get(Invoice, invoice_id))


@router.get("/{invoice_id}/edit")
def edit_page(request: Request, invoice_id: RowId, ctx: Ctx = Depends(company_ctx("invoices:write"))):
    invoice = ctx.get(Invoice, invoice_id)
    _, error = attempt(ctx.db, lambda: invoicing.update_draft(ctx.db, ctx.company, invoice))  # refused once sent
    if error:
        return _detail(request, ctx, ctx.get(Invoice, invoice_id), error=error.detail, status=error.status)
    form = FormState(values={"client_id": str(invoice.client_id), "notes": invoice.notes,
                             "due_date": invoice.due_date.isoformat() if invoice.due_date else "",
                             "project_id": str(invoice.project_id or "")})
    return _editor(request, ctx, invoice=invoice, form=form, draft_rows=rows_of(ctx, invoice, request),
                   currency=invoice.currency)


@router.post("/{invoice_id}/edit")
def save_draft(request: Request, invoice_id: RowId, lists: dict = Depends(form_lists),
               ctx: Ctx = Depends(company_ctx("invoices:write"))):
    invoice = ctx.get(Invoice, invoice_id)
    _, refused = attempt(ctx.db, lambda: invoicing.update_draft(ctx.db, ctx.company, invoice))
    if refused:  # a sent invoice: the service's reason, said plainly
        return _detail(request, ctx, ctx.get(Invoice, invoice_id), error=refused.detail, status=refused.status)
    first = {k: (v[0] if v else "") for k, v in lists.items()}
    state = FormState(values={k: first.get(k, "").strip() for k in ("due_date", "notes", "project_id")})
    state.values["client_id"] = str(invoice.client_id)
    draft = read_lines(lists, invoice.currency, request)
    action = first.get("action", "save")
    if action != "save" or draft.errors or not draft.parsed:
        if action == "save":
            state.error = "; ".join(draft.errors) or "an invoice needs at least one line"
        return _editor(request, ctx, invoice=invoice, form=state, draft_rows=draft.lines, currency=invoice.currency,
                       extra_blank=BLANK_LINES + (1 if action == "add_line" else 0), draft=draft,
                       status=200 if action != "save" else 422)

    def act():
        project = ctx.get(Project, int(state.values["project_id"])) if state.values["project_id"].isdigit() else None
        return invoicing.update_draft(ctx.db, ctx.company, invoice, lines=draft.parsed, notes=state.values["notes"],
                                      due_date=_due(state.values["due_date"]), project=project)

    _, error = attempt(ctx.db, act)
    if error:
        invoice = ctx.get(Invoice, invoice_id)
        return _editor(request, ctx, invoice=invoice, form=state.fail(error, ("due_date", "notes")),
                       draft_rows=draft.lines, currency=invoice.currency, draft=draft, status=error.status)
    return go(f"{base(ctx)}/{invoice_id}", "invoice_saved")


@router.post("/{invoice_id}/send")
def send(request: Request, invoice_id: RowId, background: BackgroundTasks,
         ctx: Ctx = Depends(company_ctx("invoices:send"))):
    invoice = ctx.get(Invoice, invoice_id)
    settings = request.app.state.settings

    def act():
        outbox_id = billing.send_and_mail(ctx.db, ctx.company, invoice, today(),
                                          public_base_url=settings.public_base_url)
        ctx.track("invoice_sent")
        return outbox_id

    outbox_id, error = attempt(ctx.db, act)
    if error:
        return _detail(request, ctx, ctx.get(Invoice, invoice_id), error=error.detail, status=error.status)
    ctx.db.commit()  # the mail is delivered right after the answer, so its row must be there first
    if outbox_id is not None:
        send_soon(request, background, [outbox_id])
    return go(f"{base(ctx)}/{invoice_id}", "invoice_sent" if outbox_id else "invoice_sent_no_mail")


@router.post("/{invoice_id}/delete")
def delete(request: Request, invoice_id: RowId, ctx: Ctx = Depends(company_ctx("invoices:write"))):
    invoice = ctx.get(Invoice, invoice_id)

    def act():
        return billing.delete_draft(ctx.db, ctx.company, invoice)

    _, error = attempt(ctx.db, act)
    if error:
        return _detail(request, ctx, ctx.get(Invoice, invoice_id), error=error.detail, status=error.status)
    return go(base(ctx), "invoice_deleted")


@router.post("/{invoice_id}/credit-note")
def credit_note(request: Request, invoice_id: RowId, form: dict = Depends(form_data),
                ctx: Ctx = Depends(company_ctx("invoices:write"))):
    invoice = ctx.get(Invoice, invoice_id)
    state = FormState(values={"amount": form.get("amount", "").strip(), "reason": form.get("reason", "").strip()})

    def act():
        amount = (l10n.parse_money(state.values["amount"], invoice.currency, l10n.user_locale(request), "amount")
                  if state.values["amount"] else None)
        note = invoicing.issue_credit_note(ctx.db, ctx.company, invoice, issue_date=today(), amount_minor=amount,
                                           reason=state.values["reason"])
        ctx.track("credit_note_issued")
        return note

    _, error = attempt(ctx.db, act)
    if error:
        return _detail(request, ctx, ctx.get(Invoice, invoice_id), status=error.status,
                       credit_form=state.fail(error, ("amount", "reason")))
    return go(f"{base(ctx)}/{invoice_id}", "credit_note_issued")


@router.get("/{invoice_id}/print")
def printable(request: Request, invoice_id: RowId, ctx: Ctx = Depends(company_ctx("invoices:read"))):
    invoice = ctx.get(Invoice, invoice_id)
    return render(request, "company/invoice_print.html", ctx=ctx, invoice=invoice, client=ctx.get(Client,
                                                                                                   invoice.client_id),
                  lines=invoicing.lines_of(ctx.db, invoice), due=invoicing.amount_due(invoice), public=False)


@router.get("/{invoice_id}/pdf")
def pdf(invoice_id: RowId, ctx: Ctx = Depends(company_ctx("invoices:read"))):
    invoice = ctx.get(Invoice, invoice_id)
    name = invoice.number or f"draft-{invoice.id}"
    return Response(render_pdf(ctx.db, ctx.company, invoice), media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{name}.pdf"'})
