"""Payments: record (and allocate to the client's open invoices), apply a payment's unapplied credit, refund."""

from __future__ import annotations

from datetime import UTC, date, datetime

from fastapi import Depends, Request
from sqlalchemy import select

from operational_api.api.deps import Ctx, RowId, company_ctx
from operational_api.api.listing import where_given
from operational_api.db.models import Client, Invoice, Payment, PaymentAllocation, Refund
from operational_api.services import invoicing, payments
from operational_api.services.errors import DomainError, ValidationFailed
from operational_api.web import l10n
from operational_api.web.actions import attempt, company_pages
from operational_api.web.forms import FormState, form_lists
from operational_api.web.lists import Filters, list_page
from operational_api.web.pages.records import client_options
from operational_api.web.rendering import go, render

router = company_pages("/payments")
FIELDS = ("client_id", "method", "amount", "received_on", "reference")


def today() -> date:
    return datetime.now(UTC).date()


def base(ctx: Ctx) -> str:
    return f"/app/c/{ctx.company.id}/payments"


def open_invoices(ctx: Ctx, client_id: int, currency: str | None = None) -> list[Invoice]:
    stmt = ctx.scoped.select(Invoice).where(Invoice.client_id == client_id, Invoice.status.in_(invoicing.OPEN_STATES))
    if currency:
        stmt = stmt.where(Invoice.currency == currency)
    return list(ctx.db.scalars(stmt.order_by(Invoice.due_date, Invoice.id).limit(100)))


def read_allocations(ctx: Ctx, lists: dict, currency: str, request: Request) -> list[payments.Allocation]:
    loc = l10n.user_locale(request)
    out = []
    for invoice_id, text in zip(lists.get("alloc_invoice", []), lists.get("alloc_amount", []), strict=False):
        if text.strip() and invoice_id.isdigit():
            invoice = ctx.get(Invoice, int(invoice_id))
            out.append(payments.Allocation(invoice, l10n.parse_money(text, currency, loc,
                                                                     f"allocation to {invoice.number}")))
    return out


@router.get("")
def payment_list(request: Request, ctx: Ctx = Depends(company_ctx("payments:read"))):
    f = Filters(request)
    client_id, method = f.integer("client_id"), f.choice("method", payments.METHODS)
    date_from, date_to = f.day("from"), f.day("to")
    stmt = ctx.scoped.select(Payment)
    stmt = where_given(stmt, (client_id, lambda: Payment.client_id == client_id),
                       (method, lambda: Payment.method == method),
                       (date_from, lambda: Payment.received_on >= date_from),
                       (date_to, lambda: Payment.received_on <= date_to))
    view = list_page(request, ctx.db, stmt, Payment, f, sorts=["received_on", "amount_minor", "id"],
                     default="-received_on")
    return render(request, "company/payments.html", ctx=ctx, view=view, clients=client_options(ctx),
                  names=dict(client_options(ctx)), methods=payments.METHODS)


@router.get("/new")
def new_payment(request: Request, ctx: Ctx = Depends(company_ctx("payments:write"))):
    client_id = request.query_params.get("client_id", "")
    client = ctx.db.scalar(ctx.scoped.select(Client).where(Client.id == int(client_id))) \
        if client_id.isdigit() else None
    invoices = open_invoices(ctx, client.id, client.currency) if client else []
    wanted = request.query_params.get("invoice_id", "")
    loc = l10n.user_locale(request)
    allocs = {str(i.id): (l10n.amount(invoicing.amount_due(i), i.currency, loc) if str(i.id) == wanted or
                          len(invoices) == 1 else "") for i in invoices}
    amount = next((v for v in allocs.values() if v), "")
    values = {"client_id": client_id, "method": "bank", "received_on": today().isoformat(), "amount": amount}
    return render(request, "company/payment_form.html", ctx=ctx, form=FormState(values=values), client=client,
                  invoices=invoices, allocs=allocs, clients=client_options(ctx), methods=payments.METHODS)


@router.post("/new")
def record(request: Request, lists: dict = Depends(form_lists), ctx: Ctx = Depends(company_ctx("payments:write"))):
    first = {k: (v[0] if v else "") for k, v in lists.items()}
    state = FormState(values={k: first.get(k, "").strip() for k in FIELDS})
    client = ctx.db.scalar(ctx.scoped.select(Client).where(Client.id == int(state.values["client_id"]))) \
        if state.values["client_id"].isdigit() else None
    if client is not None and first.get("action") == "choose":
        return go(f"{base(ctx)}/new", client_id=client.id)

    def act():
        if client is None:
            raise ValidationFailed("client_id: choose a client")
        try:
            received = date.fromisoformat(state.values["received_on"])
        except ValueError:
            raise ValidationFailed("received_on: enter a date") from None
        loc = l10n.user_locale(request)
        payment = payments.record_payment(
            ctx.db, ctx.company, client, method=state.values["method"], currency=client.currency,
            amount_minor=l10n.parse_money(state.values["amount"], client.currency, loc, "amount"),
            received_on=received, reference=state.values["reference"],
            allocations=read_allocations(ctx, lists, client.currency, request))
        ctx.track("payment_recorded", method=state.values["method"])
        return payment

    payment, error = attempt(ctx.db, act)
    if error:
        invoices = open_invoices(ctx, client.id, client.currency) if client else []
        allocs = dict(zip(lists.get("alloc_invoice", []), lists.get("alloc_amount", []), strict=False))
        return render(request, "company/payment_form.html", ctx=ctx, form=state.fail(error, FIELDS), client=client,
                      invoices=invoices, allocs=allocs, clients=client_options(ctx), methods=payments.METHODS,
                      status=422)
    return go(f"{base(ctx)}/{payment.id}", "payment_recorded")


def _detail(request: Request, ctx: Ctx, payment: Payment, *, credit_form: FormState | None = None,
            refund_form: FormState | None = None, status: int = 200):
    rows = ctx.db.execute(select(PaymentAllocation, Invoice).join(Invoice, Invoice.id == PaymentAllocation.invoice_id)
                          .where(PaymentAllocation.payment_id == payment.id).order_by(PaymentAllocation.id)).all()
    refunds = ctx.db.scalars(select(Refund).where(Refund.payment_id == payment.id).order_by(Refund.id)).all()
    balance = payments.balance(ctx.db, payment)
    return render(request, "company/payment.html", ctx=ctx, payment=payment, client=ctx.get(Client, payment.client_id),
                  allocations=rows, refunds=refunds, balance=balance, status=status,
                  invoices=open_invoices(ctx, payment.client_id, payment.currency) if balance.unapplied_minor else [],
                  credit_form=credit_form or FormState(), refund_form=refund_form or FormState())


@router.get("/{payment_id}")
def payment_page(request: Request, payment_id: RowId, ctx: Ctx = Depends(company_ctx("payments:read"))):
    return _detail(request, ctx, ctx.get(Payment, payment_id))


@router.post("/{payment_id}/apply-credit")
def apply_credit(request: Request, payment_id: RowId, lists: dict = Depends(form_lists),
                 ctx: Ctx = Depends(company_ctx("payments:write"))):
    payment = ctx.get(Payment, payment_id)

    def act():
        allocations = read_allocations(ctx, lists, payment.currency, request)
        return payments.apply_credit(ctx.db, ctx.company, payment, allocations, today())

    _, error = attempt(ctx.db, act)
    if error:
        return _detail(request, ctx, ctx.get(Payment, payment_id), credit_form=FormState().fail(error),
                       status=error.status)
    return go(f"{base(ctx)}/{payment_id}", "credit_applied")


@router.post("/{payment_id}/refund")
def refund(request: Request, payment_id: RowId, lists: dict = Depends(form_lists),
           ctx: Ctx = Depends(company_ctx("payments:refund"))):
    payment = ctx.get(Payment, payment_id)
    state = FormState(values={k: (lists.get(k) or [""])[0].strip() for k in ("amount", "reason")})

    def act():
        amount = l10n.parse_money(state.values["amount"], payment.currency, l10n.user_locale(request), "amount")
        result = payments.record_refund(ctx.db, ctx.company, payment, amount_minor=amount, refunded_on=today(),
                                        reason=state.values["reason"])
        ctx.track("refund_recorded")
        return result

    _, error = attempt(ctx.db, act)
    if error:
        return _detail(request, ctx, ctx.get(Payment, payment_id), refund_form=state.fail(error, ("amount", "reason")),
                       status=error.status)
    return go(f"{base(ctx)}/{payment_id}", "refund_recorded")


__all__ = ["router", "DomainError"]
