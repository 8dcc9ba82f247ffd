"""Clients, projects, time entries and expenses: create, change, soft delete and restore.

Soft delete sets `deleted_at` (lists hide the row, the audit trail keeps its history); restore clears it. An
expense is in the books: recording it posts an entry, changing its amount, category or date reverses that entry
and posts a new one, deleting it reverses it and restoring it posts it again.
"""

from __future__ import annotations

from datetime import date
from decimal import Decimal

from sqlalchemy import select
from sqlalchemy.orm import Session

from operational_api.db.models import Client, Company, Expense, Invoice, JournalEntry, Project, TimeEntry, User, utcnow
from operational_api.services import plans, validation
from operational_api.services.errors import Conflict, ValidationFailed
from operational_api.services.ledger import BANK, EXPENSE_ACCOUNTS, Leg, post_entry, reverse_entry

PROJECT_STATUSES = ("active", "on_hold", "completed", "cancelled")
# Allowed project status changes; a cancelled project stays cancelled (restore a deleted one instead).
PROJECT_TRANSITIONS = {
    "active": {"on_hold", "completed", "cancelled"},
    "on_hold": {"active", "completed", "cancelled"},
    "completed": {"active"},
    "cancelled": set(),
}
OPEN_INVOICE_STATES = ("sent", "partially_paid")


def _same_company(company: Company, record) -> None:
    if record.company_id != company.id:
        raise ValidationFailed("the referenced record belongs to another company")


def _not_deleted(record, what: str) -> None:
    if getattr(record, "deleted_at", None) is not None:
        raise Conflict(f"{what} {record.id} is deleted; restore it first")


NAMES = {"clients": "client", "projects": "project", "time_entries": "time entry", "expenses": "expense",
         "invoices": "invoice"}


def _soft_delete(session: Session, record) -> None:
    if record.deleted_at is not None:
        raise Conflict(f"{NAMES[type(record).__tablename__]} {record.id} is already deleted")
    record.deleted_at = utcnow()
    session.flush()


def _restore(session: Session, record) -> None:
    if record.deleted_at is None:
        raise Conflict(f"{NAMES[type(record).__tablename__]} {record.id} is not deleted")
    record.deleted_at = None
    session.flush()


# -- clients -----------------------------------------------------------------------------------------------

def create_client(session: Session, company: Company, *, name: str, email: str, currency: str | None = None,
                  stripe_customer_id: str | None = None) -> Client:
    currency = validation.currency_code(currency or company.base_currency)
    validation.text(name, "name", max_length=200, required=True)
    validation.text(email, "email", max_length=254)
    if stripe_customer_id is not None:
        validation.text(stripe_customer_id, "stripe_customer_id", max_length=60)
    plans.check_room(session, company, "clients")
    client = Client(company_id=company.id, name=name, email=email, currency=currency,
                    stripe_customer_id=stripe_customer_id)
    session.add(client)
    session.flush()
    return client


def update_client(session: Session, company: Company, client: Client, **changes) -> Client:
    _same_company(company, client)
    _not_deleted(client, "client")
    for key, value in changes.items():
        if key == "name":
            validation.text(value, "name", max_length=200, required=True)
        elif key == "email":
            validation.text(value, "email", max_length=254)
        elif key == "stripe_customer_id":
            if value is not None:
                validation.text(value, "stripe_customer_id", max_length=60)
        elif key == "currency":
            value = validation.currency_code(value)
            if value != client.currency and _client_has_books(session, client):
                raise Conflict("the client's currency cannot change once it has projects or invoices")
        else:
            raise ValidationFailed(f"cannot change {key}")
        setattr(client, key, value)
    session.flush()
    return client


def _client_has_books(session: Session, client: Client) -> bool:
    return bool(session.scalar(select(Project.id).where(Project.client_id == client.id).limit(1))
                or session.scalar(select(Invoice.id).where(Invoice.client_id == client.id).limit(1)))


def delete_client(session: Session, company: Company, client: Client) -> Client:
    _same_company(company, client)
    if session.scalar(select(Invoice.id).where(Invoice.client_id == client.id,
                                               Invoice.status.in_(OPEN_INVOICE_STATES)).limit(1)):
        raise Conflict(f"client {client.id} has unpaid invoices; settle or credit them before deleting the client")
    _soft_delete(session, client)
    return client


def restore_client(session: Session, company: Company, client: Client) -> Client:
    _same_company(company, client)
    if client.deleted_at is not None:
        plans.check_room(session, company, "clients")
    _restore(session, client)
    return client


# -- projects ----------------------------------------------------------------------------------------------

def create_project(session: Session, company: Company, client: Client, *, name: str, hourly_rate_minor: int,
                   budget_minor: int = 0, status: str = "active") -> Project:
    _same_company(company, client)
    _not_deleted(client, "client")
    if hourly_rate_minor < 0 or budget_minor < 0:
        raise ValidationFailed("rates and budgets cannot be negative")
    validation.amount_minor(hourly_rate_minor, "hourly_rate", allow_zero=True)
    validation.amount_minor(budget_minor, "budget", allow_zero=True)
    validation.text(name, "name", max_length=200, required=True)
    if status not in PROJECT_STATUSES:
        raise ValidationFailed(f"status: choose one of {', '.join(PROJECT_STATUSES)}")
    if status == "active":
        plans.check_room(session, company, "active_projects")
    project = Project(company_id=company.id, client_id=client.id, name=name, currency=client.currency,
                      hourly_rate_minor=hourly_rate_minor, budget_minor=budget_minor, status=status)
    session.add(project)
    session.flush()
    return project


def update_project(session: Session, company: Company, project: Project, **changes) -> Project:
    _same_company(company, project)
    _not_deleted(project, "project")
    for key, value in changes.items():
        if key == "name":
            validation.text(value, "name", max_length=200, required=True)
        elif key in ("hourly_rate_minor", "budget_minor"):
            validation.amount_minor(value, key.removesuffix("_minor"), allow_zero=True)
        elif key == "status":
            change_project_status(session, company, project, value)
            continue
        else:
            raise ValidationFailed(f"cannot change {key}")
        setattr(project, key, value)
    session.flush()
    return project


def change_project_status(session: Session, company: Company, project: Project, status: str) -> Project:
    if status not in PROJECT_STATUSES:
        raise ValidationFailed(f"status: choose one of {', '.join(PROJECT_STATUSES)}")
    if status == project.status:
        return project
    if status not in PROJECT_TRANSITIONS[project.status]:
        raise Conflict(f"a {project.status} project cannot become {status}")
    if status == "active":
        plans.check_room(session, company, "active_projects")
    project.status = status
    session.flush()
    return project


def delete_project(session: Session, company: Company, project: Project) -> Project:
    _same_company(company, project)
    _soft_delete(session, project)
    return project


def restore_project(session: Session, company: Company, project: Project) -> Project:
    _same_company(company, project)
    if project.deleted_at is not None:
        client = session.get(Client, project.client_id)
        _not_deleted(client, "client")
        if project.status == "active":
            plans.check_room(session, company, "active_projects")
    _restore(session, project)
    return project


# -- time --------------------------------------------------------------------------------------------------

def _check_hours(hours: Decimal) -> Decimal:
    return validation.exact_decimal(hours, "hours", places=2, minimum=Decimal(0), maximum=Decimal(24),
                                    allow_minimum=False)


def log_time(session: Session, company: Company, project: Project, user: User, *, work_date: date,
             hours: Decimal, cost_rate_minor: int, billable: bool = True, description: str = "",
             rate_minor: int | None = None) -> TimeEntry:
    """Time on a project; a billable entry takes the project's hourly rate unless a rate is given."""
    _same_company(company, project)
    _not_deleted(project, "project")
    if project.status in ("completed", "cancelled"):
        raise Conflict(f"project {project.id} is {project.status}; reopen it to log time")
    _check_hours(hours)
    validation.amount_minor(cost_rate_minor, "cost_rate", allow_zero=True)
    validation.text(description, "description", max_length=500)
    rate = (project.hourly_rate_minor if rate_minor is None else rate_minor) if billable else 0
    validation.amount_minor(rate, "rate", allow_zero=True)
    entry = TimeEntry(
        company_id=company.id, project_id=project.id, user_id=user.id, work_date=work_date, hours=hours,
        billable=billable, currency=project.currency, rate_minor=rate, cost_rate_minor=cost_rate_minor,
        description=description,
    )
    session.add(entry)
    session.flush()
    return entry


def update_time_entry(session: Session, company: Company, entry: TimeEntry, **changes) -> TimeEntry:
    _same_company(company, entry)
    _not_deleted(entry, "time entry")
    for key, value in changes.items():
        if key == "hours":
            _check_hours(value)
        elif key in ("rate_minor", "cost_rate_minor"):
            validation.amount_minor(value, key.removesuffix("_minor"), allow_zero=True)
        elif key == "description":
            validation.text(value, "description", max_length=500)
        elif key not in ("work_date", "billable"):
            raise ValidationFailed(f"cannot change {key}")
        setattr(entry, key, value)
    if changes.get("billable") is False:
        entry.rate_minor = 0
    session.flush()
    return entry


def delete_time_entry(session: Session, company: Company, entry: TimeEntry) -> TimeEntry:
    _same_company(company, entry)
    _soft_delete(session, entry)
    return entry


def restore_time_entry(session: Session, company: Company, entry: TimeEntry) -> TimeEntry:
    _same_company(company, entry)
    _restore(session, entry)
    return entry


# -- expenses ----------------------------------------------------------------------------------------------

def record_expense(session: Session, company: Company, *, category: str, amount_minor: int, incurred_on: date,
                   vendor: str = "", project: Project | None = None, billable: bool = False,
                   attachment_ref: str | None = None, currency: str | None = None) -> Expense:
    if category not in EXPENSE_ACCOUNTS:
        raise ValidationFailed(f"unknown expense category {category!r}; choose one of {', '.join(EXPENSE_ACCOUNTS)}")
    if amount_minor <= 0:
        raise ValidationFailed("an expense amount must be positive")
    validation.amount_minor(amount_minor, "amount")
    validation.text(vendor, "vendor", max_length=200)
    if attachment_ref is not None:
        validation.text(attachment_ref, "attachment_ref", max_length=300)
    currency = validation.currency_code(currency or company.base_currency)
    if project is not None:
        _same_company(company, project)
        _not_deleted(project, "project")
    expense = Expense(
        company_id=company.id, project_id=project.id if project else None, category=category, vendor=vendor,
        currency=currency, amount_minor=amount_minor, incurred_on=incurred_on, billable=billable,
        attachment_ref=attachment_ref,
    )
    session.add(expense)
    session.flush()
    _post_expense(session, company, expense)
    return expense


def _post_expense(session: Session, company: Company, expense: Expense) -> None:
    entry = post_entry(session, company, expense.incurred_on, f"Expense: {expense.vendor or expense.category}"[:300],
                       expense.currency, [Leg(EXPENSE_ACCOUNTS[expense.category], debit_minor=expense.amount_minor),
                                          Leg(BANK, credit_minor=expense.amount_minor)],
                       source_type="expense", source_id=expense.id)
    expense.journal_entry_id = entry.id
    session.flush()


def _unpost_expense(session: Session, company: Company, expense: Expense) -> None:
    if expense.journal_entry_id is not None:
        reverse_entry(session, company, session.get(JournalEntry, expense.journal_entry_id))
        expense.journal_entry_id = None
        session.flush()


def update_expense(session: Session, company: Company, expense: Expense, *, project: Project | None = None,
                   **changes) -> Expense:
    _same_company(company, expense)
    _not_deleted(expense, "expense")
    repost = False
    for key, value in changes.items():
        if key == "category":
            if value not in EXPENSE_ACCOUNTS:
                raise ValidationFailed(f"unknown expense category {value!r}")
        elif key == "amount_minor":
            validation.amount_minor(value, "amount")
        elif key == "vendor":
            validation.text(value, "vendor", max_length=200)
        elif key == "attachment_ref":
            if value is not None:
                validation.text(value, "attachment_ref", max_length=300)
        elif key not in ("incurred_on", "billable"):
            raise ValidationFailed(f"cannot change {key}")
        repost = repost or (key in ("category", "amount_minor", "incurred_on") and getattr(expense, key) != value)
    if project is not None:
        _same_company(company, project)
        _not_deleted(project, "project")
        expense.project_id = project.id
    if repost:
        _unpost_expense(session, company, expense)
    for key, value in changes.items():
        setattr(expense, key, value)
    session.flush()
    if repost:
        _post_expense(session, company, expense)
    return expense


def delete_expense(session: Session, company: Company, expense: Expense) -> Expense:
    _same_company(company, expense)
    if expense.deleted_at is None:
        _unpost_expense(session, company, expense)
    _soft_delete(session, expense)
    return expense


def restore_expense(session: Session, company: Company, expense: Expense) -> Expense:
    _same_company(company, expense)
    _restore(session, expense)
    _post_expense(session, company, expense)
    return expense
