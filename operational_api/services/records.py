"""Clients, projects, time entries and expenses."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy.orm import Session

from ez360.money import exponent
from operational_api.db.models import Client, Company, Expense, Project, TimeEntry, User
from operational_api.services.errors import ValidationFailed
from operational_api.services.ledger import BANK, EXPENSE_ACCOUNTS, Leg, post_entry


def create_client(session: Session, company: Company, *, name: str, email: str, currency: str | None = None,
                  stripe_customer_id: str | None = None) -> Client:
    currency = (currency or company.base_currency).upper()
    exponent(currency)
    client = Client(company_id=company.id, name=name, email=email, currency=currency,
                    stripe_customer_id=stripe_customer_id)
    session.add(client)
    session.flush()
    return client


def create_project(session: Session, company: Company, client: Client, *, name: str, hourly_rate_minor: int,
                   budget_minor: int = 0, status: str = "active") -> Project:
    _same_company(company, client)
    if hourly_rate_minor < 0 or budget_minor < 0:
        raise ValidationFailed("rates and budgets cannot be negative")
    project = Project(company_id=company.id, client_id=client.id, name=name, currency=client.currency,
                      hourly_rate_minor=hourly_rate_minor, budget_minor=budget_minor, status=status)
    session.add(project)
    session.flush()
    return project


def log_time(session: Session, company: Company, project: Project, user: User, *, work_date: date,
             hours: Decimal, cost_rate_minor: int, billable: bool = True, description: str = "") -> TimeEntry:
    _same_company(company, project)
    if not isinstance(hours, Decimal) or not (Decimal(0) < hours <= Decimal(24)):
        raise ValidationFailed("hours must be a Decimal above 0 and at most 24")
    entry = TimeEntry(
        company_id=company.id, project_id=project.id, user_id=user.id, work_date=work_date, hours=hours,
        billable=billable, currency=project.currency, rate_minor=project.hourly_rate_minor if billable else 0,
        cost_rate_minor=cost_rate_minor, description=description,
    )
    session.add(entry)
    session.flush()
    return entry


def record_expense(session: Session, company: Company, *, category: str, amount_minor: int, incurred_on: date,
                   vendor: str = "", project: Project | None = None, billable: bool = False,
                   attachment_ref: str | None = None) -> Expense:
    if category not in EXPENSE_ACCOUNTS:
        raise ValidationFailed(f"unknown expense category {category!r}; choose one of {', '.join(EXPENSE_ACCOUNTS)}")
    if amount_minor <= 0:
        raise ValidationFailed("an expense amount must be positive")
    if project is not None:
        _same_company(company, project)
    expense = Expense(
        company_id=company.id, project_id=project.id if project else None, category=category, vendor=vendor,
        currency=company.base_currency, amount_minor=amount_minor, incurred_on=incurred_on, billable=billable,
        attachment_ref=attachment_ref,
    )
    session.add(expense)
    session.flush()
    post_entry(session, company, incurred_on, f"Expense: {vendor or category}", company.base_currency,
               [Leg(EXPENSE_ACCOUNTS[category], debit_minor=amount_minor), Leg(BANK, credit_minor=amount_minor)],
               source_type="expense", source_id=expense.id)
    return expense


def _same_company(company: Company, record) -> None:
    if record.company_id != company.id:
        raise ValidationFailed("the referenced record belongs to another company")
