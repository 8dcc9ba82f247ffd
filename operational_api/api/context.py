"""Who is asking, for which company, with which right: the one enforced place for tenancy and roles.

Every company-scoped route takes `company_id` in its path and depends on `require(permission)`.
A caller who is not a member of that company gets 404 (the company's existence is not disclosed);
a member whose role lacks the permission gets 403.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Path, Request
from sqlalchemy import select
from sqlalchemy.orm import Session

from operational_api.db.models import Membership, User
from operational_api.permissions import allowed
from operational_api.security.tokens import resolve_token


@dataclass(frozen=True)
class Identity:
    """An authenticated caller, before any company is chosen."""

    user_id: int
    via: str  # "token" or "session"
    token_company_id: int | None = None  # a token works for its own company only
    token_role: str | None = None
    session_id: str | None = None


@dataclass(frozen=True)
class Principal:
    user_id: int
    company_id: int
    role: str
    via: str
    session_id: str | None = None


Authenticator = Callable[[Request, Session], Identity | None]


def get_db(request: Request) -> Iterator[Session]:
    """One session per request: committed when the route returns, rolled back when it raises."""
    session: Session = request.app.state.sessionmaker()
    try:
        yield session
        session.commit()
    except BaseException:
        session.rollback()
        raise
    finally:
        session.close()


def bearer_token(request: Request, db: Session) -> Identity | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value:
        return None
    token = resolve_token(db, value.strip())
    if token is None:
        return None
    return Identity(user_id=token.user_id, via="token", token_company_id=token.company_id, token_role=token.role)


def authenticate(request: Request, db: Session = Depends(get_db)) -> Identity:
    """Try each installed authenticator (bearer tokens; sessions are added by the security layer)."""
    for authenticator in request.app.state.authenticators:
        identity = authenticator(request, db)
        if identity is not None:
            user = db.get(User, identity.user_id)
            if user is None or not user.is_active:
                break
            return identity
    raise HTTPException(401, "authentication required: a valid API token or session",
                        headers={"WWW-Authenticate": "Bearer"})


def company_principal(company_id: int = Path(..., ge=1), identity: Identity = Depends(authenticate),
                      db: Session = Depends(get_db)) -> Principal:
    not_found = HTTPException(404, f"company {company_id} not found")
    if identity.token_company_id is not None and identity.token_company_id != company_id:
        raise not_found
    membership = db.scalar(select(Membership).where(Membership.company_id == company_id,
                                                    Membership.user_id == identity.user_id))
    if membership is None:
        raise not_found
    role = identity.token_role or membership.role
    return Principal(identity.user_id, company_id, role, identity.via, identity.session_id)


def require(permission: str) -> Callable[..., Principal]:
    allowed("owner", permission)  # fails at import time for a permission missing from the matrix

    def dependency(principal: Principal = Depends(company_principal)) -> Principal:
        if not allowed(principal.role, permission):
            raise HTTPException(403, f"your role ({principal.role}) may not {permission.replace(':', ' ')}")
        return principal

    dependency.permission = permission  # read by the permission-matrix test
    return dependency
