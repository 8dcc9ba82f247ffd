"""What the ops world recorded, handed to the Stripe and ERPNext builders so all three agree."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import date


@dataclass
class CompanyFact:
    id: int
    slug: str
    name: str
    currency: str
    prefix: str
    stripe_account_id: str


@dataclass
class ClientFact:
    id: int
    company_slug: str
    name: str
    email: str
    currency: str
    pays_by_stripe: bool
    stripe_customer_id: str | None
    retainer_minor: int = 0  # monthly subscription amount for retainer clients


@dataclass
class InvoiceFact:
    id: int
    company_slug: str
    client_id: int
    number: str
    currency: str
    issue_date: date
    due_date: date
    subtotal_minor: int
    tax_minor: int
    total_minor: int


@dataclass
class PaymentFact:
    id: int
    company_slug: str
    client_id: int
    method: str
    currency: str
    amount_minor: int
    received_on: date
    reference: str
    invoice_numbers: list[str]
    stripe_charge_id: str | None = None
    stripe_payment_intent_id: str | None = None
    at_month_end: bool = False  # booked late in the ERP: the timing-difference discrepancy


@dataclass
class CreditNoteFact:
    company_slug: str
    number: str
    invoice_number: str
    client_id: int
    currency: str
    issue_date: date
    net_minor: int
    tax_minor: int
    total_minor: int


@dataclass
class OpsFacts:
    companies: list[CompanyFact] = field(default_factory=list)
    clients: list[ClientFact] = field(default_factory=list)
    invoices: list[InvoiceFact] = field(default_factory=list)
    payments: list[PaymentFact] = field(default_factory=list)
    credit_notes: list[CreditNoteFact] = field(default_factory=list)
    logins: list[dict] = field(default_factory=list)

    def company(self, slug: str) -> CompanyFact:
        return next(c for c in self.companies if c.slug == slug)

    def client(self, client_id: int) -> ClientFact:
        return next(c for c in self.clients if c.id == client_id)
