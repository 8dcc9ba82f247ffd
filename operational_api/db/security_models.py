"""Persistence of accounts security: sessions, login attempts, 2FA, email outbox (issue: security hardening).

Secrets are never stored in the clear where a hash will do: session ids, email-link tokens and API tokens
are 256-bit random values stored as SHA-256; recovery codes are argon2id hashes. What has to be readable (the
TOTP seed, a mail's link until it is delivered) is stored encrypted (`operational_api.security.encryption`).
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import JSON, BigInteger, Boolean, DateTime, ForeignKey, Integer, String, Text
from sqlalchemy.orm import Mapped, mapped_column

from operational_api.db.models import Base, utcnow


class UserSecurity(Base):
    """1:1 with users: second factor and password metadata (kept apart from the users table)."""

    __tablename__ = "user_security"
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), primary_key=True)
    totp_secret: Mapped[str | None] = mapped_column(String(255))  # Fernet ciphertext, never the seed itself
    totp_enabled_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    totp_pending_secret: Mapped[str | None] = mapped_column(String(255))  # Fernet ciphertext
    totp_last_step: Mapped[int | None] = mapped_column(BigInteger)  # replay guard: a time step is used once
    password_changed_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class RecoveryCode(Base):
    __tablename__ = "recovery_codes"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    code_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class UserSession(Base):
    """A server-side session. The cookie holds the secret; the row holds its SHA-256."""

    __tablename__ = "user_sessions"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    csrf_token: Mapped[str] = mapped_column(String(64))
    mfa_pending: Mapped[bool] = mapped_column(Boolean, default=False)  # password ok, second factor still due
    mfa_verified: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # sign-in time; absolute timeout
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # this id's birth (rotation)
    last_seen_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))  # idle timeout
    ip_address: Mapped[str] = mapped_column(String(64), default="")
    user_agent: Mapped[str] = mapped_column(String(300), default="")
    revoked_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    revoked_reason: Mapped[str | None] = mapped_column(String(40))


class LoginThrottle(Base):
    """Failure counter of one throttling key (an account or a client address), shared by every process."""

    __tablename__ = "login_throttles"
    key: Mapped[str] = mapped_column(String(100), primary_key=True)
    failures: Mapped[int] = mapped_column(Integer, default=0)
    first_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_failure_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    not_before: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # progressive delay
    locked_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class SecurityEvent(Base):
    """Audit trail of authentication and account events (never a password, code or token)."""

    __tablename__ = "security_events"
    id: Mapped[int] = mapped_column(primary_key=True)
    occurred_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    event: Mapped[str] = mapped_column(String(40), index=True)
    user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"), index=True)
    company_id: Mapped[int | None] = mapped_column(ForeignKey("companies.id"))
    ip_address: Mapped[str] = mapped_column(String(64), default="")
    detail: Mapped[dict] = mapped_column(JSON, default=dict)


class EmailToken(Base):
    """Single-use links sent by email: address verification, address change, password reset."""

    __tablename__ = "email_tokens"
    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), index=True)
    purpose: Mapped[str] = mapped_column(String(20))  # verify_email | change_email | reset_password
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    new_email: Mapped[str | None] = mapped_column(String(254))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    used_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))


class EmailOutbox(Base):
    """Mail waiting for (or done with) SMTP delivery; a failed send stays here with its error and is retried."""

    __tablename__ = "email_outbox"
    id: Mapped[int] = mapped_column(primary_key=True)
    to_address: Mapped[str] = mapped_column(String(254))
    subject: Mapped[str] = mapped_column(String(200))
    body: Mapped[str] = mapped_column(Text)  # holds mail.LINK where the link goes; never the link itself
    link_ciphertext: Mapped[str | None] = mapped_column(Text)  # the link, encrypted; erased once delivered
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, index=True)
    claimed_until: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))  # one sender at a time
    sent_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    last_error: Mapped[str | None] = mapped_column(String(500))


class CompanySecurityPolicy(Base):
    """Per-company security choices. Owners and admins always need 2FA; these roles need it too."""

    __tablename__ = "company_security_policies"
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), primary_key=True)
    two_factor_roles: Mapped[list] = mapped_column(JSON, default=list)
    updated_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow, onupdate=utcnow)


class Invitation(Base):
    """An invitation to join a company with a role. Nobody becomes a member until the invitee, signed in with this
    verified address, accepts; the invitation tells the inviter nothing about accounts (whether the address has
    one, whose it is). The emailed link's token is stored as its SHA-256."""

    __tablename__ = "invitations"
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    email: Mapped[str] = mapped_column(String(254), index=True)
    role: Mapped[str] = mapped_column(String(20))
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    status: Mapped[str] = mapped_column(String(20), default="pending")  # pending|accepted|declined|revoked|replaced
    invited_by_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(DateTime(timezone=True))
    responded_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    member_user_id: Mapped[int | None] = mapped_column(ForeignKey("users.id"))  # who accepted
