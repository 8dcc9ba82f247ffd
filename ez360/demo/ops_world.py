"""Writes the ops side of the demo world through the service layer, so every business rule holds."""

from __future__ import annotations

import calendar
import random
from collections.abc import Callable
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from sqlalchemy.orm import Session

from ez360.core.money import exponent
from ez360.demo.catalog import (
    CLIENT_NAMES,
    COMPANIES,
    COST_RATE_MINOR,
    EXPENSE_CATEGORIES,
    HOURLY_RATE_MINOR,
    PROJECT_KINDS,
    ROLES_CAST,
    STRIPE_CURRENCIES,
    WORLD_END,
    WORLD_START,
    CompanySpec,
)
from ez360.demo.facts import ClientFact, CompanyFact, CreditNoteFact, InvoiceFact, OpsFacts, PaymentFact
from ez360.demo.ids import IdFactory
from operational_api.db.audit_trail import Actor, set_actor
from operational_api.db.models import Client, Company, Invoice, User
from operational_api.services import companies, invoicing, payments, records, usage
from operational_api.services.ledger import BANK, Leg, post_entry

Progress = Callable[[str], None]
CREDIT_NOTE_EVERY = 40  # every 40th invoice (bank-paying clients only) is partly credited


def month_starts(start: date, end: date) -> list[date]:
    months, current = [], start.replace(day=1)
    while current <= end:
        months.append(current)
        current = (current + timedelta(days=32)).replace(day=1)
    return months


def month_end(day: date) -> date:
    return day.replace(day=calendar.monthrange(day.year, day.month)[1])


class OpsWorldWriter:
    def __init__(self, session: Session, rng: random.Random, ids: IdFactory, scale: int, password_hash: str):
        self.s, self.rng, self.ids, self.scale = session, rng, ids, scale
        self.password_hash = password_hash
        self.facts = OpsFacts()
        self._month_end_payment_marked = False
        self._invoices_written = 0
        self._credit_pending = False
        set_actor(session, Actor(None, "system:demo-seed"))  # the audit trail names who wrote the demo

    def write(self, progress: Progress) -> OpsFacts:
        for spec in COMPANIES:
            progress(f"ops: {spec.name}")
            self._write_company(spec)
        return self.facts

    def _write_company(self, spec: CompanySpec) -> None:
        acct = self.ids.stripe("acct")
        company = companies.create_company(
            self.s, slug=spec.slug, name=spec.name, base_currency=spec.currency, invoice_prefix=spec.prefix,
            plan=spec.plan, stripe_account_id=acct,
        )
        self.facts.companies.append(CompanyFact(company.id, spec.slug, spec.name, spec.currency, spec.prefix, acct))
        people = self._write_people(company, spec)
        opening = 5_000_000 * 10 ** exponent(spec.currency) // 100
        post_entry(self.s, company, WORLD_START, "Opening balance", spec.currency,
                   [Leg(BANK, debit_minor=opening), Leg("3000", credit_minor=opening)], source_type="opening")
        staff = [u for role, u in people if role in ("staff", "admin", "owner")]
        projects = self._write_clients_and_projects(company, spec)
        for month in month_starts(WORLD_START, WORLD_END):
            self._write_month(company, spec, month, projects, staff, people)
        self.s.flush()

    def _write_people(self, company: Company, spec: CompanySpec) -> list[tuple[str, User]]:
        people = []
        for role, label in ROLES_CAST:
            local = label.lower().replace(" ", ".")
            user = companies.create_user(self.s, email=f"{local}@{spec.slug}.example.com",
                                         full_name=f"{label} of {spec.name.split()[0]}",
                                         password_hash=self.password_hash)
            companies.add_member(self.s, company, user, role)
            people.append((role, user))
            self.facts.logins.append({"company": spec.slug, "role": role, "email": user.email})
        return people

    def _write_clients_and_projects(self, company: Company, spec: CompanySpec) -> list:
        projects = []
        for i in range(6 * self.scale):
            currency = spec.client_currencies[i % len(spec.client_currencies)]
            base_name = CLIENT_NAMES[(i + len(spec.slug)) % len(CLIENT_NAMES)]
            name = base_name if i < len(CLIENT_NAMES) else f"{base_name} {i // len(CLIENT_NAMES) + 1}"
            by_stripe = currency in STRIPE_CURRENCIES and self.rng.random() < 0.6
            customer = self.ids.stripe("cus") if by_stripe else None
            email = f"ap@{name.lower().replace(' & ', '-').replace(' ', '-')}.example.org"
            client = records.create_client(self.s, company, name=name, email=email, currency=currency,
                                           stripe_customer_id=customer)
            retainer = HOURLY_RATE_MINOR[currency] * 10 if by_stripe and i % 3 == 0 else 0
            self.facts.clients.append(ClientFact(client.id, spec.slug, name, email, currency, by_stripe, customer,
                                                 retainer))
            for _ in range(1 + (i % 2)):
                kind = PROJECT_KINDS[self.rng.randrange(len(PROJECT_KINDS))]
                rate = HOURLY_RATE_MINOR[currency]
                projects.append(records.create_project(self.s, company, client, name=f"{kind} for {name}",
                                                       hourly_rate_minor=rate, budget_minor=rate * 400))
        return projects

    def _write_month(self, company, spec, month, projects, staff, people) -> None:
        last = month_end(month)
        active = [p for p in projects if self.rng.random() < 0.75]
        for project in active:
            hours_logged = Decimal(0)
            for _ in range(self.rng.randint(3, 6)):
                hours = Decimal(self.rng.randint(4, 16)) / 2
                worker = staff[self.rng.randrange(len(staff))]
                day = month + timedelta(days=self.rng.randrange(last.day))
                records.log_time(self.s, company, project, worker, work_date=day, hours=hours,
                                 cost_rate_minor=COST_RATE_MINOR[project.currency], description="Delivery work")
                hours_logged += hours
            self._invoice_project_month(company, spec, project, month, last, hours_logged)
        for category, vendor, amount in EXPENSE_CATEGORIES:
            if self.rng.random() < 0.7:
                amount_minor = amount * 10 ** exponent(spec.currency) // 100 * self.rng.randint(80, 120) // 100
                records.record_expense(self.s, company, category=category, vendor=vendor, amount_minor=amount_minor,
                                       incurred_on=month + timedelta(days=self.rng.randrange(last.day)),
                                       attachment_ref=f"receipts/{spec.slug}/{month:%Y-%m}/{category}.pdf")
        self._write_usage(company, month, last, people)

    def _invoice_project_month(self, company, spec, project, month, last, hours) -> None:
        lines = [invoicing.LineInput(f"Consulting, {month:%B %Y}", hours, project.hourly_rate_minor,
                                     tax_rate_percent=spec.tax_rate)]
        if self.rng.random() < 0.3:
            lines.append(invoicing.LineInput("Workshop (fixed fee)", Decimal(1), project.hourly_rate_minor * 6,
                                             tax_rate_percent=spec.tax_rate, discount_percent=Decimal(10)))
        client = self.facts.client(project.client_id)
        invoice = invoicing.create_invoice(self.s, company, self._client_row(client.id), lines, project=project)
        invoicing.send_invoice(self.s, company, invoice, last)
        self.facts.invoices.append(InvoiceFact(
            invoice.id, spec.slug, client.id, invoice.number, invoice.currency, invoice.issue_date,
            invoice.due_date, invoice.subtotal_minor, invoice.tax_minor, invoice.total_minor,
        ))
        self._invoices_written += 1
        self._credit_pending |= self._invoices_written % CREDIT_NOTE_EVERY == CREDIT_NOTE_EVERY // 2
        if self._credit_pending and not client.pays_by_stripe:
            self._credit_pending = False
            self._credit(company, spec, invoice)  # credited and left open: a 1,000 invoice owes 600 after 400 credit
            return
        self._pay(company, spec, client, invoice)

    def _credit(self, company, spec, invoice: Invoice) -> None:
        """A credit note of 40% of the invoice, on its issue date (no payment is recorded for it)."""
        note = invoicing.issue_credit_note(self.s, company, invoice, issue_date=invoice.issue_date,
                                           amount_minor=invoice.total_minor * 2 // 5, reason="Agreed discount")
        self.facts.credit_notes.append(CreditNoteFact(
            spec.slug, note.number, invoice.number, invoice.client_id, note.currency, note.issue_date,
            note.net_minor, note.tax_minor, note.total_minor))

    def _client_row(self, client_id: int) -> Client:
        return self.s.get(Client, client_id)

    def _pay(self, company, spec, client: ClientFact, invoice: Invoice) -> None:
        if client.pays_by_stripe:
            received = invoice.issue_date + timedelta(days=self.rng.randint(2, 20))
            # one payment lands on a month's last day, so the ERP can book it a day late (timing difference)
            marked = not self._month_end_payment_marked and received.month != invoice.issue_date.month
            if marked:
                received, self._month_end_payment_marked = month_end(received), True
            if received > WORLD_END:
                return
            self._record(company, spec, client, [(invoice, invoice.total_minor)], invoice.total_minor, received,
                         "stripe", at_month_end=marked)
            return
        received = invoice.issue_date + timedelta(days=self.rng.randint(10, 45))
        if received > WORLD_END:
            return
        if self.rng.random() < 0.15:  # paid in two instalments
            first = invoice.total_minor // 2
            self._record(company, spec, client, [(invoice, first)], first, received, "bank")
            second_day = received + timedelta(days=self.rng.randint(7, 30))
            if second_day <= WORLD_END:
                rest = invoice.total_minor - first
                self._record(company, spec, client, [(invoice, rest)], rest, second_day, "bank")
            return
        overpay = 10 ** exponent(invoice.currency) * 100 if self.rng.random() < 0.05 else 0
        self._record(company, spec, client, [(invoice, invoice.total_minor)], invoice.total_minor + overpay,
                     received, "bank")

    def _record(self, company, spec, client: ClientFact, allocations, amount, received, method, at_month_end=False):
        charge = intent = None
        if method == "stripe":
            charge, intent = self.ids.stripe("ch"), self.ids.stripe("pi")
            reference = charge
        else:
            reference = f"BANK-{spec.prefix}-{received:%Y%m%d}-{self.rng.randrange(10**6):06d}"
        payment = payments.record_payment(
            self.s, company, self._client_row(client.id), method=method, currency=allocations[0][0].currency,
            amount_minor=amount, received_on=received, reference=reference,
            allocations=[payments.Allocation(inv, amt) for inv, amt in allocations],
            stripe_payment_intent_id=intent, stripe_charge_id=charge,
        )
        self.facts.payments.append(PaymentFact(
            payment.id, spec.slug, client.id, method, payment.currency, amount, received, reference,
            [inv.number for inv, _ in allocations], charge, intent, at_month_end,
        ))

    def _write_usage(self, company, month, last, people) -> None:
        for _role, user in people:
            for _ in range(self.rng.randint(4, 14)):
                day = month + timedelta(days=self.rng.randrange(last.day))
                at = datetime.combine(day, time(self.rng.randint(7, 19), self.rng.randrange(60)), UTC)
                usage.record_usage_event(self.s, company, user, "login", at)
                if self.rng.random() < 0.5:
                    feature = ("time_logged", "report_viewed", "invoice_created", "client_created")[
                        self.rng.randrange(4)]
                    usage.record_usage_event(self.s, company, user, feature, at + timedelta(minutes=5))
        if month == WORLD_START:
            owner = people[0][1]
            at = datetime.combine(month, time(9), UTC)
            for step in ("stripe_connected", "teammate_invited", "two_factor_enabled"):
                usage.record_usage_event(self.s, company, owner, step, at)
