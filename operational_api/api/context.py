"""Who is asking, for which company, with which right: the one enforced place for tenancy and roles.

Every company-scoped route takes `company_id` in its path and depends on `require(permission)`.
A caller who is not a member of that company gets 404 (the company's existence is not disclosed);
a member whose email is unverified, or whose role needs two-factor authentication that this session has
not passed, gets 403; a member whose role lacks the permission gets 403.

Callers authenticate with a bearer API token or with the server-side session cookie; a cookie-authenticated
state change must also carry the session's CSRF token (`operational_api.security.csrf`).
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass

from fastapi import Depends, HTTPException, Path, Request
from sqlalchemy import and_, bindparam, func, select
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from operational_api.db import audit_trail, locking
from operational_api.db.models import Company, Membership, User
from operational_api.db.security_models import CompanySecurityPolicy, UserSecurity, UserSession
from operational_api.permissions import allowed
from operational_api.security import csrf, sessions, totp
from operational_api.security.tokens import effective_role, resolve_token


@dataclass(frozen=True)
class Identity:
    """An authenticated caller, before any company is chosen."""

    user_id: int
    via: str  # "token" or "session"
    token_company_id: int | None = None  # a token works for its own company only
    token_role: str | None = None
    session_id: int | None = None
    mfa: bool = False  # this session passed the second factor


@dataclass(frozen=True)
class Principal:
    user_id: int
    company_id: int
    role: str
    via: str
    session_id: int | None = None


Authenticator = Callable[[Request, Session], Identity | None]


async def get_db(request: Request) -> AsyncIterator[Session]:
    """One session per request, committed when the route function returns and BEFORE the response is sent.

    FastAPI runs the exit code of a request-scoped dependency with `yield` after the response went out, so a
    commit there could fail after the client already read 201. The commit is therefore pushed onto FastAPI's
    function-scoped exit stack (the one `Depends(..., scope="function")` uses): it runs as soon as the route
    function returns, before the response is serialised and sent. A commit that fails (a deferred constraint
    trigger, a serialization failure, a lost connection) rolls back and answers an RFC 9457 problem document
    (`operational_api.db.locking.commit_failure`): nothing is stored and no success is claimed. Whatever is
    still open after the response (nothing, on the normal path) is rolled back, never committed.

    An async generator (issue 8): opening a session does no I/O, so only the closing step goes to a worker thread,
    where a sync dependency costs a thread hop on the way in and another on the way out.
    """
    session = open_session(request)
    function_stack = request.scope.get("fastapi_function_astack")
    if function_stack is not None:
        function_stack.push_async_exit(_commit_before_response(session))
    try:
        yield session
        if function_stack is None:  # not called through a FastAPI route (no function scope): commit here
            await run_in_threadpool(commit_or_problem, session)
    finally:  # never commits after the response: what is still open is rolled back (I/O: in a worker thread)
        if session.in_transaction():
            await run_in_threadpool(_end, session)
        else:
            session.close()  # committed: no connection held, nothing to send


def open_session(request: Request) -> Session:
    """A database session for one request, sealing what it writes with the app's own audit keys (EZ360_AUDIT_KEY)."""
    session: Session = request.app.state.sessionmaker()
    audit_keys = getattr(request.app.state, "audit_keys", None)
    if audit_keys is None:
        audit_keys = request.app.state.audit_keys = audit_trail.keys_from(request.app.state.settings)
    session.info[audit_trail.KEYS_INFO] = audit_keys
    return session


def _end(session: Session) -> None:
    try:
        session.rollback()
    finally:
        session.close()


def commit_or_problem(session: Session) -> None:
    try:
        session.commit()
    except DBAPIError as exc:
        session.rollback()
        raise locking.commit_failure(exc) from exc


def _commit_before_response(session: Session):
    async def exit_(exc_type, _exc, _tb) -> bool:
        if exc_type is None:
            await run_in_threadpool(commit_or_problem, session)
        else:
            await run_in_threadpool(session.rollback)
        return False  # an exception from the route propagates unchanged

    return exit_


def bearer_token(request: Request, db: Session) -> Identity | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value:
        return None
    token = resolve_token(db, value.strip())
    if token is None:
        return None
    return Identity(user_id=token.user_id, via="token", token_company_id=token.company_id, token_role=token.role)


def _live_session(request: Request, db: Session, *, allow_pending: bool = False) -> UserSession | None:
    settings = request.app.state.settings
    row = sessions.resolve(db, request.cookies.get(settings.session_cookie_name), sessions.Timeouts.of(settings),
                           allow_pending=allow_pending)
    if row is None:
        return None
    csrf.check_token(request, row)
    if not row.mfa_pending and sessions.touch(db, row):
        db.commit()  # the idle deadline moves now, whatever the route does next
    return row


def session_cookie(request: Request, db: Session) -> Identity | None:
    """The server-side session named by the cookie (CSRF token required for state changes)."""
    row = _live_session(request, db)
    if row is None:
        return None
    return Identity(user_id=row.user_id, via="session", session_id=row.id, mfa=row.mfa_verified)


def current_session(request: Request, db: Session = Depends(get_db)) -> UserSession:
    """Account routes: a signed-in browser session (not an API token)."""
    row = _live_session(request, db)
    if row is None:
        raise HTTPException(401, "sign in first: this needs a session")
    return row


def pending_session(request: Request, db: Session = Depends(get_db)) -> UserSession:
    """The half-finished sign-in waiting for its second factor."""
    row = _live_session(request, db, allow_pending=True)
    if row is None or not row.mfa_pending:
        raise HTTPException(401, "sign in with your password first")
    return row


def authenticate(request: Request, db: Session = Depends(get_db)) -> Identity:
    """Try each installed authenticator (bearer tokens, then the session cookie)."""
    for authenticator in request.app.state.authenticators:
        identity = authenticator(request, db)
        if identity is not None:
            user = db.get(User, identity.user_id)
            if user is None or not user.is_active:
                break
            return identity
    raise HTTPException(401, "authentication required: a valid API token or session",
                        headers={"WWW-Authenticate": "Bearer"})


def company_principal(request: Request, company_id: int = Path(..., ge=1),
                      db: Session = Depends(get_db)) -> Principal:
    # authenticate() called here, not as a dependency of its own: one worker-thread hop for both (issue 8)
    identity = authenticate(request, db)
    not_found = HTTPException(404, f"company {company_id} not found")
    if identity.token_company_id is not None and identity.token_company_id != company_id:
        raise not_found
    found = db.execute(_MEMBERSHIP, {"company_id": company_id, "user_id": identity.user_id}).first()
    if found is None:
        raise not_found
    member_role, enrolled, policy_roles, company = found
    sessions.keep_loaded(db, company)  # the request's Ctx.company: no second read
    user = db.get(User, identity.user_id)
    if user.email_verified_at is None:
        raise HTTPException(403, "verify your email address first (POST /api/v1/account/verification-email "
                                 "sends the link again)")
    role = effective_role(identity.token_role, member_role)  # a token never outranks its member
    if identity.via == "session":
        required = totp.ALWAYS_2FA | frozenset(policy_roles or ())  # as totp.required_roles
        if (enrolled or member_role in required) and not identity.mfa:
            if not enrolled:
                raise HTTPException(403, f"two-factor authentication is required for your role ({member_role})"
                                         " in this company: enrol at POST /api/v1/account/2fa/setup")
            raise HTTPException(403, "this session has not passed the second factor: sign in again")
    return Principal(identity.user_id, company_id, role, identity.via, identity.session_id)


def _membership_query():
    """The member's role, whether they enrolled in 2FA (as `totp.enabled`), the company's 2FA roles and the company
    itself: one round trip where four reads were."""
    enrolled = and_(UserSecurity.totp_enabled_at.is_not(None), UserSecurity.totp_secret.is_not(None))
    return (select(Membership.role, func.coalesce(enrolled, False), CompanySecurityPolicy.two_factor_roles, Company)
            .select_from(Membership).join(Company, Company.id == Membership.company_id)
            .outerjoin(UserSecurity, UserSecurity.user_id == Membership.user_id)
            .outerjoin(CompanySecurityPolicy, CompanySecurityPolicy.company_id == Membership.company_id)
            .where(Membership.company_id == bindparam("company_id"), Membership.user_id == bindparam("user_id")))


# Built once (its cache key is memoized on the object): building it per request cost 0.85 ms of CPU (issue 8)
_MEMBERSHIP = _membership_query()


def require(permission: str) -> Callable[..., Principal]:
    allowed("owner", permission)  # fails at import time for a permission missing from the matrix

    async def dependency(principal: Principal = Depends(company_principal)) -> Principal:  # no I/O: no thread
        return check_permission(principal, permission)

    dependency.permission = permission  # read by the permission-matrix test
    return dependency


def check_permission(principal: Principal, permission: str) -> Principal:
    if not allowed(principal.role, permission):
        raise HTTPException(403, f"your role ({principal.role}) may not {permission.replace(':', ' ')}")
    return principal
