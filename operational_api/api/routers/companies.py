"""The caller's company."""

from __future__ import annotations

from fastapi import APIRouter, Depends
from pydantic import BaseModel
from sqlalchemy.orm import Session

from operational_api.api.context import Principal, get_db, require
from operational_api.db.models import Company

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


@router.get("/{company_id}", response_model=CompanyOut, summary="A company you belong to")
def get_company(principal: Principal = Depends(require("company:read")), db: Session = Depends(get_db)):
    company = db.get(Company, principal.company_id)
    return CompanyOut(id=company.id, slug=company.slug, name=company.name, base_currency=company.base_currency,
                      fiscal_year_start_month=company.fiscal_year_start_month,
                      invoice_number_format=company.invoice_number_format,
                      payment_terms_days=company.payment_terms_days, plan=company.plan, your_role=principal.role)
