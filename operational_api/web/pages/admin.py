"""Members and roles, API tokens and company settings (with tax rates): the API's own functions and services."""

from __future__ import annotations

from decimal import Decimal

from fastapi import BackgroundTasks, Depends, HTTPException, Request
from pydantic import ValidationError

from operational_api.api.context import Principal, get_db, require
from operational_api.api.deps import Ctx, RowId, company_ctx
from operational_api.api.routers import company_settings as api_company
from operational_api.api.routers import invitations as api_invitations
from operational_api.api.routers import members as api_members
from operational_api.api.routers import tokens as api_tokens
from operational_api.db.billing_models import TaxRate
from operational_api.db.models import ApiToken, Company, Membership, User, utcnow
from operational_api.db.security_models import Invitation
from operational_api.permissions import allowed
from operational_api.services import billing, companies, invitations
from operational_api.services.errors import DomainError
from operational_api.web import l10n
from operational_api.web.actions import act, attempt, company_pages
from operational_api.web.forms import FormState, form_data
from operational_api.web.lists import Filters, list_page
from operational_api.web.pages.auth import first_error
from operational_api.web.rendering import go, render

router = company_pages()
ROLE_HELP = {"owner": "everything, including owners and reopening months", "admin": "everything but owners",
             "finance": "invoices, payments and the ledger", "staff": "clients, projects, own time and expenses",
             "viewer": "reads everything, changes nothing"}


# -- members -----------------------------------------------------------------------------------------------

def _members(request: Request, ctx: Ctx, form: FormState | None = None, status: int = 200):
    f = Filters(request)
    role = f.choice("role", companies.ROLES)
    stmt = ctx.scoped.select(Membership)
    if role:
        stmt = stmt.where(Membership.role == role)
    view = list_page(request, ctx.db, stmt, Membership, f, sorts=["id", "role", "created_at"], default="id")
    users = {m.user_id: ctx.db.get(User, m.user_id) for m in view.rows}
    roles = [r for r in companies.ROLES if r != "owner" or ctx.principal.role == "owner"]
    pending = ctx.db.scalars(ctx.scoped.select(Invitation).where(Invitation.status == invitations.PENDING,
                                                                 Invitation.expires_at > utcnow())
                             .order_by(Invitation.id).limit(100)).all() \
        if allowed(ctx.principal.role, "members:manage") else []
    return render(request, "company/members.html", ctx=ctx, view=view, users=users, roles=roles, role_help=ROLE_HELP,
                  pending=pending,
                  form=form or FormState(values={"role": "staff"}), status=status)


@router.get("/members")
def members(request: Request, ctx: Ctx = Depends(company_ctx("members:read"))):
    return _members(request, ctx)


@router.post("/members")
def invite(request: Request, background: BackgroundTasks, form: dict = Depends(form_data),
           ctx: Ctx = Depends(company_ctx("members:manage"))):
    """An invitation by email; the invitee becomes a member when they accept it (the API's own function)."""
    state = FormState(values={k: form.get(k, "").strip() for k in ("email", "role")})
    try:
        body = api_invitations.InvitationIn(**state.values)
    except ValidationError as exc:
        name, message = first_error(exc)
        state.errors[name or "email"] = "enter a valid email address" if name == "email" else message
        return _members(request, ctx, state, 422)
    _, error = attempt(ctx.db, lambda: api_invitations.invite(body, request, background, ctx))
    if error:
        return _members(request, ctx, state.fail(error, ("email", "role")), error.status)
    return go(f"/app/c/{ctx.company.id}/members", "member_invited")


@router.post("/members/invitations/{invitation_id}/revoke")
def revoke_invitation(request: Request, invitation_id: RowId, ctx: Ctx = Depends(company_ctx("members:manage"))):
    return act(ctx.db, lambda: api_invitations.revoke_invitation(invitation_id, request, ctx),
               f"/app/c/{ctx.company.id}/members", "invitation_revoked")


@router.post("/members/{membership_id}/role")
def change_role(request: Request, membership_id: RowId, form: dict = Depends(form_data),
                ctx: Ctx = Depends(company_ctx("members:manage"))):
    try:
        body = api_members.RoleIn(role=form.get("role", ""))
    except ValidationError as exc:
        raise HTTPException(422, first_error(exc)[1]) from None
    _, error = attempt(ctx.db, lambda: api_members.change_role(membership_id, body, ctx))
    if error:
        raise HTTPException(error.status, error.detail)
    return go(f"/app/c/{ctx.company.id}/members", "role_changed")


@router.post("/members/{membership_id}/remove")
def remove(request: Request, membership_id: RowId, ctx: Ctx = Depends(company_ctx("members:manage"))):
    _, error = attempt(ctx.db, lambda: api_members.remove_member(membership_id, ctx))
    if error:
        raise HTTPException(error.status, error.detail)
    return go(f"/app/c/{ctx.company.id}/members", "member_removed")


# -- API tokens --------------------------------------------------------------------------------------------

def _tokens(request: Request, principal: Principal, db, ctx_company: Company, created: str | None = None,
            form: FormState | None = None, status: int = 200):
    from operational_api.db.scoped import Scoped
    view = list_page(request, db, Scoped(db, principal.company_id).select(ApiToken), ApiToken, Filters(request),
                     sorts=["id", "created_at", "expires_at"], default="-id")
    roles = companies.ROLES[companies.ROLES.index(principal.role):]
    ctx = Ctx(principal, db, ctx_company, getattr(request.state, "request_id", None))
    return render(request, "company/tokens.html", ctx=ctx, view=view, created=created, roles=roles,
                  form=form or FormState(values={"role": "viewer", "expires_in_days": "90"}), status=status)


@router.get("/tokens")
def tokens(request: Request, principal: Principal = Depends(require("tokens:manage")), db=Depends(get_db)):
    return _tokens(request, principal, db, db.get(Company, principal.company_id))


@router.post("/tokens")
def create_token(request: Request, form: dict = Depends(form_data),
                 principal: Principal = Depends(require("tokens:manage")), db=Depends(get_db)):
    state = FormState(values={k: form.get(k, "").strip() for k in ("name", "role", "expires_in_days")})
    company = db.get(Company, principal.company_id)
    try:
        body = api_tokens.ApiTokenIn(name=state.values["name"], role=state.values["role"],
                                     expires_in_days=state.values["expires_in_days"] or 90)
        created = api_tokens.create_token(body, request, principal, db)
        db.commit()
    except ValidationError as exc:
        name, message = first_error(exc)
        state.errors[name or "name"] = message
        return _tokens(request, principal, db, company, form=state, status=422)
    except (DomainError, HTTPException) as exc:
        db.rollback()
        state.error = exc.detail
        return _tokens(request, principal, db, company, form=state, status=getattr(exc, "status", 403))
    return _tokens(request, principal, db, company, created=created.token)


@router.post("/tokens/{token_id}/revoke")
def revoke(request: Request, token_id: RowId, principal: Principal = Depends(require("tokens:manage")),
           db=Depends(get_db)):
    api_tokens.delete_token(token_id, request, principal, db)
    db.commit()
    return go(f"/app/c/{principal.company_id}/tokens", "token_revoked")


# -- settings ----------------------------------------------------------------------------------------------

SETTINGS = ("name", "invoice_prefix", "invoice_number_format", "payment_terms_days", "fiscal_year_start_month")


def _settings(request: Request, ctx: Ctx, form: FormState | None = None, tax_form: FormState | None = None,
              status: int = 200):
    values = {k: str(getattr(ctx.company, k)) for k in SETTINGS}
    return render(request, "company/settings.html", ctx=ctx, form=form or FormState(values=values),
                  tax_form=tax_form or FormState(), rates=billing.tax_rates(ctx.db, ctx.company), status=status)


@router.get("/settings")
def settings(request: Request, ctx: Ctx = Depends(company_ctx("company:update"))):
    return _settings(request, ctx)


@router.post("/settings")
def save_settings(request: Request, form: dict = Depends(form_data), ctx: Ctx = Depends(company_ctx("company:update"))):
    state = FormState(values={k: form.get(k, "").strip() for k in SETTINGS})
    changes = {k: v for k, v in state.values.items() if v != str(getattr(ctx.company, k))}
    try:
        body = api_company.CompanyPatch(**changes)
    except ValidationError as exc:
        name, message = first_error(exc)
        state.errors[name or "name"] = message
        return _settings(request, ctx, state, status=422)
    _, error = attempt(ctx.db, lambda: api_company.update_settings(body, ctx))
    if error:
        ctx.db.refresh(ctx.company)
        return _settings(request, ctx, state.fail(error, SETTINGS), status=error.status)
    return go(f"/app/c/{ctx.company.id}/settings", "settings_saved")


@router.post("/settings/tax-rates")
def add_tax_rate(request: Request, form: dict = Depends(form_data), ctx: Ctx = Depends(company_ctx("company:update"))):
    state = FormState(values={k: form.get(k, "").strip() for k in ("name", "rate_percent", "make_default")})

    def act():
        rate = l10n.parse_decimal(state.values["rate_percent"], l10n.user_locale(request), "rate_percent")
        return billing.add_tax_rate(ctx.db, ctx.company, name=state.values["name"], rate_percent=rate,
                                    make_default=bool(state.values["make_default"]))

    _, error = attempt(ctx.db, act)
    if error:
        return _settings(request, ctx, tax_form=state.fail(error, ("name", "rate_percent")), status=error.status)
    return go(f"/app/c/{ctx.company.id}/settings", "tax_rate_added")


@router.post("/settings/tax-rates/{rate_id}/default")
def default_rate(request: Request, rate_id: RowId, ctx: Ctx = Depends(company_ctx("company:update"))):
    rate = ctx.get(TaxRate, rate_id)
    billing.make_default(ctx.db, ctx.company, rate)
    ctx.db.commit()
    return go(f"/app/c/{ctx.company.id}/settings", "tax_default")


__all__ = ["router", "Decimal"]
