"""Sign-up, sign-in (password, then the second factor), sign-out, email verification, password reset, and
each company's 2FA policy. Answers never reveal whether an address has an account."""

from __future__ import annotations

from datetime import timedelta

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request, Response
from pydantic import BaseModel, Field
from sqlalchemy import select
from sqlalchemy.orm import Session

from operational_api.api.context import Principal, current_session, get_db, pending_session, require
from operational_api.api.schemas import Text, example
from operational_api.db.models import Membership, User
from operational_api.db.security_models import CompanySecurityPolicy, UserSession
from operational_api.security import accounts, audit, csrf, mail, sessions, throttle, totp
from operational_api.security.client_address import client_address
from operational_api.services.companies import ROLES

router = APIRouter(tags=["auth"])
AUTH = "/api/v1/auth"


def client_ip(request: Request) -> str:
    """The client's address (X-Forwarded-For counts only from EZ360_TRUSTED_PROXIES: `client_address`)."""
    return client_address(request)


def send_soon(request: Request, background: BackgroundTasks, outbox_ids: list[int]) -> None:
    """Deliver these outbox rows right after the answer (the retry loop picks up failures)."""
    if outbox_ids:
        background.add_task(mail.deliver_due, request.app.state.sessionmaker, request.app.state.settings,
                            only=outbox_ids)


def throttled(retry_after: int) -> HTTPException:
    return HTTPException(429, f"too many attempts; try again in {retry_after} seconds",
                         headers={"Retry-After": str(retry_after)})


def fail_audited(db: Session, status: int, detail: str, event: str, **audit_fields) -> HTTPException:
    """Undo the request's writes, but keep the audit record of the failure."""
    db.rollback()
    audit.record(db, event, **audit_fields)
    db.commit()
    return HTTPException(status, detail)


class RegisterIn(BaseModel):
    model_config = example(email="ana@example.com", password="a long memorable passphrase", full_name="Ana Silva")

    email: Text(254)
    password: Text(1000)
    full_name: Text(200, 1)


class EmailLinkIn(BaseModel):
    model_config = example(token="the token from the emailed link")

    token: Text(200)


class LoginIn(BaseModel):
    model_config = example(email="ana@example.com", password="a long memorable passphrase")

    email: Text(254)
    password: Text(1000)


class SecondFactorIn(BaseModel):
    model_config = example(code="123456")

    code: Text(10) | None = None
    recovery_code: Text(40) | None = None


class ResetRequestIn(BaseModel):
    model_config = example(email="ana@example.com")

    email: Text(254)


class ResetConfirmIn(BaseModel):
    model_config = example(token="the token from the emailed link", new_password="a new long passphrase", code="123456")

    token: Text(200)
    new_password: Text(1000)
    code: Text(10) | None = None
    recovery_code: Text(40) | None = None


ACCEPTED = {"detail": "if the address can be used, a message is on its way to it"}


# Requests that send email are rationed so nobody can flood an inbox or our mail server through us:
# per addressee 3 in a row, then waits of 1 and 2 min, then an hour's pause; per client address 10, then 30.
MAIL_PER_ADDRESSEE = throttle.Limits(free_attempts=3, delay_seconds=60, lockout_threshold=6,
                                     lockout=timedelta(hours=1), window=timedelta(hours=1))
MAIL_PER_CLIENT = throttle.Limits(free_attempts=10, delay_seconds=10, lockout_threshold=30,
                                  lockout=timedelta(hours=1), window=timedelta(hours=1))


def ration_mail(request: Request, email: str) -> None:
    ip = client_ip(request)
    verdict = throttle.attempt(request.app.state.sessionmaker,
                               [(throttle.account_key("mail", email.strip().lower()), MAIL_PER_ADDRESSEE),
                                (throttle.account_key("mail-ip", ip), MAIL_PER_CLIENT)], ip=ip)
    if not verdict.allowed:
        raise throttled(verdict.retry_after)


@router.post(f"{AUTH}/register", status_code=202, summary="Create an account (a verification link is emailed)")
def register(body: RegisterIn, request: Request, background: BackgroundTasks, db: Session = Depends(get_db)):
    ration_mail(request, body.email)
    ids = accounts.register(db, request.app.state.settings, email=body.email, password=body.password,
                            full_name=body.full_name, ip=client_ip(request))
    db.commit()
    send_soon(request, background, ids)
    return ACCEPTED


@router.post(f"{AUTH}/verify-email", summary="Confirm an email address with the emailed link's token")
def verify_email(body: EmailLinkIn, request: Request, background: BackgroundTasks, db: Session = Depends(get_db)):
    user, ids = accounts.verify_email(db, body.token, ip=client_ip(request))
    if user is None:
        raise HTTPException(400, "this link is invalid, used or expired")
    email = user.email
    db.commit()
    send_soon(request, background, ids)
    return {"status": "verified", "email": email}


def _session_body(db: Session, row: UserSession, status: str = "ok") -> dict:
    user = db.get(User, row.user_id)
    enrolled = totp.enabled(db, user.id)
    memberships = db.scalars(select(Membership).where(Membership.user_id == user.id)).all()
    needs = any(m.role in totp.required_roles(db, m.company_id) for m in memberships)
    return {"status": status, "csrf_token": row.csrf_token, "user_id": user.id, "email": user.email,
            "email_verified": user.email_verified_at is not None,
            "two_factor": {"enabled": enrolled, "passed": row.mfa_verified,
                           "enrollment_required": needs and not enrolled}}


@router.post(f"{AUTH}/login", summary="Sign in with email and password")
def login(body: LoginIn, request: Request, response: Response):
    settings, sm = request.app.state.settings, request.app.state.sessionmaker
    result = accounts.login(sm, settings, email=body.email, password=body.password, ip=client_ip(request),
                            user_agent=request.headers.get("user-agent", ""))
    if result.status == "throttled":
        raise throttled(result.retry_after)
    if result.status != "ok" and result.status != "mfa_required":
        raise HTTPException(401, accounts.GENERIC_FAILURE)
    with sm() as db:
        previous = sessions.resolve(db, request.cookies.get(settings.session_cookie_name),
                                    sessions.Timeouts.of(settings), allow_pending=True)
        if previous is not None:  # a new id at sign-in: whatever session this browser had ends
            sessions.revoke(db, previous, "replaced_at_login")
            db.commit()
        sessions.set_cookie(response, settings, result.token)
        row = db.get(UserSession, result.session.id)
        if result.status == "mfa_required":
            return {"status": "mfa_required", "csrf_token": row.csrf_token}
        return _session_body(db, row)


@router.post(f"{AUTH}/login/second-factor", summary="Finish signing in with a TOTP code or a recovery code")
def second_factor(body: SecondFactorIn, request: Request, response: Response,
                  pending: UserSession = Depends(pending_session), db: Session = Depends(get_db)):
    settings = request.app.state.settings
    result = accounts.second_factor(db, request.app.state.sessionmaker, settings, pending, code=body.code,
                                    recovery_code=body.recovery_code, ip=client_ip(request))
    if result.status == "throttled":
        raise throttled(result.retry_after)
    if result.status != "ok":
        raise fail_audited(db, 401, "the code is incorrect or was already used", "mfa_failed",
                           user_id=pending.user_id, ip=client_ip(request))
    sessions.set_cookie(response, settings, result.token)
    return _session_body(db, result.session)


@router.post(f"{AUTH}/logout", status_code=204, summary="End this session (server-side)")
def logout(request: Request, db: Session = Depends(get_db)):
    settings = request.app.state.settings
    row = sessions.resolve(db, request.cookies.get(settings.session_cookie_name), sessions.Timeouts.of(settings),
                           allow_pending=True)
    response = Response(status_code=204)
    if row is not None:
        csrf.check_token(request, row)
        sessions.revoke(db, row, "logout")
        audit.record(db, "logout", user_id=row.user_id, ip=client_ip(request))
    sessions.clear_cookie(response, settings)
    return response


@router.get(f"{AUTH}/session", summary="This session: who, its CSRF token, its 2FA state and deadlines")
def current(request: Request, row: UserSession = Depends(current_session), db: Session = Depends(get_db)):
    timeouts = sessions.Timeouts.of(request.app.state.settings)
    body = _session_body(db, row)
    body["idle_expires_at"] = (sessions._aware(row.last_seen_at) + timeouts.idle).isoformat()
    body["expires_at"] = (sessions._aware(row.started_at) + timeouts.absolute).isoformat()
    return body


@router.post(f"{AUTH}/password-reset", status_code=202, summary="Email a password reset link")
def request_reset(body: ResetRequestIn, request: Request, background: BackgroundTasks,
                  db: Session = Depends(get_db)):
    ration_mail(request, body.email)
    ids = accounts.request_password_reset(db, request.app.state.settings, body.email, ip=client_ip(request))
    db.commit()
    send_soon(request, background, ids)
    return ACCEPTED


@router.post(f"{AUTH}/password-reset/confirm", summary="Choose a new password (the second factor is still asked)")
def confirm_reset(body: ResetConfirmIn, request: Request, background: BackgroundTasks,
                  db: Session = Depends(get_db)):
    result = accounts.reset_password(db, request.app.state.sessionmaker, request.app.state.settings,
                                     token=body.token, new_password=body.new_password, code=body.code,
                                     recovery_code=body.recovery_code, ip=client_ip(request))
    if result.status == "throttled":
        raise throttled(result.retry_after)
    if result.status != "ok" and result.extra.get("reason") == "link":
        raise HTTPException(400, "this link is invalid, used or expired")
    if result.status != "ok":
        raise fail_audited(db, 401, "two-factor authentication is enabled: a valid code or recovery code is needed",
                           "mfa_failed", user_id=result.user_id, ip=client_ip(request), during="password_reset")
    db.commit()
    send_soon(request, background, result.extra["outbox"])
    return {"status": "password_changed"}


class PolicyOut(BaseModel):
    two_factor_roles: list[str]
    always_two_factor: list[str] = sorted(totp.ALWAYS_2FA)


class PolicyIn(BaseModel):
    model_config = example(two_factor_roles=["finance"])

    two_factor_roles: list[str] = Field(max_length=5)


@router.get("/api/v1/companies/{company_id}/security-policy", response_model=PolicyOut, tags=["companies"],
            summary="Which roles must use two-factor authentication in this company")
def get_policy(principal: Principal = Depends(require("company:read")), db: Session = Depends(get_db)):
    return PolicyOut(two_factor_roles=sorted(totp.required_roles(db, principal.company_id)))


@router.put("/api/v1/companies/{company_id}/security-policy", response_model=PolicyOut, tags=["companies"],
            summary="Require two-factor authentication for more roles (owners and admins always need it)")
def put_policy(body: PolicyIn, request: Request, principal: Principal = Depends(require("company:update")),
               db: Session = Depends(get_db)):
    unknown = set(body.two_factor_roles) - set(ROLES)
    if unknown:
        raise HTTPException(422, f"unknown roles: {', '.join(sorted(unknown))}")
    policy = db.get(CompanySecurityPolicy, principal.company_id)
    if policy is None:
        policy = CompanySecurityPolicy(company_id=principal.company_id)
        db.add(policy)
    policy.two_factor_roles = sorted(set(body.two_factor_roles) - totp.ALWAYS_2FA)
    audit.record(db, "two_factor_policy_changed", user_id=principal.user_id, company_id=principal.company_id,
                 ip=client_ip(request), roles=policy.two_factor_roles)
    db.flush()
    return PolicyOut(two_factor_roles=sorted(totp.required_roles(db, principal.company_id)))

