"""An invoice as a PDF (fpdf2, built-in Helvetica: no font file, no network). Amounts are written with their
ISO currency code ("1,234.50 USD"), which the built-in fonts can always print."""

from __future__ import annotations

from fpdf import FPDF
from sqlalchemy.orm import Session

from ez360.core.money import format_money
from operational_api.db.models import Client, Company, Invoice
from operational_api.services import invoicing


def _text(value: str) -> str:
    return value.encode("latin-1", "replace").decode("latin-1")


def render_pdf(session: Session, company: Company, invoice: Invoice) -> bytes:
    client = session.get(Client, invoice.client_id)
    cur = invoice.currency
    pdf = FPDF(format="A4")
    pdf.set_title(_text(f"Invoice {invoice.number or 'draft'}"))
    pdf.set_author(_text(company.name))
    pdf.add_page()
    pdf.set_font("Helvetica", "B", 18)
    pdf.cell(0, 10, _text(company.name), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 11)
    title = f"Invoice {invoice.number}" if invoice.number else f"Draft invoice #{invoice.id} (not sent)"
    pdf.cell(0, 8, _text(title), new_x="LMARGIN", new_y="NEXT")
    for label, value in (("Bill to", client.name), ("Email", client.email),
                         ("Issued", invoice.issue_date.isoformat() if invoice.issue_date else "-"),
                         ("Due", invoice.due_date.isoformat() if invoice.due_date else "-"),
                         ("Status", invoice.status.replace("_", " "))):
        pdf.cell(30, 6, _text(label))
        pdf.cell(0, 6, _text(value or "-"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(4)
    widths = (80, 20, 30, 15, 35)
    pdf.set_font("Helvetica", "B", 10)
    for w, head in zip(widths, ("Description", "Qty", "Unit price", "Tax %", "Net"), strict=True):
        pdf.cell(w, 7, head, border="B", align="L" if head == "Description" else "R")
    pdf.ln()
    pdf.set_font("Helvetica", "", 10)
    for line in invoicing.lines_of(session, invoice):
        cells = (line.description, f"{line.quantity.normalize():f}", format_money(line.unit_price_minor, cur),
                 f"{line.tax_rate_percent.normalize():f}", format_money(line.net_minor, cur))
        for w, value, align in zip(widths, cells, "LRRRR", strict=True):
            pdf.cell(w, 6, _text(value[:48]), align=align)
        pdf.ln()
    pdf.ln(2)
    for label, minor in (("Subtotal", invoice.subtotal_minor), ("Tax", invoice.tax_minor),
                         ("Total", invoice.total_minor), ("Paid", invoice.amount_paid_minor),
                         ("Credited", invoice.credited_minor), ("Amount due", invoicing.amount_due(invoice))):
        if label in ("Paid", "Credited") and not minor:
            continue
        pdf.set_font("Helvetica", "B" if label in ("Total", "Amount due") else "", 10)
        pdf.cell(sum(widths) - 35, 6, label, align="R")
        pdf.cell(35, 6, _text(format_money(minor, cur)), align="R", new_x="LMARGIN", new_y="NEXT")
    if invoice.notes:
        pdf.ln(4)
        pdf.set_font("Helvetica", "", 10)
        pdf.multi_cell(0, 5, _text(invoice.notes))
    return bytes(pdf.output())
