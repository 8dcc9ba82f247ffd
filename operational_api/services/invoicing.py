"""Invoices: server-side totals in Decimal, gapless numbering at send time, posting to the ledger.

Rounding rule: each line's net (quantity x unit price less discount) and each line's tax are rounded
half-up to the currency's minor unit; the invoice totals are the sums of the rounded lines.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from ez360.money import round_minor
from operational_api.db.models import Client, Company, Invoice, InvoiceLine, Project, utcnow
from operational_api.services.errors import Conflict, ValidationFailed
from operational_api.services.ledger import AR, REVENUE, TAX_PAYABLE, Leg, post_entry

HUNDRED = Decimal(100)


@dataclass(frozen=True)
class LineInput:
    description: str
    quantity: Decimal
    unit_price_minor: int
    tax_rate_percent: Decimal = Decimal(0)
    discount_percent: Decimal = Decimal(0)


def line_amounts(line: LineInput) -> tuple[int, int]:
    """(net_minor, tax_minor) for one line, each rounded half-up to a whole minor unit."""
    for name in ("quantity", "tax_rate_percent", "discount_percent"):
        if not isinstance(getattr(line, name), Decimal):
            raise ValidationFailed(f"{name} must be a Decimal")
    if line.quantity <= 0:
        raise ValidationFailed("quantity must be positive")
    if not (0 <= line.discount_percent <= HUNDRED) or not (0 <= line.tax_rate_percent <= HUNDRED):
        raise ValidationFailed("discount and tax rate must be percentages between 0 and 100")
    gross = line.quantity * line.unit_price_minor
    net = round_minor(gross * (HUNDRED - line.discount_percent) / HUNDRED)
    return net, round_minor(net * line.tax_rate_percent / HUNDRED)


def create_invoice(session: Session, company: Company, client: Client, lines: list[LineInput], *,
                   currency: str | None = None, project: Project | None = None) -> Invoice:
    if client.company_id != company.id:
        raise ValidationFailed("the client belongs to another company")
    if not lines:
        raise ValidationFailed("an invoice needs at least one line")
    invoice = Invoice(company_id=company.id, client_id=client.id, project_id=project.id if project else None,
                      currency=(currency or client.currency).upper(), status="draft")
    session.add(invoice)
    session.flush()
    subtotal = tax = 0
    for position, line in enumerate(lines, start=1):
        net, line_tax = line_amounts(line)
        subtotal, tax = subtotal + net, tax + line_tax
        session.add(InvoiceLine(
            company_id=company.id, invoice_id=invoice.id, position=position, description=line.description,
            quantity=line.quantity, unit_price_minor=line.unit_price_minor, discount_percent=line.discount_percent,
            tax_rate_percent=line.tax_rate_percent, net_minor=net, tax_minor=line_tax,
        ))
    invoice.subtotal_minor, invoice.tax_minor, invoice.total_minor = subtotal, tax, subtotal + tax
    session.flush()
    return invoice


def next_invoice_number(session: Session, company: Company, issue_date: date) -> str:
    numbered = session.scalar(
        select(func.count()).select_from(Invoice)
        .where(Invoice.company_id == company.id, Invoice.number.is_not(None))
    )
    return company.invoice_number_format.format(prefix=company.invoice_prefix, year=issue_date.year,
                                                seq=numbered + 1)


def send_invoice(session: Session, company: Company, invoice: Invoice, issue_date: date) -> Invoice:
    """draft -> sent: numbers the invoice, fixes its dates and posts AR / revenue / tax."""
    if invoice.status != "draft":
        raise Conflict(f"invoice {invoice.number} is {invoice.status}; only a draft can be sent")
    invoice.number = next_invoice_number(session, company, issue_date)
    invoice.issue_date = issue_date
    invoice.due_date = issue_date + timedelta(days=company.payment_terms_days)
    invoice.status = "sent"
    invoice.sent_at = utcnow()
    legs = [Leg(AR, debit_minor=invoice.total_minor), Leg(REVENUE, credit_minor=invoice.subtotal_minor)]
    if invoice.tax_minor:
        legs.append(Leg(TAX_PAYABLE, credit_minor=invoice.tax_minor))
    session.flush()
    post_entry(session, company, issue_date, f"Invoice {invoice.number}", invoice.currency, legs,
               source_type="invoice", source_id=invoice.id)
    return invoice
