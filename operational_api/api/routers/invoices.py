"""Invoices and credit notes. Drafts are edited freely; sending numbers the invoice (gapless per company) and
posts it; from then on the invoice and its lines are immutable (409) and corrections are credit notes."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal

from fastapi import BackgroundTasks, Depends, Query, Request, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import bindparam

from operational_api.api import pages
from operational_api.api.deps import Ctx, RowId, company_ctx, company_router
from operational_api.api.fast_json import json_page, utc
from operational_api.api.listing import CompanyList, Cursor, Limit, paginate, sort_query
from operational_api.api.reads import PageReader, page_reader
from operational_api.api.routers.auth import send_soon
from operational_api.api.routers.clients import DELETED_QUERY, Deleted
from operational_api.api.schemas import Amount, BusinessDate, Page, Text, Timestamp, money, money_formatter, to_minor
from operational_api.db.models import Client, CreditNote, Invoice, Project
from operational_api.services import billing, invoicing

router = company_router("invoices", "invoices")
notes_router = company_router("credit-notes", "invoices")
Status = Literal["draft", "sent", "partially_paid", "paid", "void"]
Percent = Field(ge=0, le=100, max_digits=5, decimal_places=2)


class LineIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    description: Text(500) = ""
    quantity: Decimal = Field(gt=0, le=Decimal("99999999.9999"), max_digits=12, decimal_places=4, examples=["2.5"])
    unit_price: Amount
    discount_percent: Decimal = Field(Decimal(0), ge=0, le=100, max_digits=5, decimal_places=2)
    tax_rate_percent: Decimal = Field(Decimal(0), ge=0, le=100, max_digits=5, decimal_places=2)


class InvoiceIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "client_id": 1, "project_id": 1, "due_date": "2026-04-30", "notes": "Thank you for your business",
        "lines": [{"description": "Consulting, March 2026", "quantity": "12.5", "unit_price": "150.00",
                   "tax_rate_percent": "19"},
                  {"description": "Workshop", "quantity": "1", "unit_price": "900.00", "discount_percent": "10"}]}]})
    client_id: int
    project_id: int | None = None
    currency: Text(3, 3) | None = None
    due_date: BusinessDate | None = None
    notes: Text(1000) = ""
    lines: list[LineIn] = Field(min_length=1, max_length=200)


class InvoicePatch(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "due_date": "2026-05-15", "lines": [{"description": "Consulting", "quantity": "10", "unit_price": "150"}]}]})
    project_id: int | None = None
    due_date: BusinessDate | None = None
    notes: Text(1000) | None = None
    lines: list[LineIn] | None = Field(None, min_length=1, max_length=200)


class SendIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"issue_date": "2026-03-31"}]})
    issue_date: BusinessDate | None = Field(None, description="Default: today (UTC)")


class CreditNoteIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"amount": "100.00", "reason": "Discount agreed after delivery", "issue_date": "2026-04-02"},
        {"reason": "Cancelled: void the whole invoice"}]})
    amount: Amount | None = Field(None, description="Default: the whole amount due (voids an unpaid invoice)")
    reason: Text(300) = ""
    issue_date: BusinessDate | None = Field(None, description="Default: today (UTC)")


class LineOut(BaseModel):
    position: int
    description: str
    quantity: Decimal
    unit_price: Decimal
    discount_percent: Decimal
    tax_rate_percent: Decimal
    net: Decimal
    tax: Decimal


class InvoiceOut(BaseModel):
    id: int
    number: str | None
    status: str
    client_id: int
    project_id: int | None
    currency: str
    issue_date: date | None
    due_date: date | None
    subtotal: Decimal
    tax: Decimal
    total: Decimal
    amount_paid: Decimal
    credited: Decimal
    amount_due: Decimal
    is_overdue: bool
    days_overdue: int
    notes: str
    sent_at: Timestamp | None
    lines: list[LineOut]
    created_at: Timestamp
    updated_at: Timestamp
    created_by_id: int | None
    updated_by_id: int | None
    deleted_at: Timestamp | None


class CreditNoteOut(BaseModel):
    id: int
    number: str
    invoice_id: int
    client_id: int
    currency: str
    issue_date: date
    reason: str
    net: Decimal
    tax: Decimal
    total: Decimal
    created_at: Timestamp
    created_by_id: int | None


def _today() -> date:
    return datetime.now(UTC).date()


def invoice_out(inv, lines, today: date, at=lambda t: t) -> dict:
    """An invoice and its lines as the API shows them; FastAPI validates the dict against `InvoiceOut` and
    writes the JSON in one pass (a list page writes it with `fast_json`, `at` then puts the times in UTC)."""
    cur = inv.currency
    overdue = invoicing.is_overdue(inv, today)
    return {
        "id": inv.id, "number": inv.number, "status": inv.status, "client_id": inv.client_id,
        "project_id": inv.project_id, "currency": cur, "issue_date": inv.issue_date, "due_date": inv.due_date,
        "subtotal": money(inv.subtotal_minor, cur), "tax": money(inv.tax_minor, cur),
        "total": money(inv.total_minor, cur), "amount_paid": money(inv.amount_paid_minor, cur),
        "credited": money(inv.credited_minor, cur), "amount_due": money(invoicing.amount_due(inv), cur),
        "is_overdue": overdue, "days_overdue": (today - inv.due_date).days if overdue else 0, "notes": inv.notes,
        "sent_at": at(inv.sent_at), "created_at": at(inv.created_at), "updated_at": at(inv.updated_at),
        "created_by_id": inv.created_by_id, "updated_by_id": inv.updated_by_id, "deleted_at": at(inv.deleted_at),
        "lines": [{"position": ln.position, "description": ln.description, "quantity": ln.quantity,
                   "unit_price": money(ln.unit_price_minor, cur), "discount_percent": ln.discount_percent,
                   "tax_rate_percent": ln.tax_rate_percent, "net": money(ln.net_minor, cur),
                   "tax": money(ln.tax_minor, cur)} for ln in lines],
    }


def out(ctx: Ctx, inv: Invoice) -> dict:
    """One invoice with its lines (one query for the lines)."""
    ctx.db.flush()  # after a write: the lines just added are read by a plain select, which does not autoflush
    lines = pages.invoice_lines(ctx.db, ctx.company.id, [inv.id]).get(inv.id, [])
    return invoice_out(inv, lines, _today())


def note_out(n: CreditNote) -> CreditNoteOut:
    return CreditNoteOut(id=n.id, number=n.number, invoice_id=n.invoice_id, client_id=n.client_id, currency=n.currency,
                         issue_date=n.issue_date, reason=n.reason, net=money(n.net_minor, n.currency),
                         tax=money(n.tax_minor, n.currency), total=money(n.total_minor, n.currency),
                         created_at=n.created_at, created_by_id=n.created_by_id)


def _lines(lines: list[LineIn], currency: str) -> list[invoicing.LineInput]:
    return [invoicing.LineInput(ln.description, ln.quantity,
                                to_minor(ln.unit_price, currency, ("lines", i, "unit_price"), allow_zero=True),
                                tax_rate_percent=ln.tax_rate_percent, discount_percent=ln.discount_percent)
            for i, ln in enumerate(lines)]


@router.get("", response_model=Page[InvoiceOut], summary="List invoices")
async def list_invoices(reader: PageReader = Depends(page_reader("invoices:read")), limit: Limit = 50,
                        cursor: Cursor = None,
                        sort: str = sort_query(["id", "created_at", "updated_at", "total_minor", "status"],
                                               "-created_at"),
                        status: Status | None = None, client_id: int | None = Query(None, ge=1, le=2**31 - 1),
                        project_id: int | None = Query(None, ge=1, le=2**31 - 1), currency: Text(3) | None = None,
                        overdue: bool | None = Query(None, description="Only (or never) invoices past their due date"),
                        issued_from: date | None = None, issued_to: date | None = None,
                        deleted: Deleted = DELETED_QUERY):
    filters = {"status": status, "client_id": client_id, "project_id": project_id,
               "currency": currency.upper() if currency else None, "issued_from": issued_from,
               "issued_to": issued_to, "overdue": True if overdue else None, "not_overdue": overdue is False or None,
               "not_deleted": deleted == "exclude" or None, "deleted_only": deleted == "only" or None}
    today = _today()

    def page(db, principal) -> Response:
        rows, nxt = _LIST.page(db, principal.company_id, sort=sort, cursor=cursor, limit=limit, filters=filters,
                               today=today)
        lines = pages.listed_invoice_lines(db, principal.company_id, [r[0] for r in rows])
        return json_page({"items": listed_invoices(rows, lines, today), "next_cursor": nxt})

    return await reader.run(page)


_OVERDUE = Invoice.status.in_(invoicing.OPEN_STATES) & (Invoice.due_date < bindparam("today"))
# What a listed invoice shows, read as plain rows: no ORM object per invoice for a read-only page
_LIST = CompanyList(Invoice, (
    "id", "number", "status", "client_id", "project_id", "currency", "issue_date", "due_date", "subtotal_minor",
    "tax_minor", "total_minor", "amount_paid_minor", "credited_minor", "notes", "sent_at", "created_at",
    "updated_at", "created_by_id", "updated_by_id", "deleted_at"), {
    "status": Invoice.status == bindparam("status"),
    "client_id": Invoice.client_id == bindparam("client_id"),
    "project_id": Invoice.project_id == bindparam("project_id"),
    "currency": Invoice.currency == bindparam("currency"),
    "issued_from": Invoice.issue_date >= bindparam("issued_from"),
    "issued_to": Invoice.issue_date <= bindparam("issued_to"),
    "overdue": _OVERDUE, "not_overdue": ~_OVERDUE,
    "not_deleted": Invoice.deleted_at.is_(None), "deleted_only": Invoice.deleted_at.is_not(None),
})


def listed_invoices(rows, lines, today: date) -> list[dict]:
    """`invoice_out` of a page of `_LIST` rows and their `pages.LINE_FIELDS` lines, written for speed: the
    dicts of a 50-invoice page were a third of the request's CPU (tuples unpacked, amounts formatted as the
    text they are written as). tests/test_api_records.py checks each listed invoice against `invoice_out`."""
    by_invoice: dict[int, list[dict]] = {}
    for invoice_id, position, description, quantity, unit_price, discount, tax_rate, net, tax in lines:
        by_invoice.setdefault(invoice_id, []).append((position, description, quantity, unit_price, discount,
                                                      tax_rate, net, tax))
    items = []
    for (id_, number, status, client_id, project_id, cur, issue_date, due_date, subtotal, tax, total, paid,
         credited, notes, sent_at, created_at, updated_at, created_by_id, updated_by_id, deleted_at) in rows:
        overdue = status in invoicing.OPEN_STATES and due_date is not None and due_date < today
        text = money_formatter(cur)
        items.append({
            "id": id_, "number": number, "status": status, "client_id": client_id, "project_id": project_id,
            "currency": cur, "issue_date": issue_date, "due_date": due_date, "subtotal": text(subtotal),
            "tax": text(tax), "total": text(total), "amount_paid": text(paid), "credited": text(credited),
            "amount_due": text(total - paid - credited), "is_overdue": overdue,
            "days_overdue": (today - due_date).days if overdue else 0, "notes": notes, "sent_at": utc(sent_at),
            "created_at": utc(created_at), "updated_at": utc(updated_at), "created_by_id": created_by_id,
            "updated_by_id": updated_by_id, "deleted_at": utc(deleted_at),
            "lines": [{"position": position, "description": description, "quantity": quantity,
                       "unit_price": text(unit_price), "discount_percent": discount, "tax_rate_percent": tax_rate,
                       "net": text(net), "tax": text(line_tax)}
                      for position, description, quantity, unit_price, discount, tax_rate, net, line_tax
                      in by_invoice.get(id_, ())],
        })
    return items


@router.post("", response_model=InvoiceOut, status_code=201, summary="Create a draft invoice (totals computed "
                                                                      "server-side)")
def create_invoice(body: InvoiceIn, ctx: Ctx = Depends(company_ctx("invoices:write"))):
    client = ctx.get(Client, body.client_id)
    project = ctx.get(Project, body.project_id) if body.project_id else None
    currency = (body.currency or client.currency).upper()
    invoice = invoicing.create_invoice(ctx.db, ctx.company, client, _lines(body.lines, currency), currency=currency,
                                       project=project, due_date=body.due_date, notes=body.notes)
    ctx.track("invoice_created")
    return out(ctx, invoice)


@router.get("/{invoice_id}", response_model=InvoiceOut, summary="An invoice with its lines")
def get_invoice(invoice_id: RowId, ctx: Ctx = Depends(company_ctx("invoices:read"))):
    return out(ctx, ctx.get(Invoice, invoice_id))


@router.patch("/{invoice_id}", response_model=InvoiceOut, summary="Change a draft (a sent invoice answers 409)")
def update_invoice(invoice_id: RowId, body: InvoicePatch, ctx: Ctx = Depends(company_ctx("invoices:write"))):
    invoice = ctx.get(Invoice, invoice_id)
    invoicing.update_draft(ctx.db, ctx.company, invoice)  # 409 for a sent invoice before anything else
    changes = body.model_dump(exclude_unset=True)
    kwargs = {}
    if "due_date" in changes:
        kwargs["due_date"] = body.due_date
    if "project_id" in changes:
        kwargs["project"] = ctx.get(Project, body.project_id) if body.project_id else None
    if body.notes is not None:
        kwargs["notes"] = body.notes
    if body.lines is not None:
        kwargs["lines"] = _lines(body.lines, invoice.currency)
    return out(ctx, invoicing.update_draft(ctx.db, ctx.company, invoice, **kwargs))


@router.delete("/{invoice_id}", response_model=InvoiceOut, summary="Delete a draft (soft; a sent invoice answers "
                                                                   "409: credit it instead)")
def delete_invoice(invoice_id: RowId, ctx: Ctx = Depends(company_ctx("invoices:write"))):
    # its billed time and expenses are given back, as on the invoice page
    return out(ctx, billing.delete_draft(ctx.db, ctx.company, ctx.get(Invoice, invoice_id)))


@router.post("/{invoice_id}/restore", response_model=InvoiceOut, summary="Restore a deleted draft")
def restore_invoice(invoice_id: RowId, ctx: Ctx = Depends(company_ctx("invoices:write"))):
    return out(ctx, invoicing.restore_draft(ctx.db, ctx.company, ctx.get(Invoice, invoice_id)))


@router.post("/{invoice_id}/send", response_model=InvoiceOut, summary="Send a draft: number it and post it")
def send_invoice(invoice_id: RowId, request: Request, background: BackgroundTasks, body: SendIn | None = None,
                 ctx: Ctx = Depends(company_ctx("invoices:send"))):
    issue_date = (body.issue_date if body else None) or _today()
    invoice = ctx.get(Invoice, invoice_id)
    outbox_id = billing.send_and_mail(ctx.db, ctx.company, invoice, issue_date,
                                      public_base_url=request.app.state.settings.public_base_url)
    ctx.track("invoice_sent")
    answer = out(ctx, invoice)
    ctx.db.commit()  # the mail is delivered right after the answer, so its outbox row must be there first
    send_soon(request, background, [outbox_id] if outbox_id is not None else [])
    return answer


@router.post("/{invoice_id}/credit-notes", response_model=CreditNoteOut, status_code=201,
             summary="Credit a sent invoice (the whole amount due voids an unpaid invoice)")
def credit_invoice(invoice_id: RowId, body: CreditNoteIn, ctx: Ctx = Depends(company_ctx("invoices:write"))):
    invoice = ctx.get(Invoice, invoice_id)
    amount = None if body.amount is None else to_minor(body.amount, invoice.currency, ("amount",))
    note = invoicing.issue_credit_note(ctx.db, ctx.company, invoice, issue_date=body.issue_date or _today(),
                                       amount_minor=amount, reason=body.reason)
    ctx.track("credit_note_issued")
    return note_out(note)


@notes_router.get("", response_model=Page[CreditNoteOut], summary="List credit notes")
def list_credit_notes(ctx: Ctx = Depends(company_ctx("invoices:read")), limit: Limit = 50, cursor: Cursor = None,
                      sort: str = sort_query(["id", "issue_date", "created_at"], "-id"),
                      invoice_id: int | None = Query(None, ge=1, le=2**31 - 1)):
    stmt = ctx.scoped.select(CreditNote)
    if invoice_id:
        stmt = stmt.where(CreditNote.invoice_id == invoice_id)
    rows, nxt = paginate(ctx.db, stmt, CreditNote, sort=sort, cursor=cursor, limit=limit)
    return Page[CreditNoteOut](items=[note_out(n) for n in rows], next_cursor=nxt)


@notes_router.get("/{credit_note_id}", response_model=CreditNoteOut, summary="A credit note")
def get_credit_note(credit_note_id: RowId, ctx: Ctx = Depends(company_ctx("invoices:read"))):
    return note_out(ctx.get(CreditNote, credit_note_id))
