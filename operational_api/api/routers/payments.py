"""Payments: manual (bank, cash, card) or Stripe-linked; allocation to invoices; client credit; refunds."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Literal

from fastapi import Depends, Query, Response
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy import bindparam
from sqlalchemy.orm import Session

from operational_api.api import pages
from operational_api.api.deps import Ctx, RowId, company_ctx, company_router
from operational_api.api.fast_json import json_page, utc
from operational_api.api.listing import CompanyList, Cursor, Limit, paginate, sort_query
from operational_api.api.reads import PageReader, page_reader
from operational_api.api.schemas import Amount, BusinessDate, Page, Text, Timestamp, money, to_minor
from operational_api.db.models import Client, Invoice, Payment, Refund
from operational_api.services import payments

router = company_router("payments", "payments")
Method = Literal["bank", "cash", "card", "stripe"]


class AllocationIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    invoice_id: int
    amount: Amount


class PaymentIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"client_id": 1, "method": "bank", "amount": "1200.00", "received_on": "2026-04-10",
         "reference": "BANK-2026-0410-001", "allocations": [{"invoice_id": 7, "amount": "1000.00"}]},
        {"client_id": 2, "method": "stripe", "amount": "450.00", "received_on": "2026-04-11",
         "stripe_payment_intent_id": "pi_123", "stripe_charge_id": "ch_123",
         "allocations": [{"invoice_id": 9, "amount": "450.00"}]}]})
    client_id: int
    method: Method
    currency: Text(3, 3) | None = Field(None, description="Default: the client's currency")
    amount: Amount
    received_on: BusinessDate
    reference: Text(100) = ""
    allocations: list[AllocationIn] = Field(default_factory=list, max_length=200,
                                            description="Unallocated money becomes the client's credit")
    stripe_payment_intent_id: Text(60, 1) | None = None
    stripe_charge_id: Text(60, 1) | None = None


class ApplyCreditIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"allocations": [{"invoice_id": 8, "amount": "200.00"}], "applied_on": "2026-04-20"}]})
    allocations: list[AllocationIn] = Field(min_length=1, max_length=200)
    applied_on: BusinessDate | None = Field(None, description="Default: today (UTC)")


class RefundIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"amount": "200.00", "refunded_on": "2026-04-22", "reason": "Overpayment returned"}]})
    amount: Amount
    refunded_on: BusinessDate | None = Field(None, description="Default: today (UTC)")
    reason: Text(300) = ""
    stripe_refund_id: Text(60, 1) | None = None


class AllocationOut(BaseModel):
    id: int
    invoice_id: int
    amount: Decimal
    refund_id: int | None


class RefundOut(BaseModel):
    id: int
    payment_id: int
    currency: str
    amount: Decimal
    refunded_on: date
    reason: str
    stripe_refund_id: str | None
    created_at: Timestamp
    created_by_id: int | None


class PaymentOut(BaseModel):
    id: int
    client_id: int
    method: str
    currency: str
    amount: Decimal
    allocated: Decimal
    refunded: Decimal
    unapplied_credit: Decimal
    received_on: date
    reference: str
    stripe_payment_intent_id: str | None
    stripe_charge_id: str | None
    allocations: list[AllocationOut]
    created_at: Timestamp
    created_by_id: int | None


def refund_out(r: Refund) -> RefundOut:
    return RefundOut(id=r.id, payment_id=r.payment_id, currency=r.currency, amount=money(r.amount_minor, r.currency),
                     refunded_on=r.refunded_on, reason=r.reason, stripe_refund_id=r.stripe_refund_id,
                     created_at=r.created_at, created_by_id=r.created_by_id)


def payment_out(p, allocations, refunded_minor: int, at=lambda t: t) -> dict:
    """A payment with its allocations, as the API shows it (FastAPI validates it against `PaymentOut`; a list page
    writes it with `fast_json`, `at` then puts the time in UTC)."""
    cur = p.currency
    allocated = sum(a.amount_minor for a in allocations)
    return {
        "id": p.id, "client_id": p.client_id, "method": p.method, "currency": cur,
        "amount": money(p.amount_minor, cur), "allocated": money(allocated, cur),
        "refunded": money(refunded_minor, cur),
        "unapplied_credit": money(p.amount_minor - allocated - refunded_minor, cur),
        "received_on": p.received_on, "reference": p.reference,
        "stripe_payment_intent_id": p.stripe_payment_intent_id, "stripe_charge_id": p.stripe_charge_id,
        "allocations": [{"id": a.id, "invoice_id": a.invoice_id, "amount": money(a.amount_minor, cur),
                         "refund_id": a.refund_id} for a in allocations],
        "created_at": at(p.created_at), "created_by_id": p.created_by_id,
    }


def page_out(db: Session, company_id: int, rows: list, at=lambda t: t) -> list[dict]:
    """Payments with their allocations and refunds: two queries for the whole page."""
    ids = [p.id for p in rows]
    allocations = pages.payment_allocations(db, company_id, ids)
    refunded = pages.refunded(db, company_id, ids)
    return [payment_out(p, allocations.get(p.id, ()), refunded.get(p.id, 0), at) for p in rows]


def out(ctx: Ctx, p: Payment) -> dict:
    ctx.db.flush()  # after a write: the allocations just added are read by a plain select (no autoflush)
    return page_out(ctx.db, ctx.company.id, [p])[0]


def _today() -> date:
    return datetime.now(UTC).date()


def _allocations(ctx: Ctx, items: list[AllocationIn], currency: str) -> list[payments.Allocation]:
    return [payments.Allocation(ctx.get(Invoice, a.invoice_id),
                                to_minor(a.amount, currency, ("allocations", i, "amount")))
            for i, a in enumerate(items)]


@router.get("", response_model=Page[PaymentOut], summary="List payments")
async def list_payments(reader: PageReader = Depends(page_reader("payments:read")), limit: Limit = 50,
                        cursor: Cursor = None,
                        sort: str = sort_query(["id", "received_on", "amount_minor", "created_at"], "-received_on"),
                        client_id: int | None = Query(None, ge=1, le=2**31 - 1), method: Method | None = None,
                        currency: Text(3) | None = None, date_from: date | None = Query(None, alias="from"),
                        date_to: date | None = Query(None, alias="to"),
                        stripe_charge_id: Text(60) | None = None):
    filters = {"client_id": client_id, "method": method, "currency": currency.upper() if currency else None,
               "date_from": date_from, "date_to": date_to, "stripe_charge_id": stripe_charge_id}

    def page(db, principal) -> Response:
        rows, nxt = _LIST.page(db, principal.company_id, sort=sort, cursor=cursor, limit=limit, filters=filters)
        return json_page({"items": page_out(db, principal.company_id, rows, utc), "next_cursor": nxt})

    return await reader.run(page)


# What a listed payment shows, read as plain rows (no ORM object per payment for a read-only page)
_LIST = CompanyList(Payment, (
    "id", "client_id", "method", "currency", "amount_minor", "received_on", "reference", "stripe_payment_intent_id",
    "stripe_charge_id", "created_at", "created_by_id"), {
    "client_id": Payment.client_id == bindparam("client_id"),
    "method": Payment.method == bindparam("method"),
    "currency": Payment.currency == bindparam("currency"),
    "date_from": Payment.received_on >= bindparam("date_from"),
    "date_to": Payment.received_on <= bindparam("date_to"),
    "stripe_charge_id": Payment.stripe_charge_id == bindparam("stripe_charge_id"),
})


@router.post("", response_model=PaymentOut, status_code=201, summary="Record a payment and allocate it")
def record_payment(body: PaymentIn, ctx: Ctx = Depends(company_ctx("payments:write"))):
    client = ctx.get(Client, body.client_id)
    currency = (body.currency or client.currency).upper()
    payment = payments.record_payment(
        ctx.db, ctx.company, client, method=body.method, currency=currency,
        amount_minor=to_minor(body.amount, currency, ("amount",)), received_on=body.received_on,
        allocations=_allocations(ctx, body.allocations, currency), reference=body.reference,
        stripe_payment_intent_id=body.stripe_payment_intent_id, stripe_charge_id=body.stripe_charge_id)
    ctx.track("payment_recorded", method=body.method)
    # a payment recorded in this request: its allocations are the rows just added and nothing is refunded yet,
    # so the answer needs no read back (two queries of the write path)
    added = ctx.db.info.get(payments.NEW_ALLOCATIONS, {}).get(payment.id, [])
    return payment_out(payment, sorted(added, key=lambda a: a.id), 0)


@router.get("/{payment_id}", response_model=PaymentOut, summary="A payment with its allocations")
def get_payment(payment_id: RowId, ctx: Ctx = Depends(company_ctx("payments:read"))):
    return out(ctx, ctx.get(Payment, payment_id))


@router.post("/{payment_id}/allocations", response_model=PaymentOut,
             summary="Apply a payment's unapplied credit to invoices of the same client")
def apply_credit(payment_id: RowId, body: ApplyCreditIn, ctx: Ctx = Depends(company_ctx("payments:write"))):
    payment = ctx.get(Payment, payment_id)
    payments.apply_credit(ctx.db, ctx.company, payment, _allocations(ctx, body.allocations, payment.currency),
                          body.applied_on or _today())
    return out(ctx, payment)


@router.get("/{payment_id}/refunds", response_model=Page[RefundOut], summary="Refunds of a payment")
def list_refunds(payment_id: RowId, ctx: Ctx = Depends(company_ctx("payments:read")), limit: Limit = 50,
                 cursor: Cursor = None, sort: str = sort_query(["id", "refunded_on"], "id")):
    payment = ctx.get(Payment, payment_id)
    stmt = ctx.scoped.select(Refund).where(Refund.payment_id == payment.id)
    rows, nxt = paginate(ctx.db, stmt, Refund, sort=sort, cursor=cursor, limit=limit)
    return Page[RefundOut](items=[refund_out(r) for r in rows], next_cursor=nxt)


@router.post("/{payment_id}/refunds", response_model=RefundOut, status_code=201,
             summary="Refund (part of) a payment: unapplied credit first, then the latest invoice allocations")
def refund_payment(payment_id: RowId, body: RefundIn, ctx: Ctx = Depends(company_ctx("payments:refund"))):
    payment = ctx.get(Payment, payment_id)
    refund = payments.record_refund(ctx.db, ctx.company, payment,
                                    amount_minor=to_minor(body.amount, payment.currency, ("amount",)),
                                    refunded_on=body.refunded_on or _today(), reason=body.reason,
                                    stripe_refund_id=body.stripe_refund_id)
    ctx.track("refund_recorded")
    return refund_out(refund)
