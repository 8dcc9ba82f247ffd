"""Invoices: server-side totals in Decimal, gapless numbering at send time, credit notes, posting to the ledger.

Rounding rule: each line's net (quantity x unit price, less its discount percentage) and each line's tax (net x
tax rate) are computed exactly in Decimal and rounded half-up to the currency's minor unit; the invoice's
subtotal, tax and total are the sums of the rounded lines, so the document always adds up to the cent.

Life cycle (the status follows the money; a database trigger holds the same rule):

    draft --send--> sent --payment--> partially_paid --payment--> paid
    sent --credit note for the full total--> void      (nothing paid: the invoice is cancelled)
    sent/partially_paid --credit notes + payments covering the total--> paid
    paid/partially_paid --refund that gives money back on the invoice--> partially_paid/sent

A draft can be edited, deleted (soft) and restored. Once sent, the invoice and its lines are immutable: an
edit answers 409 and corrections go through credit notes. The status is always derived from the amounts:
void if fully credited; paid if payments + credits cover the total; partially_paid if something was paid;
sent otherwise.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from sqlalchemy import insert, select, update
from sqlalchemy.orm import Session

from ez360.core.money import allocate, format_money, round_minor
from operational_api.db.models import (
    Client,
    Company,
    CreditNote,
    Invoice,
    InvoiceLine,
    NumberSequence,
    Project,
    utcnow,
)
from operational_api.services import validation
from operational_api.services.errors import Conflict, ImmutableRecord, ValidationFailed
from operational_api.services.ledger import AR, REVENUE, TAX_PAYABLE, Leg, period_is_closed, period_of, post_entry

HUNDRED = Decimal(100)
MAX_QUANTITY = Decimal("99999999.9999")
OPEN_STATES = ("sent", "partially_paid")

# Every status change an invoice may make, and what makes it; any other change is refused.
TRANSITIONS: dict[tuple[str, str], str] = {
    ("draft", "sent"): "send",
    ("sent", "partially_paid"): "partial payment",
    ("sent", "paid"): "payment or credit note covering the amount due",
    ("sent", "void"): "credit note for the full total",
    ("partially_paid", "paid"): "payment or credit note covering the amount due",
    ("partially_paid", "sent"): "refund of everything paid",
    ("paid", "partially_paid"): "refund of part of what was paid",
    ("paid", "sent"): "refund of everything paid",
}


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
    validation.exact_decimal(line.quantity, "quantity", places=4, maximum=MAX_QUANTITY)
    validation.exact_decimal(line.discount_percent, "discount_percent", places=2, maximum=HUNDRED)
    validation.exact_decimal(line.tax_rate_percent, "tax_rate_percent", places=2, maximum=HUNDRED)
    validation.amount_minor(line.unit_price_minor, "unit_price", allow_zero=True)
    validation.text(line.description, "description", max_length=500)
    gross = line.quantity * line.unit_price_minor
    net = round_minor(gross * (HUNDRED - line.discount_percent) / HUNDRED)
    tax = round_minor(net * line.tax_rate_percent / HUNDRED)
    validation.amount_minor(net + tax, "line total", allow_zero=True)
    return net, tax


def amount_due(invoice: Invoice) -> int:
    return invoice.total_minor - invoice.amount_paid_minor - invoice.credited_minor


def derived_status(invoice: Invoice) -> str:
    if invoice.status == "draft":
        return "draft"
    if invoice.credited_minor == invoice.total_minor:
        return "void"
    if invoice.amount_paid_minor + invoice.credited_minor == invoice.total_minor:
        return "paid"
    return "partially_paid" if invoice.amount_paid_minor > 0 else "sent"


def settle_status(invoice: Invoice) -> None:
    """Set the status that the paid and credited amounts imply, refusing a change the life cycle forbids."""
    new = derived_status(invoice)
    if new != invoice.status and (invoice.status, new) not in TRANSITIONS:
        raise Conflict(f"invoice {invoice.number} cannot go from {invoice.status} to {new}")
    invoice.status = new


def is_overdue(invoice: Invoice, today: date | None = None) -> bool:
    today = today or datetime.now(UTC).date()
    return invoice.status in OPEN_STATES and invoice.due_date is not None and invoice.due_date < today


def lines_of(session: Session, invoice: Invoice) -> list[InvoiceLine]:
    return list(session.scalars(select(InvoiceLine).where(InvoiceLine.invoice_id == invoice.id)
                                .order_by(InvoiceLine.position)))


def _write_lines(session: Session, company: Company, invoice: Invoice, lines: list[LineInput]) -> None:
    if not lines:
        raise ValidationFailed("an invoice needs at least one line")
    if len(lines) > 200:
        raise ValidationFailed("an invoice has at most 200 lines")
    amounts = [line_amounts(line) for line in lines]  # all checked before anything is written
    subtotal = sum(net for net, _ in amounts)
    tax = sum(t for _, t in amounts)
    validation.amount_minor(subtotal + tax, "invoice total", allow_zero=True)
    for position, (line, (net, line_tax)) in enumerate(zip(lines, amounts, strict=True), start=1):
        session.add(InvoiceLine(
            company_id=company.id, invoice_id=invoice.id, position=position, description=line.description,
            quantity=line.quantity, unit_price_minor=line.unit_price_minor, discount_percent=line.discount_percent,
            tax_rate_percent=line.tax_rate_percent, net_minor=net, tax_minor=line_tax,
        ))
    session.flush()
    invoice.subtotal_minor, invoice.tax_minor, invoice.total_minor = subtotal, tax, subtotal + tax


def create_invoice(session: Session, company: Company, client: Client, lines: list[LineInput], *,
                   currency: str | None = None, project: Project | None = None, due_date: date | None = None,
                   notes: str = "") -> Invoice:
    if client.company_id != company.id:
        raise ValidationFailed("the client belongs to another company")
    if client.deleted_at is not None:
        raise Conflict(f"client {client.id} is deleted; restore it first")
    if not lines:
        raise ValidationFailed("an invoice needs at least one line")
    if project is not None and (project.company_id != company.id or project.client_id != client.id):
        raise ValidationFailed("the project belongs to another client or company")
    currency = validation.currency_code(currency or client.currency)
    validation.text(notes, "notes", max_length=1000)
    for line in lines:
        line_amounts(line)
    invoice = Invoice(company_id=company.id, client_id=client.id, project_id=project.id if project else None,
                      currency=currency, status="draft", due_date=due_date, notes=notes)
    session.add(invoice)
    session.flush()
    _write_lines(session, company, invoice, lines)
    session.flush()
    return invoice


def _require_draft(invoice: Invoice) -> None:
    if invoice.status != "draft":
        raise ImmutableRecord(f"invoice {invoice.number} is {invoice.status}: a sent invoice and its lines cannot "
                              "change; issue a credit note to correct it")
    if invoice.deleted_at is not None:
        raise Conflict(f"draft invoice {invoice.id} is deleted; restore it first")


_UNSET = object()


def update_draft(session: Session, company: Company, invoice: Invoice, *, lines: list[LineInput] | None = None,
                 due_date=_UNSET, notes: str | None = None, project=_UNSET, currency: str | None = None) -> Invoice:
    _require_draft(invoice)
    if notes is not None:
        invoice.notes = validation.text(notes, "notes", max_length=1000)
    if due_date is not _UNSET:
        invoice.due_date = due_date
    if currency is not None:
        invoice.currency = validation.currency_code(currency)
    if project is not _UNSET:
        if project is not None and (project.company_id != company.id or project.client_id != invoice.client_id):
            raise ValidationFailed("the project belongs to another client or company")
        invoice.project_id = project.id if project else None
    if lines is not None:
        for line in lines:
            line_amounts(line)
        for old in lines_of(session, invoice):
            session.delete(old)
        session.flush()
        _write_lines(session, company, invoice, lines)
    session.flush()
    return invoice


def delete_draft(session: Session, company: Company, invoice: Invoice) -> Invoice:
    _require_draft(invoice)
    invoice.deleted_at = utcnow()
    session.flush()
    return invoice


def restore_draft(session: Session, company: Company, invoice: Invoice) -> Invoice:
    if invoice.deleted_at is None:
        raise Conflict(f"invoice {invoice.id} is not deleted")
    invoice.deleted_at = None
    session.flush()
    return invoice


def next_number(session: Session, company_id: int, kind: str) -> int:
    """The next value of a company's gapless counter, taken inside the caller's transaction (row-locked)."""
    table = NumberSequence.__table__
    value = session.execute(
        update(table).where(table.c.company_id == company_id, table.c.kind == kind)
        .values(last_value=table.c.last_value + 1).returning(table.c.last_value)
    ).scalar()
    if value is None:
        session.execute(insert(table).values(company_id=company_id, kind=kind, last_value=1))
        value = 1
    return value


def next_invoice_number(session: Session, company: Company, issue_date: date) -> str:
    seq = next_number(session, company.id, "invoice")
    return company.invoice_number_format.format(prefix=company.invoice_prefix, year=issue_date.year, seq=seq)


def send_invoice(session: Session, company: Company, invoice: Invoice, issue_date: date) -> Invoice:
    """draft -> sent: numbers the invoice, fixes its dates and posts AR / revenue / tax."""
    if invoice.status != "draft":
        raise Conflict(f"invoice {invoice.number} is {invoice.status}; only a draft can be sent")
    if invoice.deleted_at is not None:
        raise Conflict(f"draft invoice {invoice.id} is deleted; restore it first")
    if invoice.total_minor <= 0:
        raise ValidationFailed("an invoice with a zero total cannot be sent")
    if invoice.due_date is not None and invoice.due_date < issue_date:
        raise ValidationFailed("due_date is before the issue date")
    if period_is_closed(session, company.id, issue_date):
        raise Conflict(f"the period {period_of(issue_date)} is closed: no invoice can be issued on {issue_date}")
    invoice.number = next_invoice_number(session, company, issue_date)
    invoice.issue_date = issue_date
    invoice.due_date = invoice.due_date or issue_date + timedelta(days=company.payment_terms_days)
    invoice.status = "sent"
    invoice.sent_at = utcnow()
    legs = [Leg(AR, debit_minor=invoice.total_minor)]
    if invoice.subtotal_minor:
        legs.append(Leg(REVENUE, credit_minor=invoice.subtotal_minor))
    if invoice.tax_minor:
        legs.append(Leg(TAX_PAYABLE, credit_minor=invoice.tax_minor))
    session.flush()
    post_entry(session, company, issue_date, f"Invoice {invoice.number}", invoice.currency, legs,
               source_type="invoice", source_id=invoice.id)
    return invoice


def issue_credit_note(session: Session, company: Company, invoice: Invoice, *, issue_date: date,
                      amount_minor: int | None = None, reason: str = "") -> CreditNote:
    """Credit (part of) what the client still owes on a sent invoice; the full total voids an unpaid invoice.

    The credited amount is split between net and tax in the invoice's proportions (largest remainder, no
    minor unit lost) and posted Dr revenue, Dr tax payable, Cr accounts receivable. To give back money already
    paid, record a refund on the payment first.
    """
    if invoice.company_id != company.id:
        raise ValidationFailed("the invoice belongs to another company")
    if invoice.status not in OPEN_STATES:
        raise Conflict(f"invoice {invoice.number or invoice.id} is {invoice.status}; only a sent or partially "
                       "paid invoice can be credited" + (" (delete a draft instead)" if invoice.status == "draft"
                                                         else ""))
    due = amount_due(invoice)
    amount = due if amount_minor is None else amount_minor
    validation.amount_minor(amount, "amount")
    if amount > due:
        raise ValidationFailed(f"amount: a credit note can credit at most the amount due "
                               f"({format_money(due, invoice.currency)}); "
                               "refund payments first to credit more")
    validation.text(reason, "reason", max_length=300)
    if period_is_closed(session, company.id, issue_date):
        raise Conflict(f"the period {period_of(issue_date)} is closed: no credit note can be issued on {issue_date}")
    if invoice.issue_date and issue_date < invoice.issue_date:
        raise ValidationFailed("issue_date: a credit note cannot predate its invoice")
    net, tax = allocate(amount, [invoice.subtotal_minor, invoice.tax_minor])
    seq = next_number(session, company.id, "credit_note")
    note = CreditNote(company_id=company.id, invoice_id=invoice.id, client_id=invoice.client_id,
                      number=f"CN-{company.invoice_prefix}-{issue_date.year}-{seq:05d}", currency=invoice.currency,
                      issue_date=issue_date, reason=reason, net_minor=net, tax_minor=tax, total_minor=amount)
    session.add(note)
    session.flush()
    invoice.credited_minor += amount
    settle_status(invoice)
    session.flush()
    legs = [Leg(AR, credit_minor=amount)]
    if net:
        legs.append(Leg(REVENUE, debit_minor=net))
    if tax:
        legs.append(Leg(TAX_PAYABLE, debit_minor=tax))
    post_entry(session, company, issue_date, f"Credit note {note.number} on {invoice.number}", invoice.currency,
               legs, source_type="credit_note", source_id=note.id)
    return note
