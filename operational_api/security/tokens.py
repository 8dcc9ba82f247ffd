"""API tokens for programmatic clients: shown once, stored as a SHA-256 hash, scoped to one company and
one role, expiring and revocable. A token is 256 bits of randomness, so a fast hash is the right tool
(argon2 is for low-entropy passwords).

A token never outranks its owner: it acts with the lower of its own role and the member's *current* role
(`effective_role`), so demoting a member demotes their tokens at once. Removing a member revokes their tokens
for that company (a flush hook, whoever deletes the membership), and a token older than the membership it would
act through is dead, so re-inviting a removed member never revives a token of their earlier membership."""

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
RANK = ("viewer", "staff", "finance", "admin", "owner")  # weakest first


def effective_role(token_role: str | None, member_role: str) -> str:
    """The role a request acts with: the member's own role, or for a token the lower of the two."""
    if token_role is None:
        return member_role
    return min(token_role, member_role, key=lambda role: RANK.index(role) if role in RANK else -1)


def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_token(session: Session, company: Company, user: User, role: str, name: str,
                ttl: timedelta = timedelta(days=90)) -> tuple[ApiToken, str]:
    """Create a token no stronger than the user's own role in the company; returns (row, plaintext)."""
    membership = session.scalar(select(Membership).where(Membership.company_id == company.id,
                                                         Membership.user_id == user.id))
    if membership is None:
        raise ValidationFailed("the user is not a member of this company")
    if role not in ALL or RANK.index(role) > RANK.index(membership.role):
        raise ValidationFailed(f"a token's role cannot exceed the user's role ({membership.role})")
    plaintext = PREFIX + secrets.token_urlsafe(32)
    row = ApiToken(company_id=company.id, user_id=user.id, role=role, name=name, token_hash=_digest(plaintext),
                   display_prefix=plaintext[:12], expires_at=utcnow() + ttl)
    session.add(row)
    session.flush()
    return row, plaintext


def resolve_token(session: Session, plaintext: str, now: datetime | None = None) -> ApiToken | None:
    """The live token for this plaintext, or None (unknown, expired, revoked, or outliving the membership it was
    made for: all look the same)."""
    if not plaintext.startswith(PREFIX):
        return None
    row = session.scalar(select(ApiToken).where(ApiToken.token_hash == _digest(plaintext)))
    now = now or utcnow()
    if row is None or row.revoked_at is not None or _aware(row.expires_at) <= now:
        return None
    membership = session.scalar(select(Membership).where(Membership.company_id == row.company_id,
                                                         Membership.user_id == row.user_id))
    if membership is None or _aware(row.created_at) < _aware(membership.created_at):
        return None  # made for a membership that ended (a later one does not bring it back)
    row.last_used_at = now
    return row


def revoke_token(session: Session, token: ApiToken) -> None:
    token.revoked_at = token.revoked_at or utcnow()


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)
