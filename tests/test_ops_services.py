"""The service layer keeps the books: totals, numbering, postings, allocation, tenancy."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import event, func, inspect, select

from operational_api.db import schema
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.db.models import JournalEntry, JournalLine
from operational_api.services import companies, invoicing, ledger, payments, records
from operational_api.services.errors import Conflict, ValidationFailed
from operational_api.services.ledger import Leg, post_entry
from tests.support.migrated import migrate


@pytest.fixture
def session(tmp_path):
    url = f"sqlite:///{tmp_path / 'ops.sqlite3'}"
    migrate(url)
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        yield s
    engine.dispose()


def _company(session, slug="acme", currency="USD"):
    return companies.create_company(session, slug=slug, name=slug.title(), base_currency=currency,
                                    invoice_prefix=slug[:3].upper())


def _balance(session, company_id):
    debit, credit = session.execute(select(func.sum(JournalLine.debit_minor), func.sum(JournalLine.credit_minor))
                                    .where(JournalLine.company_id == company_id)).one()
    return debit, credit


def test_invoice_totals_round_each_line_half_up_to_the_minor_unit(session):
    company = _company(session)
    client = records.create_client(session, company, name="Client", email="c@example.org")
    invoice = invoicing.create_invoice(session, company, client, [
        invoicing.LineInput("Hours", Decimal("2.5"), 3333, tax_rate_percent=Decimal("7.5")),  # 8332.5 -> 8333
        invoicing.LineInput("Fee", Decimal("1"), 10000, discount_percent=Decimal("12.5")),  # 8750
    ])
    assert (invoice.subtotal_minor, invoice.tax_minor) == (8333 + 8750, 625)  # 624.975 -> 625
    assert invoice.total_minor == 8333 + 8750 + 625


def test_sending_numbers_gaplessly_and_posts_a_balanced_entry(session):
    company = _company(session)
    client = records.create_client(session, company, name="Client", email="c@example.org")
    numbers = []
    for _ in range(3):
        inv = invoicing.create_invoice(session, company, client, [invoicing.LineInput("x", Decimal(1), 1000)])
        numbers.append(invoicing.send_invoice(session, company, inv, date(2026, 1, 31)).number)
    assert numbers == ["ACM-2026-00001", "ACM-2026-00002", "ACM-2026-00003"]
    assert _balance(session, company.id) == (3000, 3000)
    with pytest.raises(Conflict, match="only a draft can be sent"):
        invoicing.send_invoice(session, company, inv, date(2026, 2, 1))


def test_partial_then_full_payment_moves_invoice_to_paid_and_overpayment_becomes_credit(session):
    company = _company(session)
    client = records.create_client(session, company, name="Client", email="c@example.org")
    inv = invoicing.create_invoice(session, company, client, [invoicing.LineInput("x", Decimal(1), 10000)])
    invoicing.send_invoice(session, company, inv, date(2026, 1, 31))
    payments.record_payment(session, company, client, method="bank", currency="USD", amount_minor=4000,
                            received_on=date(2026, 2, 5), allocations=[payments.Allocation(inv, 4000)])
    assert (inv.status, inv.amount_paid_minor) == ("partially_paid", 4000)
    payments.record_payment(session, company, client, method="bank", currency="USD", amount_minor=7000,
                            received_on=date(2026, 2, 9), allocations=[payments.Allocation(inv, 6000)])
    assert inv.status == "paid"
    assert _balance(session, company.id) == (10000 + 11000, 10000 + 11000)
    with pytest.raises(Conflict, match="cannot take a payment"):
        payments.record_payment(session, company, client, method="bank", currency="USD", amount_minor=1,
                                received_on=date(2026, 2, 9), allocations=[payments.Allocation(inv, 1)])


def test_a_payment_asks_once_whether_its_period_is_open_and_a_period_closed_meanwhile_still_refuses(session):
    company = _company(session)
    client = records.create_client(session, company, name="Client", email="c@example.org")
    inv = invoicing.create_invoice(session, company, client, [invoicing.LineInput("x", Decimal(1), 10000)])
    invoicing.send_invoice(session, company, inv, date(2026, 1, 31))
    session.commit()
    asked = []
    listen = lambda *args: asked.append(args[2]) if "FROM closed_periods" in args[2] else None  # noqa: E731
    event.listen(session.get_bind(), "before_cursor_execute", listen)
    try:
        payments.record_payment(session, company, client, method="bank", currency="USD", amount_minor=1000,
                                received_on=date(2026, 2, 5), allocations=[payments.Allocation(inv, 1000)])
    finally:
        event.remove(session.get_bind(), "before_cursor_execute", listen)
    assert len(asked) == 1  # the payment's date and its journal entry's: one period, asked once
    ledger.close_period(session, company, "2026-02")  # in the same transaction, after the memo said "open"
    with pytest.raises(Conflict, match="2026-02 is closed"):
        payments.record_payment(session, company, client, method="bank", currency="USD", amount_minor=1000,
                                received_on=date(2026, 2, 6), allocations=[payments.Allocation(inv, 1000)])
    session.rollback()  # the close is undone, and with it what the memo knew
    payments.record_payment(session, company, client, method="bank", currency="USD", amount_minor=1000,
                            received_on=date(2026, 2, 6), allocations=[payments.Allocation(inv, 1000)])
    assert inv.amount_paid_minor == 1000


def test_payments_that_would_create_money_are_refused(session):
    company = _company(session)
    client = records.create_client(session, company, name="Client", email="c@example.org")
    inv = invoicing.create_invoice(session, company, client, [invoicing.LineInput("x", Decimal(1), 1000)])
    invoicing.send_invoice(session, company, inv, date(2026, 1, 31))
    with pytest.raises(ValidationFailed, match="exceed"):
        payments.record_payment(session, company, client, method="bank", currency="USD", amount_minor=500,
                                received_on=date(2026, 2, 1), allocations=[payments.Allocation(inv, 600)])
    with pytest.raises(ValidationFailed, match="at most the amount due"):
        payments.record_payment(session, company, client, method="bank", currency="USD", amount_minor=5000,
                                received_on=date(2026, 2, 1), allocations=[payments.Allocation(inv, 1001)])
    with pytest.raises(ValidationFailed, match="in USD, the payment in EUR"):
        payments.record_payment(session, company, client, method="bank", currency="EUR", amount_minor=1000,
                                received_on=date(2026, 2, 1), allocations=[payments.Allocation(inv, 1000)])


def test_an_unbalanced_journal_entry_is_refused_whole(session):
    company = _company(session)
    before = session.scalar(select(func.count()).select_from(JournalEntry))
    with pytest.raises(ValidationFailed, match="does not balance"):
        post_entry(session, company, date(2026, 1, 1), "bad", "USD", [Leg("1000", debit_minor=100),
                                                                       Leg("4000", credit_minor=99)])
    assert session.scalar(select(func.count()).select_from(JournalEntry)) == before


def test_records_of_another_company_cannot_be_referenced(session):
    acme, other = _company(session), _company(session, "globex", "EUR")
    foreign_client = records.create_client(session, other, name="Theirs", email="t@example.org")
    with pytest.raises(ValidationFailed, match="another company"):
        records.create_project(session, acme, foreign_client, name="p", hourly_rate_minor=100)
    with pytest.raises(ValidationFailed, match="another company"):
        invoicing.create_invoice(session, acme, foreign_client, [invoicing.LineInput("x", Decimal(1), 1)])


def test_unknown_currency_role_and_float_hours_are_refused(session):
    with pytest.raises(ValueError, match="unknown currency"):
        _company(session, "bad", "XYZ")
    company = _company(session)
    user = companies.create_user(session, email="U@Example.com", full_name="U", password_hash="x")
    assert user.email == "u@example.com"
    with pytest.raises(ValidationFailed, match="unknown role"):
        companies.add_member(session, company, user, "superuser")
    client = records.create_client(session, company, name="C", email="c@example.org")
    project = records.create_project(session, company, client, name="P", hourly_rate_minor=100)
    with pytest.raises(ValidationFailed, match="Decimal"):
        records.log_time(session, company, project, user, work_date=date(2026, 1, 1), hours=1.5, cost_rate_minor=1)


def test_migrations_upgrade_and_downgrade_on_both_databases(empty_ops_db):
    url = empty_ops_db
    schema.upgrade(url)
    engine = make_engine(url)
    assert {"companies", "invoices", "journal_lines", "usage_events"} <= set(inspect(engine).get_table_names())
    schema.downgrade(url, "base")
    assert "invoices" not in inspect(engine).get_table_names()
    engine.dispose()


def _schema_of(url: str) -> dict:
    """Everything a migration defines, as the database reports it: tables, columns, indexes, constraints, the
    Alembic revision, and the triggers and functions (the money rules)."""
    engine = make_engine(url)
    try:
        found = inspect(engine)
        tables = {t: {"columns": [(c["name"], str(c["type"]), c["nullable"]) for c in found.get_columns(t)],
                      "indexes": sorted(str(sorted(i.items())) for i in found.get_indexes(t)),
                      "checks": sorted(c["sqltext"] for c in found.get_check_constraints(t)),
                      "foreign_keys": sorted(str(sorted(k.items())) for k in found.get_foreign_keys(t))}
                  for t in found.get_table_names()}
        with engine.connect() as conn:
            revisions = sorted(conn.exec_driver_sql("select version_num from alembic_version").scalars())
            if engine.dialect.name == "sqlite":
                code = sorted(conn.exec_driver_sql("select name, sql from sqlite_master where type = 'trigger'").all())
            else:
                code = sorted(conn.exec_driver_sql(
                    "select tgname, pg_get_triggerdef(oid) from pg_trigger where not tgisinternal "
                    "union all select proname, prosrc from pg_proc where pronamespace = 'public'::regnamespace").all())
        return {"tables": tables, "revisions": revisions, "code": code}
    finally:
        engine.dispose()


def test_a_test_database_cloned_from_the_template_is_what_the_migrations_give(empty_ops_db, tmp_path):
    """tests/support/migrated.py hands tests a copy of one migration per process: the copy must be the schema
    `schema.upgrade` writes, on each engine."""
    from tests.support.migrated import migrate
    from tests.support.postgres import temporary_database

    cloned = _schema_of(migrate(empty_ops_db))
    if empty_ops_db.startswith("sqlite"):
        url = f"sqlite:///{tmp_path / 'upgraded.sqlite3'}"
        schema.upgrade(url)
        upgraded = _schema_of(url)
    else:
        with temporary_database() as url:
            schema.upgrade(url)
            upgraded = _schema_of(url)
    assert len(cloned["tables"]) > 20 and cloned["code"], "the migrations create tables and triggers"
    assert cloned == upgraded
