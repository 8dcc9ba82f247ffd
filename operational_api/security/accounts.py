"""Account flows as plain functions (the routes stay thin): registration, email verification, sign-in with
throttling and a second factor, password reset that still asks for the second factor, password and email
changes behind re-authentication.

No answer tells whether an address has an account: registration and reset requests always answer the same,
and a failed sign-in costs exactly one argon2 verification whatever the account: unknown, invited without a
password, unverified, deactivated or real (`passwords.verify` checks a dummy hash when there is nothing real).

Emailed links: a new link of a kind (verification, address change, reset) ends the user's older links of that kind;
the database keeps only their SHA-256, and the outbox keeps the link encrypted until delivery (`mail`).
"""

from __future__ import annotations

import hashlib
import re
import secrets
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from operational_api.db.models import User, utcnow
from operational_api.db.security_models import EmailToken, UserSession
from operational_api.security import audit, mail, passwords, sessions, throttle, totp
from operational_api.services import usage
from operational_api.services.errors import ValidationFailed

EMAIL = re.compile(r"^[^@\s]{1,64}@[^@\s]+\.[^@\s]+$")
TOKEN_TTL = {"verify_email": timedelta(hours=24), "change_email": timedelta(hours=1),
             "reset_password": timedelta(minutes=30)}
GENERIC_FAILURE = "email or password is incorrect"


def normalise_email(email: str) -> str:
    email = email.strip().lower()
    if len(email) > 254 or not EMAIL.match(email):
        raise ValidationFailed("enter a valid email address")
    return email


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def issue_email_token(db: Session, user: User, purpose: str, new_email: str | None = None) -> str:
    """A new single-use link token; the user's unused older tokens of the same purpose stop working."""
    now = utcnow()
    db.execute(update(EmailToken).where(EmailToken.user_id == user.id, EmailToken.purpose == purpose,
                                        EmailToken.used_at.is_(None))
               .values(used_at=now).execution_options(synchronize_session="fetch"))
    token = secrets.token_urlsafe(32)
    db.add(EmailToken(user_id=user.id, purpose=purpose, token_hash=_digest(token), new_email=new_email,
                      expires_at=now + TOKEN_TTL[purpose]))
    db.flush()
    return token


def find_email_token(db: Session, token: str, purposes: tuple[str, ...]) -> EmailToken | None:
    row = db.scalar(select(EmailToken).where(EmailToken.token_hash == _digest(token or "")))
    if row is None or row.purpose not in purposes or row.used_at is not None or _aware(row.expires_at) <= utcnow():
        return None
    return row


def _link(settings, path: str, token: str) -> str:
    return f"{settings.public_base_url.rstrip('/')}{path}?token={token}"


# --- registration and verification ---------------------------------------------------------------

def register(db: Session, settings, *, email: str, password: str, full_name: str, ip: str = "") -> list[int]:
    """Create an unverified account and mail its verification link; returns the outbox ids to send.
    An address that already has an account gets a notice instead, and the caller sees the same answer."""
    email = normalise_email(email)
    passwords.check(password, email)
    password_hash = passwords.hash_password(password)  # same cost either way
    existing = db.scalar(select(User).where(User.email == email))
    if existing is not None:
        audit.record(db, "registration_for_existing_account", user_id=existing.id, ip=ip)
        row = mail.enqueue(db, email, "Someone tried to register with your address",
                           "Someone (maybe you) tried to create an EZ360 account with this address, which already "
                           "has one. If it was you, sign in or reset your password. Otherwise ignore this mail.")
        return [row.id]
    user = User(email=email, full_name=full_name.strip()[:200], password_hash=password_hash, email_verified_at=None)
    db.add(user)
    db.flush()
    totp.security_row(db, user.id).password_changed_at = utcnow()
    audit.record(db, "registered", user_id=user.id, ip=ip)
    return [send_verification(db, settings, user).id]


def send_verification(db: Session, settings, user: User):
    token = issue_email_token(db, user, "verify_email")
    return mail.enqueue(db, user.email, "Verify your EZ360 email address",
                        f"Hello {user.full_name},\n\nconfirm this address to start using EZ360:\n"
                        f"{mail.LINK}\n\nThe link works once, for 24 hours.",
                        link=_link(settings, '/verify-email', token))


def verify_email(db: Session, token: str, ip: str = "") -> tuple[User | None, list[int]]:
    """Apply a verification or address-change link: (the user, outbox ids to send); the user is None when
    the link is unknown, used or expired."""
    row = find_email_token(db, token, ("verify_email", "change_email"))
    if row is None:
        return None, []
    user = db.get(User, row.user_id)
    row.used_at = utcnow()
    outbox = []
    if row.purpose == "change_email":
        if db.scalar(select(User).where(User.email == row.new_email, User.id != user.id)) is not None:
            return None, []
        old = user.email
        user.email = row.new_email
        sessions.revoke_all(db, user.id, "email_changed")
        outbox.append(mail.enqueue(db, old, "Your EZ360 email address was changed",
                                   f"The sign-in address of your EZ360 account is now {row.new_email}. If this "
                                   "was not you, contact your administrator at once.").id)
        audit.record(db, "email_changed", user_id=user.id, ip=ip)
    else:
        audit.record(db, "email_verified", user_id=user.id, ip=ip)
    user.email_verified_at = utcnow()
    return user, outbox


# --- sign-in -------------------------------------------------------------------------------------

@dataclass
class LoginResult:
    status: str  # ok | mfa_required | invalid | throttled
    session: UserSession | None = None
    token: str | None = None
    retry_after: int = 0
    user_id: int | None = None
    extra: dict = field(default_factory=dict)


def login(sm: sessionmaker, settings, *, email: str, password: str, ip: str = "", user_agent: str = "",
          now: datetime | None = None) -> LoginResult:
    now = now or utcnow()
    identifier = email.strip().lower()
    acct_key = throttle.account_key("acct", identifier)
    ip_key = throttle.address_key(ip)
    with sm() as s:
        user = s.scalar(select(User).where(User.email == identifier))
        user_id, password_hash = (user.id, user.password_hash) if user else (None, None)
    verdict = throttle.attempt(sm, [(acct_key, throttle.account_limits(settings)),
                                    (ip_key, throttle.address_limits(settings))],
                               ip=ip, user_id=user_id, identifier=audit.identifier_hash(identifier), now=now)
    if not verdict.allowed:  # refused without an argon2 check (unknown accounts are throttled alike)
        return LoginResult("throttled", retry_after=verdict.retry_after)
    ok = passwords.verify(password_hash, password)
    with sm() as s:
        user = s.get(User, user_id) if user_id else None
        if not ok or user is None or not user.is_active:
            audit.record(s, "login_failed", user_id=user_id, ip=ip, now=now,
                         identifier=audit.identifier_hash(identifier),
                         reason="inactive" if ok and user is not None else "bad_credentials")
            s.commit()
            return LoginResult("invalid")
        throttle.succeeded(s, acct_key, [ip_key])
        if passwords.needs_rehash(user.password_hash):
            user.password_hash = passwords.hash_password(password)
        two_factor = totp.enabled(s, user.id)
        row, token = sessions.create(s, user.id, mfa_pending=two_factor, ip=ip, user_agent=user_agent, now=now)
        audit.record(s, "login_password_ok" if two_factor else "login_succeeded", user_id=user.id, ip=ip, now=now)
        if not two_factor:
            usage.record_for_user_companies(s, user.id, "login", now)
        s.commit()
        return LoginResult("mfa_required" if two_factor else "ok", row, token, user_id=user.id)


def second_factor(db: Session, sm: sessionmaker, settings, pending: UserSession, *, code: str | None,
                  recovery_code: str | None, ip: str = "") -> LoginResult:
    """The second step of sign-in. On success the pending session is replaced by a new, full one."""
    verdict = throttle.attempt(sm, [(throttle.account_key("mfa", str(pending.user_id)),
                                     throttle.account_limits(settings))], ip=ip, user_id=pending.user_id)
    if not verdict.allowed:
        return LoginResult("throttled", retry_after=verdict.retry_after)
    if not totp.check_second_factor(db, pending.user_id, code, recovery_code):
        return LoginResult("invalid", user_id=pending.user_id)
    throttle.succeeded(db, throttle.account_key("mfa", str(pending.user_id)))
    sessions.revoke(db, pending, "mfa_passed")
    row, token = sessions.create(db, pending.user_id, mfa_verified=True, ip=pending.ip_address,
                                 user_agent=pending.user_agent, started_at=_aware(pending.started_at))
    audit.record(db, "login_succeeded", user_id=pending.user_id, ip=ip, second_factor="recovery_code"
                 if recovery_code and not code else "totp")
    usage.record_for_user_companies(db, pending.user_id, "login", utcnow())
    if recovery_code and not code:
        mail.enqueue(db, db.get(User, pending.user_id).email, "A recovery code was used to sign in to EZ360",
                     f"A recovery code was used to sign in. {totp.remaining_recovery_codes(db, pending.user_id)} "
                     "remain. If this was not you, reset your password and contact your administrator.")
    return LoginResult("ok", row, token, user_id=pending.user_id)


def reauthenticate(db: Session, sm: sessionmaker, settings, user: User, *, password: str, code: str | None,
                   recovery_code: str | None = None, ip: str = "") -> LoginResult:
    """Full re-authentication for sensitive changes: the password, and the second factor when enabled.
    Throttled with the sign-in's own account key, so it is no side door for guessing."""
    keys = [(throttle.account_key("acct", user.email), throttle.account_limits(settings))]
    two_factor = totp.enabled(db, user.id)
    if two_factor:
        keys.append((throttle.account_key("mfa", str(user.id)), throttle.account_limits(settings)))
    verdict = throttle.attempt(sm, keys, ip=ip, user_id=user.id)
    if not verdict.allowed:
        return LoginResult("throttled", retry_after=verdict.retry_after)
    if not passwords.verify(user.password_hash, password):
        return LoginResult("invalid", user_id=user.id)
    if two_factor and not totp.check_second_factor(db, user.id, code, recovery_code):
        return LoginResult("invalid", user_id=user.id, extra={"second_factor": True})
    throttle.succeeded(db, keys[0][0], [k for k, _ in keys[1:]])
    return LoginResult("ok", user_id=user.id)


# --- password reset and changes ------------------------------------------------------------------

def request_password_reset(db: Session, settings, email: str, ip: str = "") -> list[int]:
    try:
        email = normalise_email(email)
    except ValidationFailed:
        return []
    user = db.scalar(select(User).where(User.email == email))
    if user is None or not user.is_active:
        audit.record(db, "password_reset_requested", ip=ip, identifier=audit.identifier_hash(email), known=False)
        return []
    token = issue_email_token(db, user, "reset_password")
    audit.record(db, "password_reset_requested", user_id=user.id, ip=ip, known=True)
    row = mail.enqueue(db, user.email, "Reset your EZ360 password",
                       f"Someone asked to reset the password of your EZ360 account. To choose a new one:\n"
                       f"{mail.LINK}\n\nThe link works once, for 30 minutes (a newer link replaces it). "
                       "If you did not ask for it, ignore this mail: your password stays as it is.",
                       link=_link(settings, '/reset-password', token))
    return [row.id]


def reset_password(db: Session, sm: sessionmaker, settings, *, token: str, new_password: str,
                   code: str | None = None, recovery_code: str | None = None, ip: str = "") -> LoginResult:
    """Set a new password from a reset link; when 2FA is enabled the second factor is still required."""
    row = find_email_token(db, token, ("reset_password",))
    if row is None:
        return LoginResult("invalid", extra={"reason": "link"})
    user = db.get(User, row.user_id)
    passwords.check(new_password, user.email)
    if totp.enabled(db, user.id):
        key = throttle.account_key("mfa", str(user.id))
        verdict = throttle.attempt(sm, [(key, throttle.account_limits(settings))], ip=ip, user_id=user.id)
        if not verdict.allowed:
            return LoginResult("throttled", retry_after=verdict.retry_after)
        if not totp.check_second_factor(db, user.id, code, recovery_code):
            return LoginResult("invalid", user_id=user.id, extra={"reason": "second_factor"})
        throttle.succeeded(db, key)
    row.used_at = utcnow()
    notice = set_password(db, user, new_password, reason="password_reset", ip=ip)
    return LoginResult("ok", user_id=user.id, extra={"outbox": [notice]})


def set_password(db: Session, user: User, new_password: str, *, reason: str, ip: str = "",
                 keep_session_id: int | None = None) -> int:
    """Returns the outbox id of the notice mailed to the account's address."""
    passwords.check(new_password, user.email)
    user.password_hash = passwords.hash_password(new_password)
    totp.security_row(db, user.id).password_changed_at = utcnow()
    sessions.revoke_all(db, user.id, reason, except_id=keep_session_id)
    audit.record(db, "password_changed", user_id=user.id, ip=ip, via=reason)
    return mail.enqueue(db, user.email, "Your EZ360 password was changed",
                        "The password of your EZ360 account was just changed, and your other sessions were "
                        "ended. If this was not you, reset your password and contact your administrator at once."
                        ).id


def request_email_change(db: Session, settings, user: User, new_email: str, ip: str = "") -> list[int]:
    new_email = normalise_email(new_email)
    ids = []
    if db.scalar(select(User).where(User.email == new_email)) is None:
        token = issue_email_token(db, user, "change_email", new_email=new_email)
        ids.append(mail.enqueue(db, new_email, "Confirm your new EZ360 email address",
                                f"Confirm this address as the new sign-in address of your EZ360 account:\n"
                                f"{mail.LINK}\n\nThe link works once, for an hour.",
                                link=_link(settings, '/verify-email', token)).id)
    ids.append(mail.enqueue(db, user.email, "A change of your EZ360 email address was requested",
                            f"Someone signed in as you asked to change your sign-in address to {new_email}. It "
                            "changes only once the new address is confirmed. If this was not you, change your "
                            "password at once.").id)
    audit.record(db, "email_change_requested", user_id=user.id, ip=ip)
    return ids


def deactivate(db: Session, user: User, ip: str = "", by_user_id: int | None = None) -> None:
    """Sessions and API tokens are revoked by the flush hook in `sessions` (whoever deactivates)."""
    user.is_active = False
    db.flush()
    audit.record(db, "user_deactivated", user_id=user.id, ip=ip, by_user_id=by_user_id)
