"""API tokens of a company: create (shown once), list, revoke. Permission `tokens:manage`.

Tokens are created from a signed-in session only: a token cannot mint tokens (which would let a leaked
token outlive its own expiry and revocation)."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy.orm import Session

from operational_api.api.context import Principal, get_db, require
from operational_api.api.deps import RowId
from operational_api.api.listing import Cursor, Limit, paginate, sort_query
from operational_api.api.routers.auth import client_ip
from operational_api.api.schemas import Page, Text, Timestamp, example
from operational_api.db.models import ApiToken, Company, User
from operational_api.db.scoped import Scoped
from operational_api.security import audit
from operational_api.security.tokens import issue_token, revoke_token

router = APIRouter(prefix="/api/v1/companies/{company_id}/tokens", tags=["tokens"])


class ApiTokenIn(BaseModel):
    model_config = example(name="nightly export", role="viewer", expires_in_days=90)

    name: Text(100, 1)
    role: Text(20)
    expires_in_days: int = Field(90, ge=1, le=365)


class TokenOut(BaseModel):
    id: int
    name: str
    role: str
    display_prefix: str
    user_id: int
    created_at: Timestamp
    expires_at: Timestamp
    revoked_at: Timestamp | None
    last_used_at: Timestamp | None


class CreatedToken(TokenOut):
    token: str = Field(description="the secret, shown this once; store it now")


def _out(row: ApiToken) -> dict:
    return {k: getattr(row, k) for k in TokenOut.model_fields}


@router.post("", status_code=201, response_model=CreatedToken, summary="Create an API token (shown once)")
def create_token(body: ApiTokenIn, request: Request, principal: Principal = Depends(require("tokens:manage")),
                 db: Session = Depends(get_db)):
    if principal.via != "session":
        raise HTTPException(403, "API tokens cannot create API tokens: sign in to create one")
    company, user = db.get(Company, principal.company_id), db.get(User, principal.user_id)
    row, plaintext = issue_token(db, company, user, body.role, body.name, ttl=timedelta(days=body.expires_in_days))
    audit.record(db, "token_created", user_id=user.id, company_id=company.id, ip=client_ip(request),
                 token_id=row.id, role=row.role)
    return CreatedToken(**_out(row), token=plaintext)


@router.get("", response_model=Page[TokenOut], summary="The company's API tokens (never their secrets)")
def list_tokens(principal: Principal = Depends(require("tokens:manage")), db: Session = Depends(get_db),
                limit: Limit = 50, cursor: Cursor = None,
                sort: str = sort_query(["id", "created_at", "expires_at"], "id")):
    stmt = Scoped(db, principal.company_id).select(ApiToken)
    rows, nxt = paginate(db, stmt, ApiToken, sort=sort, cursor=cursor, limit=limit)
    return Page[TokenOut](items=[_out(r) for r in rows], next_cursor=nxt)


@router.delete("/{token_id}", status_code=204, summary="Revoke an API token at once")
def delete_token(token_id: RowId, request: Request, principal: Principal = Depends(require("tokens:manage")),
                 db: Session = Depends(get_db)):
    row = Scoped(db, principal.company_id).get(ApiToken, token_id)
    revoke_token(db, row)
    audit.record(db, "token_revoked", user_id=principal.user_id, company_id=principal.company_id,
                 ip=client_ip(request), token_id=row.id)
    return Response(status_code=204)
