"""Pages outside a company: the invoice link mailed to a client (no account: the link's random token is the key),
and /docs, Swagger UI vendored from npm (no CDN; its start-up script is a static file, so the CSP needs no
inline script)."""

from __future__ import annotations

from fastapi import APIRouter, Depends, HTTPException, Request, Response
from fastapi.responses import HTMLResponse
from sqlalchemy.orm import Session

from operational_api.api.context import get_db
from operational_api.app import SECURITY_HEADERS
from operational_api.db.models import Client, Company
from operational_api.services import billing, invoicing
from operational_api.services.invoice_pdf import render_pdf
from operational_api.web.rendering import render, templates

router = APIRouter(include_in_schema=False)


def _invoice(db: Session, token: str):
    invoice = billing.invoice_for_link(db, token[:100])
    if invoice is None:
        raise HTTPException(404, "this invoice link is not valid")
    return invoice


@router.get("/i/{token}")
def shared_invoice(request: Request, token: str, db: Session = Depends(get_db)):
    invoice = _invoice(db, token)
    response = render(request, "company/invoice_print.html", invoice=invoice, company=db.get(Company,
                                                                                            invoice.company_id),
                      client=db.get(Client, invoice.client_id), lines=invoicing.lines_of(db, invoice),
                      due=invoicing.amount_due(invoice), public=True, token=token)
    response.headers["Referrer-Policy"] = "no-referrer"  # the token is in the address
    response.headers["Cache-Control"] = "no-store"
    return response


@router.get("/i/{token}/pdf")
def shared_pdf(token: str, db: Session = Depends(get_db)):
    invoice = _invoice(db, token)
    return Response(render_pdf(db, db.get(Company, invoice.company_id), invoice), media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{invoice.number}.pdf"',
                             "Referrer-Policy": "no-referrer", "Cache-Control": "no-store"})


@router.get("/docs", response_class=HTMLResponse)
def docs(request: Request):
    response = templates.TemplateResponse(request, "docs.html", {})
    # Swagger UI draws its icons as data: images; scripts stay 'self' only, as everywhere.
    response.headers["Content-Security-Policy"] = SECURITY_HEADERS["Content-Security-Policy"] + \
        "; img-src 'self' data:"
    return response
