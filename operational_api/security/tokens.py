"""API tokens for programmatic clients: shown once, stored as a SHA-256 hash, scoped to one company and
one role, expiring and revocable. A token is 256 bits of randomness, so a fast hash is the right tool
(argon2 is for low-entropy passwords)."""

from __future__ import annotations

import hashlib
import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.orm import Session

from operational_api.db.models import ApiToken, Company, Membership, User, utcnow
from operational_api.permissions import ALL
from operational_api.services.errors import ValidationFailed

PREFIX = "ez360_"


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, company: Company, user: User, role: str, name: str,
                ttl: timedelta = timedelta(days=90)) -> tuple[ApiToken, str]:
    """Create a token no stronger than the user's own role in the company; returns (row, plaintext)."""
    membership = session.scalar(select(Membership).where(Membership.company_id == company.id,
                                                         Membership.user_id == user.id))
    if membership is None:
        raise ValidationFailed("the user is not a member of this company")
    order = ["viewer", "staff", "finance", "admin", "owner"]
    if role not in ALL or order.index(role) > order.index(membership.role):
        raise ValidationFailed(f"a token's role cannot exceed the user's role ({membership.role})")
    plaintext = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(company_id=company.id, user_id=user.id, role=role, name=name, token_hash=_digest(plaintext),
                   display_prefix=plaintext[:12], expires_at=utcnow() + ttl)
    session.add(row)
    session.flush()
    return row, plaintext


def resolve_token(session: Session, plaintext: str, now: datetime | None = None) -> ApiToken | None:
    """The live token for this plaintext, or None (unknown, expired or revoked look the same)."""
    if not plaintext.startswith(PREFIX):
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(plaintext)))
    now = now or utcnow()
    if row is None or row.revoked_at is not None or _aware(row.expires_at) <= now:
        return None
    row.last_used_at = now
    return row


def revoke_token(session: Session, token: ApiToken) -> None:
    token.revoked_at = token.revoked_at or utcnow()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
