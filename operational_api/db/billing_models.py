"""Persistence of billing from work done, company tax rates, invoice links for clients and mail attachments
(issue 12, the staff web app).

- `billed_work` ties a time entry or an expense to the invoice it was billed on. Each time entry and each
  expense appears there at most once (UNIQUE), so nothing is billed twice even by two people at once; a row
  can be removed (the work released) only while its invoice is a draft, and billed work on a sent invoice
  cannot change its hours, rate, amount or billable flag (database triggers, migration 0007_billing_webapp).
- `tax_rates`: the rates offered on invoice lines, with one default.
- `invoice_links`: the link mailed to a client to view an invoice without an account (SHA-256 of the token).
- `email_attachments`: files attached to an outbox message (an invoice's PDF).
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal

from sqlalchemy import Boolean, CheckConstraint, DateTime, ForeignKey, LargeBinary, Numeric, String
from sqlalchemy.orm import Mapped, mapped_column

from operational_api.db.models import Base, utcnow


class BilledWork(Base):
    __tablename__ = "billed_work"
    __table_args__ = (
        CheckConstraint("(time_entry_id IS NULL) <> (expense_id IS NULL)", name="ck_billed_work_one_source"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    time_entry_id: Mapped[int | None] = mapped_column(ForeignKey("time_entries.id"), unique=True)
    expense_id: Mapped[int | None] = mapped_column(ForeignKey("expenses.id"), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class TaxRate(Base):
    __tablename__ = "tax_rates"
    __table_args__ = (CheckConstraint("rate_percent >= 0 AND rate_percent <= 100", name="ck_tax_rate_percent"),)
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    name: Mapped[str] = mapped_column(String(60))
    rate_percent: Mapped[Decimal] = mapped_column(Numeric(5, 2))
    is_default: Mapped[bool] = mapped_column(Boolean, default=False)


class InvoiceLink(Base):
    __tablename__ = "invoice_links"
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), index=True)
    invoice_id: Mapped[int] = mapped_column(ForeignKey("invoices.id"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), default=utcnow)


class EmailAttachment(Base):
    __tablename__ = "email_attachments"
    id: Mapped[int] = mapped_column(primary_key=True)
    outbox_id: Mapped[int] = mapped_column(ForeignKey("email_outbox.id"), index=True)
    filename: Mapped[str] = mapped_column(String(200))
    content_type: Mapped[str] = mapped_column(String(100))
    content: Mapped[bytes] = mapped_column(LargeBinary)
