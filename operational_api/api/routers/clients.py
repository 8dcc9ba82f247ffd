"""Clients: list (filter, sort, cursor), create, read, change, soft delete, restore; the client's credit."""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from fastapi import Depends, Query
from pydantic import BaseModel, ConfigDict

from operational_api.api.deps import Ctx, RowId, company_ctx, company_router
from operational_api.api.listing import Cursor, Limit, paginate, sort_query
from operational_api.api.schemas import Page, Text, Timestamp, money
from operational_api.db.models import Client
from operational_api.services import payments, records
from operational_api.services.errors import ValidationFailed

router = company_router("clients", "clients")
Deleted = Literal["exclude", "include", "only"]
DELETED_QUERY = Query("exclude", description="Soft-deleted rows: exclude (default), include, or only")


class ClientIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"name": "Acme Robotics", "email": "ap@acme.example.org", "currency": "USD"}]})
    name: Text(200, 1)
    email: Text(254) = ""
    currency: Text(3, 3) | None = None
    stripe_customer_id: Text(60, 1) | None = None


class ClientPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"name": "Acme Robotics Ltd"}]})
    name: Text(200, 1) | None = None
    email: Text(254) | None = None
    currency: Text(3, 3) | None = None
    stripe_customer_id: Text(60, 1) | None = None


class ClientOut(BaseModel):
    id: int
    name: str
    email: str
    currency: str
    stripe_customer_id: str | None
    created_at: Timestamp
    updated_at: Timestamp
    created_by_id: int | None
    updated_by_id: int | None
    deleted_at: Timestamp | None


class CreditOut(BaseModel):
    client_id: int
    credit: dict[str, Decimal]


def out(c: Client) -> ClientOut:
    return ClientOut.model_validate(c, from_attributes=True)


def filter_deleted(stmt, model, deleted: str):
    if deleted == "exclude":
        return stmt.where(model.deleted_at.is_(None))
    if deleted == "only":
        return stmt.where(model.deleted_at.is_not(None))
    return stmt


@router.get("", response_model=Page[ClientOut], summary="List clients")
def list_clients(ctx: Ctx = Depends(company_ctx("clients:read")), limit: Limit = 50, cursor: Cursor = None,
                 sort: str = sort_query(["id", "name", "created_at", "updated_at"], "name"),
                 q: Text(200) | None = Query(None, description="Name contains (case-insensitive)"),
                 currency: Text(3) | None = None, deleted: Deleted = DELETED_QUERY):
    stmt = filter_deleted(ctx.scoped.select(Client), Client, deleted)
    if q:
        stmt = stmt.where(Client.name.ilike(f"%{q}%"))
    if currency:
        stmt = stmt.where(Client.currency == currency.upper())
    rows, nxt = paginate(ctx.db, stmt, Client, sort=sort, cursor=cursor, limit=limit)
    return Page[ClientOut](items=[out(c) for c in rows], next_cursor=nxt)


@router.post("", response_model=ClientOut, status_code=201, summary="Create a client")
def create_client(body: ClientIn, ctx: Ctx = Depends(company_ctx("clients:write"))):
    client = records.create_client(ctx.db, ctx.company, **body.model_dump())
    ctx.track("client_created")
    return out(client)


@router.get("/{client_id}", response_model=ClientOut, summary="A client (also when soft-deleted)")
def get_client(client_id: RowId, ctx: Ctx = Depends(company_ctx("clients:read"))):
    return out(ctx.get(Client, client_id))


@router.patch("/{client_id}", response_model=ClientOut, summary="Change a client")
def update_client(client_id: RowId, body: ClientPatch, ctx: Ctx = Depends(company_ctx("clients:write"))):
    changes = body.model_dump(exclude_unset=True)
    if any(changes.get(k) is None for k in ("name", "email", "currency") if k in changes):
        raise ValidationFailed("name, email and currency cannot be null")
    return out(records.update_client(ctx.db, ctx.company, ctx.get(Client, client_id), **changes))


@router.delete("/{client_id}", response_model=ClientOut, summary="Soft-delete a client (restorable)")
def delete_client(client_id: RowId, ctx: Ctx = Depends(company_ctx("clients:write"))):
    return out(records.delete_client(ctx.db, ctx.company, ctx.get(Client, client_id)))


@router.post("/{client_id}/restore", response_model=ClientOut, summary="Restore a soft-deleted client")
def restore_client(client_id: RowId, ctx: Ctx = Depends(company_ctx("clients:write"))):
    return out(records.restore_client(ctx.db, ctx.company, ctx.get(Client, client_id)))


@router.get("/{client_id}/credit", response_model=CreditOut, summary="The client's unapplied credit per currency")
def client_credit(client_id: RowId, ctx: Ctx = Depends(company_ctx("payments:read"))):
    client = ctx.get(Client, client_id)
    credit = payments.client_credit(ctx.db, ctx.company, client)
    return CreditOut(client_id=client.id, credit={cur: money(v, cur) for cur, v in credit.items()})
