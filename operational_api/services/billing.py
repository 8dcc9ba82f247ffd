"""Billing from work done, tax rates, and mailing a sent invoice to its client.

- `unbilled_work`: a client's billable time entries (not deleted, with a rate) and billable expenses (on the
  client's projects), in the client's currency, not yet on a live invoice.
- `draft_from_work` drafts one invoice from that work: one line per project and hourly rate (the rate each
  entry carries, which is the project's rate unless it was overridden when the time was logged), taxed at the
  company's default rate, and one line per expense (re-billed at cost, untaxed). Each entry and expense is
  linked to the invoice in `billed_work`, whose UNIQUE columns make billing the same work twice impossible,
  also for two people drafting at the same moment (the second gets a Conflict; see migration
  0007_billing_webapp for the triggers that keep billed work on sent invoices final).
- `release`: a draft gives its work back (before it is deleted); `delete_draft` does both, for the API and
  the pages alike.
- Tax rates: each company has named rates with one default; sensible defaults come from its currency.
- `mail_invoice`: after sending, the client gets an email through the outbox with the PDF attached and a
  link to view the invoice online without an account; `send_and_mail` sends and mails in one step, so the
  API and the pages cannot disagree on what sending does.
"""

from __future__ import annotations

import hashlib
import secrets
from collections import defaultdict
from dataclasses import dataclass
from datetime import date
from decimal import Decimal

from babel import numbers
from sqlalchemy import delete, exists, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from ez360.core.money import from_minor
from operational_api.db.billing_models import BilledWork, EmailAttachment, InvoiceLink, TaxRate
from operational_api.db.models import Client, Company, Expense, Invoice, Project, TimeEntry
from operational_api.security import mail
from operational_api.services import invoicing, validation
from operational_api.services.errors import Conflict, ValidationFailed
from operational_api.services.invoice_pdf import render_pdf

# Standard rates a new company starts with, by book currency (editable in the company settings).
STANDARD_RATES: dict[str, tuple[str, str]] = {
    "EUR": ("VAT standard", "20"), "GBP": ("VAT standard", "20"), "CHF": ("VAT standard", "8.1"),
    "SEK": ("VAT standard", "25"), "NOK": ("VAT standard", "25"), "DKK": ("VAT standard", "25"),
    "PLN": ("VAT standard", "23"), "AUD": ("GST", "10"), "NZD": ("GST", "15"), "CAD": ("GST", "5"),
    "SGD": ("GST", "9"), "INR": ("GST", "18"), "JPY": ("Consumption tax", "10"), "ZAR": ("VAT standard", "15"),
    "MXN": ("IVA", "16"), "BRL": ("ISS", "5"), "KWD": ("No tax", "0"), "BHD": ("VAT standard", "10"),
}


@dataclass(frozen=True)
class Work:
    time_entries: list[TimeEntry]
    expenses: list[Expense]

    @property
    def empty(self) -> bool:
        return not self.time_entries and not self.expenses


# -- tax rates ---------------------------------------------------------------------------------------------

def default_rates(currency: str) -> list[tuple[str, Decimal, bool]]:
    """(name, percent, is_default) a company in `currency` starts with."""
    name, percent = STANDARD_RATES.get(currency.upper(), ("Sales tax", "0"))
    rates = [("No tax", Decimal("0"), percent == "0")]
    if percent != "0":
        rates.append((name, Decimal(percent), True))
    return rates


def install_default_tax_rates(session: Session, company: Company) -> list[TaxRate]:
    rows = [TaxRate(company_id=company.id, name=name, rate_percent=percent, is_default=is_default)
            for name, percent, is_default in default_rates(company.base_currency)]
    session.add_all(rows)
    session.flush()
    return rows


def tax_rates(session: Session, company: Company) -> list[TaxRate]:
    return list(session.scalars(select(TaxRate).where(TaxRate.company_id == company.id)
                                .order_by(TaxRate.rate_percent, TaxRate.id)))


def default_tax_percent(session: Session, company: Company) -> Decimal:
    rate = session.scalar(select(TaxRate.rate_percent).where(TaxRate.company_id == company.id,
                                                             TaxRate.is_default.is_(True)).limit(1))
    return Decimal(rate) if rate is not None else Decimal(0)


def add_tax_rate(session: Session, company: Company, *, name: str, rate_percent: Decimal,
                 make_default: bool = False) -> TaxRate:
    validation.text(name, "name", max_length=60, required=True)
    validation.exact_decimal(rate_percent, "rate_percent", places=2, maximum=Decimal(100))
    if make_default:
        for row in tax_rates(session, company):
            row.is_default = False
    row = TaxRate(company_id=company.id, name=name.strip(), rate_percent=rate_percent, is_default=make_default)
    session.add(row)
    session.flush()
    return row


def make_default(session: Session, company: Company, rate: TaxRate) -> None:
    if rate.company_id != company.id:
        raise ValidationFailed("the tax rate belongs to another company")
    for row in tax_rates(session, company):
        row.is_default = row.id == rate.id
    session.flush()


# -- billing from work -------------------------------------------------------------------------------------

def unbilled_work(session: Session, company: Company, client: Client) -> Work:
    if client.company_id != company.id:
        raise ValidationFailed("the client belongs to another company")
    live = select(BilledWork.id).join(Invoice, Invoice.id == BilledWork.invoice_id).where(Invoice.deleted_at.is_(None))
    time_entries = session.scalars(
        select(TimeEntry).join(Project, Project.id == TimeEntry.project_id)
        .where(TimeEntry.company_id == company.id, Project.client_id == client.id, TimeEntry.deleted_at.is_(None),
               TimeEntry.billable.is_(True), TimeEntry.rate_minor > 0, TimeEntry.currency == client.currency,
               ~exists(live.where(BilledWork.time_entry_id == TimeEntry.id)))
        .order_by(TimeEntry.project_id, TimeEntry.work_date, TimeEntry.id)).all()
    expenses = session.scalars(
        select(Expense).join(Project, Project.id == Expense.project_id)
        .where(Expense.company_id == company.id, Project.client_id == client.id, Expense.deleted_at.is_(None),
               Expense.billable.is_(True), Expense.currency == client.currency,
               ~exists(live.where(BilledWork.expense_id == Expense.id)))
        .order_by(Expense.incurred_on, Expense.id)).all()
    return Work(list(time_entries), list(expenses))


def _hours(value: Decimal) -> str:
    return f"{Decimal(value).normalize():f}"


def work_lines(session: Session, work: Work, tax_percent: Decimal) -> list[invoicing.LineInput]:
    """The invoice lines for this work: time per project and rate, then each expense at cost."""
    groups: dict[tuple[int, int], list[TimeEntry]] = defaultdict(list)
    for entry in work.time_entries:
        groups[(entry.project_id, entry.rate_minor)].append(entry)
    lines = []
    for (project_id, rate), entries in groups.items():
        project = session.get(Project, project_id)
        hours = sum((Decimal(e.hours) for e in entries), Decimal(0))
        first, last = min(e.work_date for e in entries), max(e.work_date for e in entries)
        period = f"{first:%Y-%m-%d}" if first == last else f"{first:%Y-%m-%d} to {last:%Y-%m-%d}"
        lines.append(invoicing.LineInput(f"{project.name}: {_hours(hours)} h, {period}"[:500], hours, rate,
                                         tax_rate_percent=tax_percent))
    for expense in work.expenses:
        label = f"{expense.category.title()} expense" + (f", {expense.vendor}" if expense.vendor else "")
        lines.append(invoicing.LineInput(f"{label} ({expense.incurred_on:%Y-%m-%d})"[:500], Decimal(1),
                                         expense.amount_minor))
    return lines


def draft_from_work(session: Session, company: Company, client: Client, *, due_date: date | None = None,
                    notes: str = "") -> Invoice:
    """A draft invoice for all of the client's unbilled work, which is then billed (linked) at once."""
    work = unbilled_work(session, company, client)
    if work.empty:
        raise Conflict(f"{client.name} has no unbilled billable time or expenses")
    lines = work_lines(session, work, default_tax_percent(session, company))
    invoice = invoicing.create_invoice(session, company, client, lines, due_date=due_date, notes=notes)
    # Links left behind by deleted drafts give way (the trigger allows removing a draft's links only).
    stale = select(BilledWork.id).join(Invoice, Invoice.id == BilledWork.invoice_id).where(
        Invoice.deleted_at.is_not(None), or_(
            BilledWork.time_entry_id.in_([e.id for e in work.time_entries]),
            BilledWork.expense_id.in_([e.id for e in work.expenses])))
    session.execute(delete(BilledWork).where(BilledWork.id.in_(stale)).execution_options(synchronize_session=False))
    session.add_all([BilledWork(company_id=company.id, invoice_id=invoice.id, time_entry_id=e.id)
                     for e in work.time_entries])
    session.add_all([BilledWork(company_id=company.id, invoice_id=invoice.id, expense_id=e.id)
                     for e in work.expenses])
    try:
        session.flush()
    except IntegrityError as exc:  # another invoice took some of this work since we read it
        raise Conflict("some of this work was just billed on another invoice; reload and try again") from exc
    return invoice


def billed_on(session: Session, invoice: Invoice) -> Work:
    entries = session.scalars(select(TimeEntry).join(BilledWork, BilledWork.time_entry_id == TimeEntry.id)
                              .where(BilledWork.invoice_id == invoice.id).order_by(TimeEntry.work_date)).all()
    expenses = session.scalars(select(Expense).join(BilledWork, BilledWork.expense_id == Expense.id)
                               .where(BilledWork.invoice_id == invoice.id).order_by(Expense.incurred_on)).all()
    return Work(list(entries), list(expenses))


def release(session: Session, company: Company, invoice: Invoice) -> int:
    """Give a draft's work back (it can be billed again); refused for a sent invoice, in the database too."""
    if invoice.company_id != company.id:
        raise ValidationFailed("the invoice belongs to another company")
    if invoice.status != "draft":
        raise Conflict(f"invoice {invoice.number} is {invoice.status}: its work stays billed")
    result = session.execute(delete(BilledWork).where(BilledWork.invoice_id == invoice.id)
                             .execution_options(synchronize_session=False))
    return result.rowcount


def delete_draft(session: Session, company: Company, invoice: Invoice) -> Invoice:
    """Delete a draft and give its work back, so the time and expenses can be billed on another invoice."""
    release(session, company, invoice)
    return invoicing.delete_draft(session, company, invoice)


def billed_status(session: Session, company_id: int, entry_ids: list[int], column: str) -> dict[int, int]:
    """{time entry or expense id: invoice id} for those on a live invoice."""
    if not entry_ids:
        return {}
    col = getattr(BilledWork, column)
    rows = session.execute(select(col, BilledWork.invoice_id).join(Invoice, Invoice.id == BilledWork.invoice_id)
                           .where(BilledWork.company_id == company_id, col.in_(entry_ids),
                                  Invoice.deleted_at.is_(None)))
    return dict(rows.all())


# -- the client's link and mail ----------------------------------------------------------------------------

def _digest(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def issue_link(session: Session, company: Company, invoice: Invoice) -> str:
    token = secrets.token_urlsafe(32)
    session.add(InvoiceLink(company_id=company.id, invoice_id=invoice.id, token_hash=_digest(token)))
    session.flush()
    return token


def invoice_for_link(session: Session, token: str) -> Invoice | None:
    link = session.scalar(select(InvoiceLink).where(InvoiceLink.token_hash == _digest(token or "")))
    if link is None:
        return None
    invoice = session.get(Invoice, link.invoice_id)
    return invoice if invoice is not None and invoice.status != "draft" else None


def mail_invoice(session: Session, company: Company, invoice: Invoice, *, pdf: bytes, link: str,
                 amount_text: str) -> int | None:
    """Queue the invoice mail to the client (PDF attached); None when the client has no address."""
    client = session.get(Client, invoice.client_id)
    if not client.email.strip():
        return None
    body = (f"Hello {client.name},\n\nplease find attached invoice {invoice.number} from {company.name} for "
            f"{amount_text}, due on {invoice.due_date:%Y-%m-%d}.\n\nView it online: {mail.LINK}\n\nThank you.")
    # The link is a secret: the outbox keeps it encrypted and forgets it once the mail is delivered.
    row = mail.enqueue(session, client.email.strip(), f"Invoice {invoice.number} from {company.name}"[:200], body,
                       link=link)
    session.add(EmailAttachment(outbox_id=row.id, filename=f"{invoice.number}.pdf", content_type="application/pdf",
                                content=pdf))
    session.flush()
    return row.id


def send_and_mail(session: Session, company: Company, invoice: Invoice, issue_date: date, *,
                  public_base_url: str) -> int | None:
    """Send the invoice (number it, post it) and queue its mail to the client with the PDF and an online link.

    Returns the outbox row to deliver once the transaction has committed (None: the client has no address)."""
    invoicing.send_invoice(session, company, invoice, issue_date)
    token = issue_link(session, company, invoice)
    link = f"{public_base_url.rstrip('/')}/i/{token}"
    amount = numbers.format_currency(from_minor(invoice.total_minor, invoice.currency), invoice.currency,
                                     locale="en_US")
    return mail_invoice(session, company, invoice, pdf=render_pdf(session, company, invoice), link=link,
                        amount_text=amount)
