"""The caller's companies: the list of those they belong to (with their role), and one of them."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy import select
from sqlalchemy.orm import Session

from operational_api.api.context import Identity, Principal, authenticate, get_db, require
from operational_api.api.listing import Cursor, Limit, paginate, sort_query
from operational_api.api.schemas import Page
from operational_api.db.models import Company, Membership

router = APIRouter(prefix="/api/v1/companies", tags=["companies"])


class CompanyOut(BaseModel):
    id: int
    slug: str
    name: str
    base_currency: str
    fiscal_year_start_month: int
    invoice_number_format: str
    payment_terms_days: int
    plan: str
    your_role: str


class MembershipOut(BaseModel):
    id: int
    slug: str
    name: str
    base_currency: str
    your_role: str


@router.get("", response_model=Page[MembershipOut], summary="The companies you belong to, with your role in each")
def list_companies(identity: Identity = Depends(authenticate), db: Session = Depends(get_db), limit: Limit = 50,
                   cursor: Cursor = None, sort: str = sort_query(["id", "name", "slug"], "id")):
    """With an API token: only the token's company, with the token's role."""
    roles = dict(db.execute(select(Membership.company_id, Membership.role)
                            .where(Membership.user_id == identity.user_id)).all())
    stmt = select(Company).where(Company.id.in_(select(Membership.company_id)
                                                .where(Membership.user_id == identity.user_id)))
    if identity.token_company_id is not None:
        stmt = stmt.where(Company.id == identity.token_company_id)
    rows, nxt = paginate(db, stmt, Company, sort=sort, cursor=cursor, limit=limit)
    return Page[MembershipOut](items=[MembershipOut(id=c.id, slug=c.slug, name=c.name, base_currency=c.base_currency,
                                                    your_role=identity.token_role or roles[c.id]) for c in rows],
                               next_cursor=nxt)


@router.get("/{company_id}", response_model=CompanyOut, summary="A company you belong to")
def get_company(principal: Principal = Depends(require("company:read")), db: Session = Depends(get_db)):
    company = db.get(Company, principal.company_id)
    return CompanyOut(id=company.id, slug=company.slug, name=company.name, base_currency=company.base_currency,
                      fiscal_year_start_month=company.fiscal_year_start_month,
                      invoice_number_format=company.invoice_number_format,
                      payment_terms_days=company.payment_terms_days, plan=company.plan, your_role=principal.role)
