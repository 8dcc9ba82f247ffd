"""A company's home: the onboarding checklist (ticked by what the company has done, from its records and usage
events), what is owed, and what to do next."""

from __future__ import annotations

from fastapi import Depends, Request
from sqlalchemy import func, select

from operational_api.api.deps import Ctx, company_ctx
from operational_api.db.models import Invoice
from operational_api.services import invoicing, onboarding
from operational_api.web.actions import company_pages
from operational_api.web.rendering import render

router = company_pages()
STEP_LINKS = {"add_client": "/clients/new", "add_project": "/projects/new", "create_invoice": "/invoices/new",
              "connect_stripe": "/settings", "invite_teammate": "/members", "enable_2fa": "/app/account/two-factor"}


def outstanding(ctx: Ctx) -> list[tuple[str, int, int]]:
    """(currency, open invoices, amount due in minor units) per currency."""
    due = Invoice.total_minor - Invoice.amount_paid_minor - Invoice.credited_minor
    rows = ctx.db.execute(select(Invoice.currency, func.count(), func.coalesce(func.sum(due), 0))
                          .where(Invoice.company_id == ctx.company.id, Invoice.status.in_(invoicing.OPEN_STATES))
                          .group_by(Invoice.currency).order_by(Invoice.currency))
    return [(cur, n, int(amount)) for cur, n, amount in rows.all()]


@router.get("")
def home(request: Request, ctx: Ctx = Depends(company_ctx("company:read"))):
    steps = onboarding.checklist(ctx.db, ctx.company)
    done = sum(s.done for s in steps)
    base = f"/app/c/{ctx.company.id}"
    links = {k: (v if v.startswith("/app/") else base + v) for k, v in STEP_LINKS.items()}
    recent = ctx.db.scalars(select(Invoice).where(Invoice.company_id == ctx.company.id, Invoice.deleted_at.is_(None))
                            .order_by(Invoice.created_at.desc(), Invoice.id.desc()).limit(5)).all()
    bucket = min((0, 17, 33, 50, 67, 83, 100), key=lambda b: abs(b - done * 100 / max(1, len(steps))))
    return render(request, "company/home.html", ctx=ctx, steps=steps, done=done, links=links, bucket=bucket,
                  outstanding=outstanding(ctx), recent=recent,
                  overdue=ctx.db.scalar(select(func.count()).select_from(Invoice).where(
                      Invoice.company_id == ctx.company.id, Invoice.status.in_(invoicing.OPEN_STATES),
                      Invoice.due_date < func.current_date())))
