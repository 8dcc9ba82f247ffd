"""The signed-in user's own account: sessions, password, email address, two-factor authentication, invitations
to companies and security events. Changes to the password, the email address or 2FA need full re-authentication
(password, plus the second factor when enabled) in the same request."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request, Response
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from operational_api.api.context import current_session, get_db
from operational_api.api.deps import RowId
from operational_api.api.listing import Cursor, Limit, paginate, sort_query
from operational_api.api.routers.auth import client_ip, fail_audited, send_soon, throttled
from operational_api.api.schemas import Page, Text, Timestamp, example
from operational_api.db.audit_trail import Actor, set_actor
from operational_api.db.models import Company, User, utcnow
from operational_api.db.security_models import Invitation, SecurityEvent, UserSession
from operational_api.security import accounts, audit, mail, passwords, sessions, totp
from operational_api.services import invitations, usage

router = APIRouter(prefix="/api/v1/account", tags=["account"])


class Reauth(BaseModel):
    model_config = example(password="your current password", code="123456")

    password: Text(1000)
    code: Text(10) | None = None
    recovery_code: Text(40) | None = None


class PasswordIn(BaseModel):
    model_config = example(current_password="old long passphrase", new_password="a new long passphrase", code="123456")

    current_password: Text(1000)
    new_password: Text(1000)
    code: Text(10) | None = None


class EmailIn(Reauth):
    model_config = example(password="your current password", code="123456", new_email="new@example.com")

    new_email: Text(254)


class CodeIn(BaseModel):
    model_config = example(code="123456")

    code: Text(10)


class SessionOut(BaseModel):
    id: int
    current: bool
    started_at: Timestamp
    last_seen_at: Timestamp
    ip_address: str
    user_agent: str


def _reauthenticate(request: Request, db: Session, row: UserSession, password: str, code: str | None,
                    recovery_code: str | None = None) -> User:
    user = db.get(User, row.user_id)
    result = accounts.reauthenticate(db, request.app.state.sessionmaker, request.app.state.settings, user,
                                     password=password, code=code, recovery_code=recovery_code,
                                     ip=client_ip(request))
    if result.status == "throttled":
        raise throttled(result.retry_after)
    if result.status != "ok":
        raise fail_audited(db, 403, "re-authentication failed: the password or the code is wrong",
                           "reauthentication_failed", user_id=user.id, ip=client_ip(request))
    return user


def _new_id(request: Request, response: Response, db: Session, row: UserSession, **changes) -> UserSession:
    new, token = sessions.rotate(db, row, **changes)
    sessions.set_cookie(response, request.app.state.settings, token)
    return new


@router.get("/sessions", response_model=list[SessionOut], summary="Your signed-in sessions")
def list_sessions(request: Request, row: UserSession = Depends(current_session), db: Session = Depends(get_db)):
    live = sessions.live_sessions(db, row.user_id, sessions.Timeouts.of(request.app.state.settings))
    return [SessionOut(id=s.id, current=s.id == row.id, started_at=s.started_at, last_seen_at=s.last_seen_at,
                       ip_address=s.ip_address, user_agent=s.user_agent) for s in live]


@router.delete("/sessions/{session_id}", status_code=204, summary="End one of your sessions")
def end_session(session_id: RowId, request: Request, row: UserSession = Depends(current_session),
                db: Session = Depends(get_db)):
    target = db.get(UserSession, session_id)
    if target is None or target.user_id != row.user_id or target.revoked_at is not None:
        raise HTTPException(404, f"session {session_id} not found")
    sessions.revoke(db, target, "ended_by_user")
    audit.record(db, "session_ended", user_id=row.user_id, ip=client_ip(request), ended_session_id=session_id)
    return Response(status_code=204)


@router.post("/sessions/revoke-others", summary="End every session of yours but this one")
def end_other_sessions(request: Request, row: UserSession = Depends(current_session),
                       db: Session = Depends(get_db)):
    count = sessions.revoke_all(db, row.user_id, "ended_by_user", except_id=row.id)
    audit.record(db, "other_sessions_ended", user_id=row.user_id, ip=client_ip(request), count=count)
    return {"ended": count}


@router.post("/password", summary="Change your password (ends your other sessions)")
def change_password(body: PasswordIn, request: Request, response: Response, background: BackgroundTasks,
                    row: UserSession = Depends(current_session), db: Session = Depends(get_db)):
    passwords.check(body.new_password, db.get(User, row.user_id).email)  # refuse before using up a code
    user = _reauthenticate(request, db, row, body.current_password, body.code)
    notice = accounts.set_password(db, user, body.new_password, reason="password_changed", ip=client_ip(request),
                                   keep_session_id=row.id)
    new = _new_id(request, response, db, row)
    db.commit()
    send_soon(request, background, [notice])
    return {"status": "password_changed", "csrf_token": new.csrf_token}


@router.post("/email", status_code=202, summary="Change your email address (confirmed from the new address)")
def change_email(body: EmailIn, request: Request, background: BackgroundTasks,
                 row: UserSession = Depends(current_session), db: Session = Depends(get_db)):
    user = _reauthenticate(request, db, row, body.password, body.code, body.recovery_code)
    ids = accounts.request_email_change(db, request.app.state.settings, user, body.new_email, ip=client_ip(request))
    db.commit()
    send_soon(request, background, ids)
    return {"detail": "confirm the change from the link sent to the new address"}


@router.post("/verification-email", status_code=202, summary="Send the email verification link again")
def resend_verification(request: Request, background: BackgroundTasks, row: UserSession = Depends(current_session),
                        db: Session = Depends(get_db)):
    user = db.get(User, row.user_id)
    if user.email_verified_at is not None:
        return {"detail": "your address is already verified"}
    ids = [accounts.send_verification(db, request.app.state.settings, user).id]
    db.commit()
    send_soon(request, background, ids)
    return {"detail": "a new link is on its way"}


@router.post("/2fa/setup", summary="Start TOTP enrollment: a new secret and its QR code")
def setup_two_factor(body: Reauth, request: Request, row: UserSession = Depends(current_session),
                     db: Session = Depends(get_db)):
    user = _reauthenticate(request, db, row, body.password, body.code, body.recovery_code)
    secret = totp.start_enrollment(db, user)
    uri = totp.provisioning_uri(secret, user.email)
    audit.record(db, "two_factor_enrollment_started", user_id=user.id, ip=client_ip(request))
    return {"secret": secret, "otpauth_uri": uri, "qr_svg": totp.qr_svg(uri),
            "qr_url": "/api/v1/account/2fa/setup/qr.svg", "next": "POST /api/v1/account/2fa/enable with a code"}


@router.get("/2fa/setup/qr.svg", summary="The QR code of the enrollment in progress (SVG)")
def setup_qr(row: UserSession = Depends(current_session), db: Session = Depends(get_db)):
    secret = totp.pending_secret(db, row.user_id)
    if secret is None:
        raise HTTPException(404, "no two-factor enrollment in progress")
    user = db.get(User, row.user_id)
    return Response(totp.qr_svg(totp.provisioning_uri(secret, user.email)),
                    media_type="image/svg+xml")


@router.post("/2fa/enable", summary="Confirm enrollment with a first code; returns 10 recovery codes, once")
def enable_two_factor(body: CodeIn, request: Request, response: Response, background: BackgroundTasks,
                      row: UserSession = Depends(current_session), db: Session = Depends(get_db)):
    user = db.get(User, row.user_id)
    codes = totp.confirm_enrollment(db, user, body.code)
    if codes is None:
        raise fail_audited(db, 400, "the code does not match the enrollment in progress",
                           "two_factor_enrollment_failed", user_id=user.id, ip=client_ip(request))
    sessions.revoke_all(db, user.id, "two_factor_enabled", except_id=row.id)
    new = _new_id(request, response, db, row, mfa_verified=True)
    audit.record(db, "two_factor_enabled", user_id=user.id, ip=client_ip(request))
    usage.record_for_user_companies(db, user.id, "two_factor_enabled", utcnow())
    notice = mail.enqueue(db, user.email, "Two-factor authentication is on",
                          "Two-factor authentication was turned on for your EZ360 account.").id
    db.commit()
    send_soon(request, background, [notice])
    return {"status": "enabled", "recovery_codes": codes, "csrf_token": new.csrf_token}


@router.post("/2fa/disable", summary="Turn TOTP off (owners and admins then lose company access until re-enrolled)")
def disable_two_factor(body: Reauth, request: Request, response: Response, background: BackgroundTasks,
                       row: UserSession = Depends(current_session), db: Session = Depends(get_db)):
    user = _reauthenticate(request, db, row, body.password, body.code, body.recovery_code)
    totp.disable(db, user.id)
    sessions.revoke_all(db, user.id, "two_factor_disabled", except_id=row.id)
    new = _new_id(request, response, db, row, mfa_verified=False)
    audit.record(db, "two_factor_disabled", user_id=user.id, ip=client_ip(request))
    notice = mail.enqueue(db, user.email, "Two-factor authentication was turned off",
                          "Two-factor authentication was turned off for your EZ360 account. If this was not you, "
                          "reset your password and contact your administrator at once.").id
    db.commit()
    send_soon(request, background, [notice])
    return {"status": "disabled", "csrf_token": new.csrf_token}


@router.post("/2fa/recovery-codes", summary="Replace your recovery codes (the old ones stop working)")
def regenerate_recovery_codes(body: Reauth, request: Request, row: UserSession = Depends(current_session),
                              db: Session = Depends(get_db)):
    user = _reauthenticate(request, db, row, body.password, body.code, body.recovery_code)
    if not totp.enabled(db, user.id):
        raise HTTPException(409, "two-factor authentication is not enabled")
    codes = totp.new_recovery_codes(db, user.id)
    audit.record(db, "recovery_codes_regenerated", user_id=user.id, ip=client_ip(request))
    return {"recovery_codes": codes}


@router.get("/security-events", summary="Your recent sign-ins and account changes")
def security_events(row: UserSession = Depends(current_session), db: Session = Depends(get_db)):
    events = db.scalars(select(SecurityEvent).where(SecurityEvent.user_id == row.user_id)
                        .order_by(SecurityEvent.id.desc()).limit(100)).all()
    return [{"event": e.event, "occurred_at": e.occurred_at, "ip_address": e.ip_address} for e in events]


# --- invitations to companies (the invitee's side) ---------------------------------------------------------

class InvitationForMe(BaseModel):
    id: int
    company_id: int
    company_name: str
    role: str
    expires_at: Timestamp


class InvitationTokenIn(BaseModel):
    model_config = example(token="the token from the emailed link")

    token: Text(200, 1)


class Joined(BaseModel):
    company_id: int
    company_name: str
    membership_id: int
    role: str


def _for_me(db: Session, row) -> InvitationForMe:
    return InvitationForMe(id=row.id, company_id=row.company_id, company_name=db.get(Company, row.company_id).name,
                           role=row.role, expires_at=row.expires_at)


def _accept(request: Request, db: Session, user: User, row) -> Joined:
    set_actor(db, Actor(user.id, f"user:{user.id} (accepting invitation {row.id} via session)",
                        getattr(request.state, "request_id", None)))  # the new membership's audit record
    membership = invitations.accept(db, user, row, ip=client_ip(request))
    return Joined(company_id=membership.company_id, company_name=db.get(Company, membership.company_id).name,
                  membership_id=membership.id, role=membership.role)


@router.get("/invitations", response_model=Page[InvitationForMe],
            summary="Invitations waiting for your (verified) email address")
def my_invitations(row: UserSession = Depends(current_session), db: Session = Depends(get_db), limit: Limit = 50,
                   cursor: Cursor = None, sort: str = sort_query(["id", "expires_at"], "id")):
    stmt = invitations.open_for_user(db.get(User, row.user_id))
    rows, nxt = paginate(db, stmt, Invitation, sort=sort, cursor=cursor, limit=limit)
    return Page[InvitationForMe](items=[_for_me(db, i) for i in rows], next_cursor=nxt)


@router.post("/invitations/accept", response_model=Joined,
             summary="Accept the invitation of an emailed link (signed in with the invited address)")
def accept_invitation_link(body: InvitationTokenIn, request: Request, row: UserSession = Depends(current_session),
                           db: Session = Depends(get_db)):
    user = db.get(User, row.user_id)
    return _accept(request, db, user, invitations.find_for_user(db, user, token=body.token))


@router.post("/invitations/{invitation_id}/accept", response_model=Joined, summary="Accept an invitation")
def accept_invitation(invitation_id: RowId, request: Request, row: UserSession = Depends(current_session),
                      db: Session = Depends(get_db)):
    user = db.get(User, row.user_id)
    return _accept(request, db, user, invitations.find_for_user(db, user, invitation_id=invitation_id))


@router.post("/invitations/{invitation_id}/decline", status_code=204, summary="Decline an invitation")
def decline_invitation(invitation_id: RowId, request: Request, row: UserSession = Depends(current_session),
                       db: Session = Depends(get_db)):
    user = db.get(User, row.user_id)
    invitations.decline(db, user, invitations.find_for_user(db, user, invitation_id=invitation_id),
                        ip=client_ip(request))
    return Response(status_code=204)
