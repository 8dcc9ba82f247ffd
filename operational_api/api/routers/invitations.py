"""Invitations of a company (the inviting side): invite an address with a role, list the open invitations, revoke
one. The invitee accepts or declines under `/api/v1/account/invitations` (signed in with the invited address).

The answer to an invitation carries only what the inviter sent: whether the address belongs to an account, and
whose, is never disclosed."""

from __future__ import annotations

from fastapi import BackgroundTasks, Depends, Request, Response
from pydantic import BaseModel, ConfigDict, Field

from operational_api.api.deps import Ctx, RowId, company_ctx, company_router
from operational_api.api.listing import Cursor, Limit, paginate, sort_query
from operational_api.api.routers.auth import client_ip, send_soon
from operational_api.api.routers.members import Role
from operational_api.api.schemas import Page, Text, Timestamp
from operational_api.db.models import utcnow
from operational_api.db.security_models import Invitation
from operational_api.services import invitations

router = company_router("invitations", "members")


class InvitationIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"email": "sam@northwind.example.com", "role": "staff"}]})
    email: Text(254, 3) = Field(pattern=r"^[^@\s]+@[^@\s]+$")
    role: Role


class InvitationOut(BaseModel):
    id: int
    email: str = Field(description="the address invited, as normalised (lower case)")
    role: str
    status: str = Field(description="pending, accepted, declined, revoked, replaced (by a newer invitation) or "
                                    "expired")
    created_at: Timestamp
    expires_at: Timestamp
    responded_at: Timestamp | None


def out(row: Invitation) -> InvitationOut:
    status = "expired" if row.status == invitations.PENDING and not invitations.is_open(row) else row.status
    return InvitationOut(id=row.id, email=row.email, role=row.role, status=status, created_at=row.created_at,
                         expires_at=row.expires_at, responded_at=row.responded_at)


@router.post("", response_model=InvitationOut, status_code=201,
             summary="Invite somebody by email (they become a member when they accept; plan limit on users)")
def invite(body: InvitationIn, request: Request, background: BackgroundTasks,
           ctx: Ctx = Depends(company_ctx("members:manage"))):
    row, outbox = invitations.invite(ctx.db, request.app.state.settings, ctx.company, ctx.user, email=body.email,
                                     role=body.role, inviter_role=ctx.principal.role, ip=client_ip(request))
    ctx.track("teammate_invited", role=body.role)
    ctx.db.commit()
    send_soon(request, background, outbox)
    return out(row)


@router.get("", response_model=Page[InvitationOut], summary="The company's open invitations")
def list_invitations(ctx: Ctx = Depends(company_ctx("members:manage")), limit: Limit = 50, cursor: Cursor = None,
                     sort: str = sort_query(["id", "created_at"], "id")):
    stmt = ctx.scoped.select(Invitation).where(Invitation.status == invitations.PENDING,
                                               Invitation.expires_at > utcnow())
    rows, nxt = paginate(ctx.db, stmt, Invitation, sort=sort, cursor=cursor, limit=limit)
    return Page[InvitationOut](items=[out(r) for r in rows], next_cursor=nxt)


@router.delete("/{invitation_id}", status_code=204, summary="Revoke an open invitation (its link stops working)")
def revoke_invitation(invitation_id: RowId, request: Request, ctx: Ctx = Depends(company_ctx("members:manage"))):
    invitations.revoke(ctx.db, ctx.company, ctx.get(Invitation, invitation_id), ctx.user, ip=client_ip(request))
    return Response(status_code=204)
