"""Invitations: how somebody joins a company. An owner or admin invites an email address with a role; the address
gets a link; the person signed in with that verified address accepts (or declines), and only then becomes a member.

What the inviter learns is only what they typed: never whether the address has an account, nor its name or id.
The invitee sees which company invites them and with which role. The link's token is stored as its SHA-256 and
the mail keeps the link encrypted until delivery (`operational_api.security.mail`). An invitation counts against
the plan's user limit while it is pending, and the limit is checked again at acceptance.
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

from sqlalchemy import Select, false, func, select
from sqlalchemy.orm import Session

from operational_api.db.locking import lock_company
from operational_api.db.models import Company, Membership, User, utcnow
from operational_api.db.security_models import Invitation
from operational_api.security import audit, mail
from operational_api.security.accounts import normalise_email
from operational_api.security.sessions import digest  # SHA-256 of a 256-bit token, as for sessions and links
from operational_api.services import companies, plans
from operational_api.services.errors import Conflict, NotFound, PlanLimitReached, ValidationFailed

TTL = timedelta(days=7)
PENDING = "pending"


def _aware(value: datetime) -> datetime:
    return value if value.tzinfo else value.replace(tzinfo=UTC)


def is_open(invitation: Invitation, now: datetime | None = None) -> bool:
    return invitation.status == PENDING and _aware(invitation.expires_at) > (now or utcnow())


def _open_for(db: Session, company_id: int, now: datetime):
    return select(Invitation).where(Invitation.company_id == company_id, Invitation.status == PENDING,
                                    Invitation.expires_at > now)


def _check_room(db: Session, company: Company, now: datetime) -> None:
    """Members plus open invitations stay within the plan's user limit."""
    lock_company(db, company)
    limits = plans.PLANS[company.plan]
    if limits.users is None:
        return
    members = db.scalar(select(func.count()).select_from(Membership).where(Membership.company_id == company.id))
    waiting = db.scalar(select(func.count()).select_from(_open_for(db, company.id, now).subquery()))
    if members + waiting >= limits.users:
        raise PlanLimitReached(
            f"the {limits.title} plan ({plans.PLAN_SET}) allows at most {limits.users} users; {company.name} has "
            f"{members} members and {waiting} open invitations: upgrade the plan or revoke an invitation first")


def invite(db: Session, settings, company: Company, inviter: User, *, email: str, role: str,
           inviter_role: str, ip: str = "") -> tuple[Invitation, list[int]]:
    """Invite `email` with `role`; returns the invitation and the outbox ids to send. An open invitation of the
    same address to this company is replaced (its link stops working)."""
    email = normalise_email(email)
    if role not in companies.ROLES:
        raise ValidationFailed(f"unknown role {role!r}; choose one of {', '.join(companies.ROLES)}")
    if role == "owner" and inviter_role != "owner":
        raise ValidationFailed("only an owner may grant the owner role")
    now = utcnow()
    member = db.scalar(select(Membership.id).join(User, User.id == Membership.user_id)
                       .where(Membership.company_id == company.id, User.email == email))
    if member is not None:  # the inviter can list the company's members anyway: nothing new is disclosed
        raise Conflict(f"{email} is already a member of {company.name}")
    for old in db.scalars(_open_for(db, company.id, now).where(Invitation.email == email)):
        old.status, old.responded_at = "replaced", now
    db.flush()
    _check_room(db, company, now)
    token = secrets.token_urlsafe(32)
    invitation = Invitation(company_id=company.id, email=email, role=role, token_hash=digest(token), status=PENDING,
                            invited_by_user_id=inviter.id, created_at=now, expires_at=now + TTL)
    db.add(invitation)
    db.flush()
    link = f"{settings.public_base_url.rstrip('/')}/invitations/accept?token={token}"
    outbox = mail.enqueue(db, email, f"You are invited to {company.name} on EZ360",
                          f"{inviter.full_name or 'A colleague'} invites you to join {company.name} on EZ360 as "
                          f"{role}.\n\nSign in with this address (or create an account with it), then accept:\n"
                          f"{mail.LINK}\n\nThe invitation expires in {TTL.days} days. If you do not want to join, "
                          "ignore this mail.", link=link)
    audit.record(db, "invitation_created", user_id=inviter.id, company_id=company.id, ip=ip,
                 invitation_id=invitation.id, role=role)
    return invitation, [outbox.id]


def revoke(db: Session, company: Company, invitation: Invitation, by: User, ip: str = "") -> Invitation:
    if invitation.company_id != company.id:
        raise NotFound(f"invitation {invitation.id} not found")
    if not is_open(invitation):
        raise Conflict(f"invitation {invitation.id} is {invitation.status}: only a pending invitation can be revoked")
    invitation.status, invitation.responded_at = "revoked", utcnow()
    audit.record(db, "invitation_revoked", user_id=by.id, company_id=company.id, ip=ip, invitation_id=invitation.id)
    db.flush()
    return invitation


def open_for_user(user: User) -> Select:
    """The invitations waiting for this user's address (none until the address is verified)."""
    stmt = select(Invitation).where(Invitation.email == user.email, Invitation.status == PENDING,
                                    Invitation.expires_at > utcnow())
    return stmt if user.email_verified_at is not None else stmt.where(false())


def find_for_user(db: Session, user: User, *, invitation_id: int | None = None,
                  token: str | None = None) -> Invitation:
    """The user's invitation by id or by the emailed link's token; 404 for anyone else's (nothing disclosed)."""
    if invitation_id is not None:
        row = db.get(Invitation, invitation_id)
    else:
        row = db.scalar(select(Invitation).where(Invitation.token_hash == digest(token or "")))
    if row is None or row.email != user.email:
        raise NotFound("invitation not found: it is addressed to another email address, or does not exist")
    return row


def _respondable(user: User, invitation: Invitation) -> None:
    if user.email_verified_at is None:
        raise ValidationFailed("verify your email address first: an invitation is accepted from a verified address")
    if not is_open(invitation):
        state = "expired" if invitation.status == PENDING else invitation.status
        raise Conflict(f"this invitation is {state}: ask for a new one")


def accept(db: Session, user: User, invitation: Invitation, ip: str = "") -> Membership:
    _respondable(user, invitation)
    company = db.get(Company, invitation.company_id)
    already = db.scalar(select(Membership).where(Membership.company_id == company.id,
                                                 Membership.user_id == user.id))
    if already is not None:
        raise Conflict(f"you are already a member of {company.name}")
    membership = companies.add_member(db, company, user, invitation.role)  # the plan limit is checked again
    invitation.status, invitation.responded_at, invitation.member_user_id = "accepted", utcnow(), user.id
    audit.record(db, "invitation_accepted", user_id=user.id, company_id=company.id, ip=ip,
                 invitation_id=invitation.id, role=invitation.role)
    db.flush()
    return membership


def decline(db: Session, user: User, invitation: Invitation, ip: str = "") -> Invitation:
    _respondable(user, invitation)
    invitation.status, invitation.responded_at = "declined", utcnow()
    audit.record(db, "invitation_declined", user_id=user.id, company_id=invitation.company_id, ip=ip,
                 invitation_id=invitation.id)
    db.flush()
    return invitation
