"""Double-entry ledger: the default chart of accounts, draft and posted journal entries, reversals and closed
periods.

An entry is written as a draft with its lines, then posted: posting checks that debits equal credits to the
minor unit (and are not zero) and that the entry's month is not closed. Posted entries are immutable (database
triggers refuse UPDATE/DELETE); a mistake is corrected by a reversal entry that swaps every line's sides.

Concurrency: editing, deleting, posting and reversing an entry first lock the entry row (lock order in
`operational_api.db.locking`), so an edit racing a post either lands before the post (which then checks the
edited lines) or finds the entry posted (409). The database re-checks at commit that every posted entry
balances (deferred constraint trigger, migration 0009).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, date, datetime

from sqlalchemy import bindparam, event, func, select
from sqlalchemy.orm import Session

from ez360.core.money import format_money
from operational_api.db.locking import lock_children, lock_one, retrying
from operational_api.db.models import Account, ClosedPeriod, Company, JournalEntry, JournalLine, utcnow
from operational_api.services import validation
from operational_api.services.errors import Conflict, ImmutableRecord, ValidationFailed

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
    ("6600", "Chargebacks and disputes", "expense"),
    ("6900", "Other expenses", "expense"),
)
ACCOUNT_TYPES = ("asset", "liability", "equity", "income", "expense")

# Named roles of accounts that automatic postings use, so code never hard-codes account numbers.
BANK, CASH, AR, STRIPE_CLEARING, TAX_PAYABLE, CLIENT_CREDIT = "1000", "1010", "1100", "1150", "2100", "2200"
REVENUE, FEES, DISPUTES, OTHER_EXPENSES = "4000", "6100", "6600", "6900"
EXPENSE_ACCOUNTS = {"software": "6200", "travel": "6300", "office": "6400", "contractors": "6500",
                    "other": OTHER_EXPENSES}


@dataclass(frozen=True)
class Leg:
    account_code: str
    debit_minor: int = 0
    credit_minor: int = 0


def install_default_chart(session: Session, company: Company) -> None:
    for code, name, kind in DEFAULT_CHART:
        session.add(Account(company_id=company.id, code=code, name=name, type=kind))
    session.flush()


def create_account(session: Session, company: Company, *, code: str, name: str, type: str) -> Account:
    validation.text(code, "code", max_length=20, required=True)
    validation.text(name, "name", max_length=120, required=True)
    if type not in ACCOUNT_TYPES:
        raise ValidationFailed(f"type: choose one of {', '.join(ACCOUNT_TYPES)}")
    if session.scalar(select(Account.id).where(Account.company_id == company.id, Account.code == code)):
        raise Conflict(f"account {code} already exists")
    account = Account(company_id=company.id, code=code, name=name, type=type)
    session.add(account)
    session.flush()
    return account


def period_of(day: date) -> str:
    return f"{day:%Y-%m}"


OPEN_PERIODS = "ez360_open_periods"  # session.info: (company, period) found open in this transaction


# Statements built once: their cache keys are memoized on them (see operational_api.db.scoped._by_id)
_CLOSED = select(ClosedPeriod.id).where(ClosedPeriod.company_id == bindparam("company_id"),
                                        ClosedPeriod.period == bindparam("period"))
_ACCOUNT_IDS = select(Account.code, Account.id).where(Account.company_id == bindparam("company_id"))


def period_is_closed(session: Session, company_id: int, day: date) -> bool:
    """Whether the day's period is closed. A period found open is remembered until the transaction (or savepoint)
    ends: a payment asks for the payment and for its entry; closing the period forgets it."""
    key = (company_id, period_of(day))
    known_open = session.info.setdefault(OPEN_PERIODS, set())
    if key in known_open:
        return False
    closed = session.scalar(_CLOSED, {"company_id": company_id, "period": key[1]}) is not None
    if not closed:
        known_open.add(key)
    return closed


@event.listens_for(Session, "after_transaction_end")
def _forget_open_periods(session: Session, transaction) -> None:
    # The end of the transaction or of a savepoint (whose rollback may bring a closed period back); not the end
    # of the subtransaction every flush runs in, which changed nothing the memo holds (a payment flushes between
    # its own check and its entry's, so that forgot it every time: issue 8).
    if transaction.nested or transaction.parent is None:
        session.info.pop(OPEN_PERIODS, None)


def _check_legs(session: Session, company: Company, legs: list[Leg]) -> dict[str, int]:
    if not legs:
        raise ValidationFailed("lines: a journal entry needs at least two lines")
    for i, leg in enumerate(legs):
        validation.amount_minor(leg.debit_minor, f"lines[{i}].debit", allow_zero=True)
        validation.amount_minor(leg.credit_minor, f"lines[{i}].credit", allow_zero=True)
        if (leg.debit_minor == 0) == (leg.credit_minor == 0):
            raise ValidationFailed(f"lines[{i}]: a line is either a debit or a credit, and not zero")
    accounts = dict(session.execute(_ACCOUNT_IDS, {"company_id": company.id}).all())
    for i, leg in enumerate(legs):
        if leg.account_code not in accounts:
            raise ValidationFailed(f"lines[{i}]: unknown account {leg.account_code} in company {company.slug}")
    return accounts


def _check_balanced(legs: list[Leg], currency: str) -> None:
    debits = sum(leg.debit_minor for leg in legs)
    credits = sum(leg.credit_minor for leg in legs)
    if debits != credits or debits == 0:
        raise ValidationFailed(f"journal entry does not balance: debits {format_money(debits, currency)} != "
                               f"credits {format_money(credits, currency)}")


def _check_open(session: Session, company: Company, day: date) -> None:
    if period_is_closed(session, company.id, day):
        raise Conflict(f"the period {period_of(day)} is closed: no entry dated {day} can be posted")


def draft_entry(session: Session, company: Company, entry_date: date, memo: str, currency: str, legs: list[Leg],
                source_type: str = "manual", source_id: int | None = None) -> JournalEntry:
    """A draft entry with its lines; drafts may be unbalanced while being prepared, posting checks them."""
    validation.text(memo, "memo", max_length=300)
    currency = validation.currency_code(currency)
    accounts = _check_legs(session, company, legs)
    entry = JournalEntry(company_id=company.id, entry_date=entry_date, memo=memo, currency=currency,
                         status="draft", source_type=source_type, source_id=source_id)
    session.add(entry)
    session.flush()
    _add_lines(session, company, entry, legs, accounts)
    return entry


def _add_lines(session, company, entry, legs, accounts) -> None:
    for leg in legs:
        session.add(JournalLine(company_id=company.id, journal_entry_id=entry.id,
                                account_id=accounts[leg.account_code], debit_minor=leg.debit_minor,
                                credit_minor=leg.credit_minor))
    session.flush()


def entry_lines(session: Session, entry: JournalEntry) -> list[JournalLine]:
    return list(session.scalars(select(JournalLine).where(JournalLine.journal_entry_id == entry.id)
                                .order_by(JournalLine.id)))


def _require_draft(entry: JournalEntry) -> None:
    if entry.status != "draft":
        raise ImmutableRecord(f"journal entry {entry.id} is posted and immutable; post a reversal entry instead")


@retrying
def update_draft(session: Session, company: Company, entry: JournalEntry, *, entry_date: date | None = None,
                 memo: str | None = None, currency: str | None = None, legs: list[Leg] | None = None) -> JournalEntry:
    entry = lock_one(session, entry)
    _require_draft(entry)
    if memo is not None:
        entry.memo = validation.text(memo, "memo", max_length=300)
    if currency is not None:
        entry.currency = validation.currency_code(currency)
    if entry_date is not None:
        entry.entry_date = entry_date
    if legs is not None:
        accounts = _check_legs(session, company, legs)
        for line in entry_lines(session, entry):
            session.delete(line)
        session.flush()
        _add_lines(session, company, entry, legs, accounts)
    session.flush()
    return entry


@retrying
def delete_draft(session: Session, entry: JournalEntry) -> None:
    entry = lock_one(session, entry)
    _require_draft(entry)
    for line in entry_lines(session, entry):
        session.delete(line)
    session.flush()
    session.delete(entry)
    session.flush()


@retrying
def post(session: Session, company: Company, entry: JournalEntry) -> JournalEntry:
    """draft -> posted, if the entry balances and its period is open."""
    entry = lock_one(session, entry)
    lock_children(session, JournalLine, JournalLine.journal_entry_id, entry.id)  # the lines it checks
    _require_draft(entry)
    lines = entry_lines(session, entry)
    _check_balanced([Leg("", ln.debit_minor, ln.credit_minor) for ln in lines], entry.currency)
    _check_open(session, company, entry.entry_date)
    entry.status, entry.posted_at = "posted", utcnow()
    session.flush()
    return entry


def post_entry(
    session: Session, company: Company, entry_date: date, memo: str, currency: str, legs: list[Leg],
    source_type: str = "manual", source_id: int | None = None,
) -> JournalEntry:
    """Post a balanced entry in one step; an unbalanced one, or one in a closed period, is refused whole."""
    _check_balanced(legs, currency)
    _check_open(session, company, entry_date)
    entry = draft_entry(session, company, entry_date, memo, currency, legs, source_type, source_id)
    # `post` would lock the draft and its lines and read them back: rows this transaction just inserted, which no
    # other transaction can see, holding exactly the legs checked above. The draft -> posted update stays (the
    # audit trail shows the entry created as a draft, then posted; the database checks the balance on it).
    entry.status, entry.posted_at = "posted", utcnow()
    session.flush()
    return entry


@retrying
def reverse_entry(session: Session, company: Company, entry: JournalEntry, on: date | None = None,
                  memo: str | None = None) -> JournalEntry:
    """A posted entry that swaps every line's debit and credit; dated `on` (default: the original's date if
    its period is open, else today)."""
    entry = lock_one(session, entry)
    if entry.status != "posted":
        raise Conflict(f"journal entry {entry.id} is a draft: edit or delete it instead of reversing it")
    if session.scalar(select(JournalEntry.id).where(JournalEntry.reversal_of_id == entry.id)):
        raise Conflict(f"journal entry {entry.id} is already reversed")
    accounts = {a.id: a.code for a in session.scalars(select(Account).where(Account.company_id == company.id))}
    legs = [Leg(accounts[ln.account_id], debit_minor=ln.credit_minor, credit_minor=ln.debit_minor)
            for ln in entry_lines(session, entry)]
    if on is None:
        on = entry.entry_date if not period_is_closed(session, company.id, entry.entry_date) else _today()
    _check_open(session, company, on)
    reversal = draft_entry(session, company, on, memo or f"Reversal of entry {entry.id}: {entry.memo}"[:300],
                           entry.currency, legs, source_type="reversal", source_id=entry.id)
    reversal.reversal_of_id = entry.id  # set while a draft: a posted entry cannot change
    session.flush()
    return post(session, company, reversal)


def _today() -> date:
    return datetime.now(UTC).date()


def close_period(session: Session, company: Company, period: str, user_id: int | None = None) -> ClosedPeriod:
    _check_period(period)
    if session.scalar(select(ClosedPeriod).where(ClosedPeriod.company_id == company.id,
                                                 ClosedPeriod.period == period)):
        raise Conflict(f"the period {period} is already closed")
    row = ClosedPeriod(company_id=company.id, period=period, closed_by_id=user_id)
    session.add(row)
    session.flush()
    session.info.get(OPEN_PERIODS, set()).discard((company.id, period))
    return row


def reopen_period(session: Session, company: Company, period: str) -> None:
    _check_period(period)
    row = session.scalar(select(ClosedPeriod).where(ClosedPeriod.company_id == company.id,
                                                    ClosedPeriod.period == period))
    if row is None:
        raise Conflict(f"the period {period} is not closed")
    session.delete(row)
    session.flush()


def _check_period(period: str) -> None:
    try:
        year, month = period.split("-")
        if len(year) != 4 or len(month) != 2 or not 1 <= int(month) <= 12 or int(year) < 1900:
            raise ValueError
    except ValueError:
        raise ValidationFailed(f"period: {period!r} is not a month in the form YYYY-MM") from None


def trial_balance(session: Session, company: Company, currency: str | None = None) -> list[dict]:
    """Posted debits and credits per account and currency."""
    q = (select(Account.code, Account.name, Account.type, JournalEntry.currency,
                func.sum(JournalLine.debit_minor), func.sum(JournalLine.credit_minor))
         .join(JournalLine, JournalLine.account_id == Account.id)
         .join(JournalEntry, JournalEntry.id == JournalLine.journal_entry_id)
         .where(Account.company_id == company.id, JournalEntry.status == "posted")
         .group_by(Account.code, Account.name, Account.type, JournalEntry.currency)
         .order_by(JournalEntry.currency, Account.code))
    if currency:
        q = q.where(JournalEntry.currency == currency.upper())
    return [{"code": c, "name": n, "type": t, "currency": cur, "debit_minor": int(d or 0), "credit_minor": int(cr or 0)}
            for c, n, t, cur, d, cr in session.execute(q)]
