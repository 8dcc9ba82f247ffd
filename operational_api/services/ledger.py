"""Double-entry ledger: the default chart of accounts and posting balanced journal entries."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date

from sqlalchemy import select
from sqlalchemy.orm import Session

from operational_api.db.models import Account, Company, JournalEntry, JournalLine, utcnow
from operational_api.services.errors import ValidationFailed

DEFAULT_CHART: tuple[tuple[str, str, str], ...] = (
    ("1000", "Bank", "asset"),
    ("1010", "Cash", "asset"),
    ("1100", "Accounts receivable", "asset"),
    ("1150", "Stripe clearing", "asset"),
    ("2100", "Tax payable", "liability"),
    ("2200", "Client credit", "liability"),
    ("3000", "Owner's equity", "equity"),
    ("4000", "Service revenue", "income"),
    ("5000", "Cost of services", "expense"),
    ("6100", "Payment processing fees", "expense"),
    ("6200", "Software and subscriptions", "expense"),
    ("6300", "Travel", "expense"),
    ("6400", "Office and supplies", "expense"),
    ("6500", "Contractors", "expense"),
)

# Named roles of accounts that automatic postings use, so code never hard-codes account numbers.
BANK, CASH, AR, STRIPE_CLEARING, TAX_PAYABLE, CLIENT_CREDIT = "1000", "1010", "1100", "1150", "2100", "2200"
REVENUE, FEES = "4000", "6100"
EXPENSE_ACCOUNTS = {"software": "6200", "travel": "6300", "office": "6400", "contractors": "6500"}


@dataclass(frozen=True)
class Leg:
    account_code: str
    debit_minor: int = 0
    credit_minor: int = 0


def install_default_chart(session: Session, company: Company) -> None:
    for code, name, kind in DEFAULT_CHART:
        session.add(Account(company_id=company.id, code=code, name=name, type=kind))
    session.flush()


def post_entry(
    session: Session, company: Company, entry_date: date, memo: str, currency: str, legs: list[Leg],
    source_type: str = "manual", source_id: int | None = None,
) -> JournalEntry:
    """Post a balanced entry; an unbalanced one is refused whole."""
    debits = sum(leg.debit_minor for leg in legs)
    credits = sum(leg.credit_minor for leg in legs)
    if debits != credits or debits == 0:
        raise ValidationFailed(f"journal entry does not balance: debits {debits} != credits {credits}")
    accounts = {
        a.code: a.id
        for a in session.scalars(select(Account).where(Account.company_id == company.id))
    }
    entry = JournalEntry(
        company_id=company.id, entry_date=entry_date, memo=memo, currency=currency, status="posted",
        source_type=source_type, source_id=source_id, posted_at=utcnow(),
    )
    session.add(entry)
    session.flush()
    for leg in legs:
        if leg.account_code not in accounts:
            raise ValidationFailed(f"unknown account {leg.account_code} in company {company.slug}")
        session.add(JournalLine(
            company_id=company.id, journal_entry_id=entry.id, account_id=accounts[leg.account_code],
            debit_minor=leg.debit_minor, credit_minor=leg.credit_minor,
        ))
    session.flush()
    return entry
