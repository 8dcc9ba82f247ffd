"""Members of a company and their roles. Only an owner grants or removes the owner role; a company keeps at least
one owner. Somebody becomes a member by accepting an invitation (`invitations` router); the plan limits the
number of users. Removing a member ends their sessions and revokes their API tokens for the company."""

from __future__ import annotations

from typing import Literal

from fastapi import Depends
from pydantic import BaseModel, ConfigDict

from operational_api.api.deps import Ctx, RowId, company_ctx, company_router
from operational_api.api.listing import Cursor, Limit, paginate, sort_query, where_given
from operational_api.api.schemas import Page, Timestamp
from operational_api.db.models import Membership, User
from operational_api.security import sessions
from operational_api.services import companies

router = company_router("members", "members")
Role = Literal["owner", "admin", "finance", "staff", "viewer"]


class RoleIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{"role": "finance"}]})
    role: Role


class MemberOut(BaseModel):
    id: int
    user_id: int
    email: str
    full_name: str
    role: str
    created_at: Timestamp


def out(ctx: Ctx, m: Membership) -> MemberOut:
    user = ctx.db.get(User, m.user_id)
    return MemberOut(id=m.id, user_id=m.user_id, email=user.email, full_name=user.full_name, role=m.role,
                     created_at=m.created_at)


@router.get("", response_model=Page[MemberOut], summary="Members and their roles")
def list_members(ctx: Ctx = Depends(company_ctx("members:read")), limit: Limit = 50, cursor: Cursor = None,
                 sort: str = sort_query(["id", "role", "created_at"], "id"), role: Role | None = None):
    stmt = where_given(ctx.scoped.select(Membership), (role, lambda: Membership.role == role))
    rows, nxt = paginate(ctx.db, stmt, Membership, sort=sort, cursor=cursor, limit=limit)
    return Page[MemberOut](items=[out(ctx, m) for m in rows], next_cursor=nxt)


@router.patch("/{membership_id}", response_model=MemberOut, summary="Change a member's role")
def change_role(membership_id: RowId, body: RoleIn, ctx: Ctx = Depends(company_ctx("members:manage"))):
    membership = ctx.get(Membership, membership_id)
    before = membership.role
    changed = companies.change_role(ctx.db, ctx.company, membership, body.role, ctx.principal.role)
    if changed.role != before:  # a privilege change: the member signs in again and gets a new session id
        sessions.revoke_all(ctx.db, changed.user_id, "role_changed")
    return out(ctx, changed)


@router.delete("/{membership_id}", status_code=204, summary="Remove a member")
def remove_member(membership_id: RowId, ctx: Ctx = Depends(company_ctx("members:manage"))):
    membership = ctx.get(Membership, membership_id)
    user_id = membership.user_id
    companies.remove_member(ctx.db, ctx.company, membership, ctx.principal.role)
    sessions.revoke_all(ctx.db, user_id, "membership_removed")
