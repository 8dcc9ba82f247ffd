"""Server-side sessions (ASVS 5.0 V7): the cookie carries a 256-bit random id, the ops DB keeps its SHA-256.

- The cookie is HttpOnly, SameSite=Lax, Path=/, and Secure with the `__Host-` prefix unless
  `EZ360_SESSION_COOKIE_SECURE=false` (refused in production).
- A new id at sign-in and at every privilege change (second factor passed, 2FA enabled, password changed);
  the old id is revoked in the same transaction.
- Idle timeout (`last_seen_at`) and absolute timeout (from sign-in, kept across rotations) are checked on
  every request against the database, so every process and the dashboards see the same answer.
- Logout, password change/reset, 2FA changes and user deactivation revoke sessions server-side. Deactivation
  is caught at flush time whoever sets `users.is_active = false`, so no code path can forget it.
"""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from fastapi import Response
from sqlalchemy import bindparam, event, select, update
from sqlalchemy import inspect as sa_inspect
from sqlalchemy.orm import Session

from operational_api.db.models import User, utcnow
from operational_api.db.security_models import UserSession

PENDING_TTL = timedelta(minutes=5)  # between the password and the second factor
TOUCH_EVERY = timedelta(seconds=15)  # last_seen_at is written at most this often


@dataclass(frozen=True)
class Timeouts:
    idle: timedelta
    absolute: timedelta

    @classmethod
    def of(cls, settings) -> Timeouts:
        return cls(timedelta(minutes=settings.session_idle_timeout_minutes),
                   timedelta(hours=settings.session_absolute_timeout_hours))


def digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def create(db: Session, user_id: int, *, mfa_pending: bool = False, mfa_verified: bool = False, ip: str = "",
           user_agent: str = "", started_at: datetime | None = None,
           now: datetime | None = None) -> tuple[UserSession, str]:
    now = now or utcnow()
    token = secrets.token_urlsafe(32)
    row = UserSession(user_id=user_id, token_hash=digest(token), csrf_token=secrets.token_urlsafe(32),
                      mfa_pending=mfa_pending, mfa_verified=mfa_verified, started_at=started_at or now,
                      created_at=now, last_seen_at=now, ip_address=ip[:64], user_agent=user_agent[:300])
    db.add(row)
    db.flush()
    return row, token


def resolve(db: Session, token: str | None, timeouts: Timeouts, *, allow_pending: bool = False,
            now: datetime | None = None) -> UserSession | None:
    """The live session for this cookie value, or None (unknown, revoked, timed out, pending look the same)."""
    if not token:
        return None
    now = now or utcnow()
    found = db.execute(_BY_TOKEN, {"token_hash": digest(token)}).first()  # one round trip for both
    if found is None:
        return None
    row, user = found
    if row.revoked_at is not None:
        return None
    if row.mfa_pending and (not allow_pending or now - _aware(row.created_at) > PENDING_TTL):
        return None
    if now - _aware(row.last_seen_at) > timeouts.idle or now - _aware(row.started_at) > timeouts.absolute:
        return None  # dead by the clock; nothing to write
    if not user.is_active:
        return None
    keep_loaded(db, user)
    return row


# Built once: SQLAlchemy memoizes a statement's cache key on the object, so a request only binds the digest
# (building and keying the statement anew was half of this lookup's CPU; issue 8).
_BY_TOKEN = (select(UserSession, User).join(User, User.id == UserSession.user_id)
             .where(UserSession.token_hash == bindparam("token_hash")))


def keep_loaded(db: Session, *rows) -> None:
    """Hold rows for the session's lifetime: its identity map keeps objects only while something refers to them,
    so a user loaded here would be fetched again by every later `db.get(User, ...)` of the same request."""
    db.info.setdefault("ez360_loaded", []).extend(rows)


def touch(db: Session, row: UserSession, now: datetime | None = None) -> bool:
    """Move the idle deadline; True when a write is pending (the caller commits it at once)."""
    now = now or utcnow()
    if now - _aware(row.last_seen_at) >= TOUCH_EVERY:
        row.last_seen_at = now
        return True
    return False


def rotate(db: Session, old: UserSession, *, mfa_verified: bool | None = None,
           now: datetime | None = None) -> tuple[UserSession, str]:
    """A fresh id for the same sign-in (its absolute timeout still counts from the sign-in)."""
    now = now or utcnow()
    revoke(db, old, "rotated", now=now)
    return create(db, old.user_id, mfa_verified=old.mfa_verified if mfa_verified is None else mfa_verified,
                  ip=old.ip_address, user_agent=old.user_agent, started_at=_aware(old.started_at), now=now)


def revoke(db: Session, row: UserSession, reason: str, *, now: datetime | None = None) -> None:
    if row.revoked_at is None:
        row.revoked_at, row.revoked_reason = now or utcnow(), reason


def revoke_all(db: Session, user_id: int, reason: str, *, except_id: int | None = None) -> int:
    stmt = (update(UserSession).where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None))
            .values(revoked_at=utcnow(), revoked_reason=reason).execution_options(synchronize_session="fetch"))
    if except_id is not None:
        stmt = stmt.where(UserSession.id != except_id)
    return db.execute(stmt).rowcount


def live_sessions(db: Session, user_id: int, timeouts: Timeouts, now: datetime | None = None) -> list[UserSession]:
    now = now or utcnow()
    rows = db.scalars(select(UserSession).where(UserSession.user_id == user_id, UserSession.revoked_at.is_(None),
                                                UserSession.mfa_pending.is_(False))
                      .order_by(UserSession.id)).all()
    return [r for r in rows if now - _aware(r.last_seen_at) <= timeouts.idle
            and now - _aware(r.started_at) <= timeouts.absolute]


def set_cookie(response: Response, settings, token: str) -> None:
    response.set_cookie(settings.session_cookie_name, token, path="/", secure=settings.session_cookie_secure,
                        httponly=True, samesite="lax")


def clear_cookie(response: Response, settings) -> None:
    response.delete_cookie(settings.session_cookie_name, path="/", secure=settings.session_cookie_secure,
                           httponly=True, samesite="lax")


@event.listens_for(Session, "before_flush")
def _deactivation_revokes_credentials(session: Session, _flush_context, _instances) -> None:
    """Whoever deactivates a user, their sessions end in the same transaction (their API tokens are revoked
    through the ORM by operational_api.db.audit_trail, so the revocation is in the audit chain)."""
    for obj in list(session.dirty):
        if not isinstance(obj, User):
            continue
        history = sa_inspect(obj).attrs.is_active.history
        if history.added and history.added[0] is False and (history.deleted or [True])[0] is not False:
            conn, now = session.connection(), utcnow()
            conn.execute(update(UserSession.__table__).where(UserSession.user_id == obj.id,
                                                             UserSession.revoked_at.is_(None))
                         .values(revoked_at=now, revoked_reason="user_deactivated"))
