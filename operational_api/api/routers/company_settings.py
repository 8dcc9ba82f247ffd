"""Company settings and plan: create a company (you become its owner), change its book settings, see its plan's
limits and usage.

A company is created from a signed-in session of a verified user (an API token acts for one existing company
only), and starts on the Free plan. The plan is not a book setting: it changes only through billing or a
platform admin (`ez360 companies set-plan`, `operational_api.services.plans.change_plan`)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request
from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from operational_api.api.context import Identity, authenticate, get_db
from operational_api.api.deps import Ctx, company_ctx, company_router
from operational_api.api.routing import MoneyRoute
from operational_api.api.schemas import ERROR_RESPONSES, Text
from operational_api.db.audit_trail import Actor, set_actor
from operational_api.db.models import Company, User, utcnow
from operational_api.services import companies, plans
from operational_api.services.usage import record_usage_event

router = company_router("", "companies")
create_router = APIRouter(prefix="/api/v1/companies", tags=["companies"], route_class=MoneyRoute,
                          responses=ERROR_RESPONSES)
NEW_COMPANY_PLAN = "free"


class CompanyIn(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [{
        "slug": "northwind", "name": "Northwind Studio LLC", "base_currency": "USD", "invoice_prefix": "NWS",
        "payment_terms_days": 30, "fiscal_year_start_month": 1,
        "invoice_number_format": "{prefix}-{year}-{seq:05d}"}]})
    slug: Text(40, 2) = Field(pattern=r"^[a-z0-9][a-z0-9-]+$")
    name: Text(200, 1)
    base_currency: Text(3, 3)
    invoice_prefix: Text(10, 1)
    payment_terms_days: int = Field(30, ge=0, le=365)
    fiscal_year_start_month: int = Field(1, ge=1, le=12)
    invoice_number_format: Text(60, 1) = "{prefix}-{year}-{seq:05d}"


class CompanyPatch(BaseModel):
    model_config = ConfigDict(extra="forbid", json_schema_extra={"examples": [
        {"payment_terms_days": 14, "invoice_number_format": "{prefix}{year}-{seq:04d}"}]})
    name: Text(200, 1) | None = None
    invoice_prefix: Text(10, 1) | None = None
    payment_terms_days: int | None = Field(None, ge=0, le=365)
    fiscal_year_start_month: int | None = Field(None, ge=1, le=12)
    invoice_number_format: Text(60, 1) | None = None


class SettingsOut(BaseModel):
    id: int
    slug: str
    name: str
    base_currency: str
    fiscal_year_start_month: int
    invoice_prefix: str
    invoice_number_format: str
    payment_terms_days: int
    plan: str
    stripe_connected: bool


class LimitOut(BaseModel):
    limit: int | None = Field(description="null: unlimited")
    used: int


class PlanOut(BaseModel):
    plan: str
    plan_set: str
    title: str
    users: LimitOut
    clients: LimitOut
    active_projects: LimitOut


def out(c: Company) -> SettingsOut:
    return SettingsOut(id=c.id, slug=c.slug, name=c.name, base_currency=c.base_currency,
                       fiscal_year_start_month=c.fiscal_year_start_month, invoice_prefix=c.invoice_prefix,
                       invoice_number_format=c.invoice_number_format, payment_terms_days=c.payment_terms_days,
                       plan=c.plan, stripe_connected=c.stripe_account_id is not None)


def verified_session(identity: Identity = Depends(authenticate), db: Session = Depends(get_db)) -> Identity:
    """A signed-in browser session of a user whose email address is verified."""
    if identity.via != "session":
        raise HTTPException(403, "creating a company needs a signed-in session: an API token acts for its own "
                                 "company only")
    if db.get(User, identity.user_id).email_verified_at is None:
        raise HTTPException(403, "verify your email address before creating a company (POST "
                                 "/api/v1/account/verification-email sends the link again)")
    return identity


@create_router.post("", response_model=SettingsOut, status_code=201,
                    summary="Create a company on the Free plan, with the default chart of accounts; you become its "
                            "owner (a verified user's session only)")
def create_company(body: CompanyIn, request: Request, identity: Identity = Depends(verified_session),
                   db: Session = Depends(get_db)):
    set_actor(db, Actor(identity.user_id, f"user:{identity.user_id} (via {identity.via})",
                        getattr(request.state, "request_id", None)))
    company = companies.create_company(db, **body.model_dump(), plan=NEW_COMPANY_PLAN)
    user = db.get(User, identity.user_id)
    companies.add_member(db, company, user, "owner")
    record_usage_event(db, company, user, "login", utcnow(), source="company_created")
    db.flush()
    return out(company)


@router.patch("/settings", response_model=SettingsOut,
              summary="Change the company's book settings (not its plan: billing or a platform admin changes that)")
def update_settings(body: CompanyPatch, ctx: Ctx = Depends(company_ctx("company:update"))):
    changes = {k: v for k, v in body.model_dump(exclude_unset=True).items() if v is not None}
    return out(companies.update_company(ctx.db, ctx.company, **changes))


@router.get("/settings", response_model=SettingsOut, summary="The company's book settings")
def get_settings(ctx: Ctx = Depends(company_ctx("company:read"))):
    return out(ctx.company)


@router.get("/plan", response_model=PlanOut, summary="The plan's limits (Production Baseline v1) and their usage")
def get_plan(ctx: Ctx = Depends(company_ctx("company:read"))):
    limits, used = plans.PLANS[ctx.company.plan], plans.usage(ctx.db, ctx.company)
    return PlanOut(plan=ctx.company.plan, plan_set=plans.PLAN_SET, title=limits.title,
                   **{k: LimitOut(limit=getattr(limits, k), used=used[k]) for k in plans.LIMIT_LABELS})
