"""Immutability lives in the database too: direct SQL cannot change a posted entry, a sent invoice, a recorded
payment or the audit log, on SQLite and on PostgreSQL; the migration upgrades and downgrades on both."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import inspect, select, text
from sqlalchemy.exc import DBAPIError

from operational_api.db import schema
from operational_api.db.engine import make_engine
from operational_api.db.models import AuditLog, JournalEntry, JournalLine
from operational_api.services import companies, invoicing, ledger, payments, records
from tests.support.integrity import session_scope


@pytest.fixture
def books(ops_db):
    """A company with a sent, partly paid invoice and its postings, committed."""
    url = ops_db
    with session_scope(url) as s, s.begin():
        company = companies.create_company(s, slug="acme", name="Acme", base_currency="USD", invoice_prefix="ACM")
        client = records.create_client(s, company, name="C", email="c@example.org")
        draft = invoicing.create_invoice(s, company, client, [invoicing.LineInput("x", Decimal(1), 1000)])
        invoice = invoicing.create_invoice(s, company, client, [invoicing.LineInput("y", Decimal(2), 1000)])
        invoicing.send_invoice(s, company, invoice, date(2026, 1, 31))
        payment = payments.record_payment(s, company, client, method="bank", currency="USD", amount_minor=500,
                                          received_on=date(2026, 2, 1), allocations=[payments.Allocation(invoice, 500)])
        posted = s.scalar(select(JournalEntry.id).where(JournalEntry.source_type == "invoice"))
        ids = {"company": company.id, "draft": draft.id, "invoice": invoice.id, "payment": payment.id,
               "entry": posted}
    engine = make_engine(url)
    yield engine, ids
    engine.dispose()


def _refused(engine, sql: str, match: str, **params) -> None:
    with pytest.raises(DBAPIError, match=match), engine.begin() as conn:
        conn.execute(text(sql), params)


def test_a_direct_update_or_delete_of_a_posted_entry_fails(books):
    engine, ids = books
    _refused(engine, "UPDATE journal_entries SET memo = 'edited' WHERE id = :id", "posted journal entry is immutable",
             id=ids["entry"])
    _refused(engine, "DELETE FROM journal_entries WHERE id = :id", "posted journal entry is immutable",
             id=ids["entry"])
    _refused(engine, "UPDATE journal_lines SET debit_minor = debit_minor + 1 WHERE journal_entry_id = :id",
             "lines of a posted journal entry are immutable", id=ids["entry"])
    _refused(engine, "DELETE FROM journal_lines WHERE journal_entry_id = :id",
             "lines of a posted journal entry are immutable", id=ids["entry"])


def test_a_direct_update_of_a_sent_invoice_or_its_lines_fails(books):
    engine, ids = books
    _refused(engine, "UPDATE invoices SET total_minor = 1 WHERE id = :id", "sent invoice is immutable",
             id=ids["invoice"])
    _refused(engine, "UPDATE invoices SET status = 'paid' WHERE id = :id", "follow its payments", id=ids["invoice"])
    _refused(engine, "UPDATE invoices SET amount_paid_minor = 2000, status = 'paid' WHERE id = :id",
             "follow its payments", id=ids["invoice"])
    _refused(engine, "DELETE FROM invoices WHERE id = :id", "sent invoice cannot be deleted", id=ids["invoice"])
    _refused(engine, "UPDATE invoice_lines SET unit_price_minor = 1 WHERE invoice_id = :id",
             "lines of a sent invoice are immutable", id=ids["invoice"])
    _refused(engine, "INSERT INTO invoice_lines (company_id, invoice_id, position, description, quantity, "
                     "unit_price_minor, discount_percent, tax_rate_percent, net_minor, tax_minor) "
                     "VALUES (:c, :id, 9, 'sneaky', 1, 1, 0, 0, 1, 0)", "lines of a sent invoice are immutable",
             c=ids["company"], id=ids["invoice"])
    with engine.begin() as conn:  # a draft stays editable
        conn.execute(text("UPDATE invoice_lines SET description = 'edited' WHERE invoice_id = :id"),
                     {"id": ids["draft"]})


def test_a_direct_update_of_an_audit_row_a_payment_or_an_allocation_fails(books):
    engine, ids = books
    _refused(engine, "UPDATE audit_log SET actor = 'someone else'", "audit_log is append-only")
    _refused(engine, "DELETE FROM audit_log", "audit_log is append-only")
    _refused(engine, "UPDATE payments SET amount_minor = 1 WHERE id = :id", "recorded payment is immutable",
             id=ids["payment"])
    _refused(engine, "DELETE FROM payments WHERE id = :id", "recorded payment is immutable", id=ids["payment"])
    _refused(engine, "UPDATE payment_allocations SET amount_minor = 1", "payment_allocations is append-only")


def test_the_database_refuses_to_post_an_unbalanced_entry_or_one_in_a_closed_period(books):
    engine, ids = books
    with engine.begin() as conn:
        entry_id = conn.execute(text(
            "INSERT INTO journal_entries (company_id, entry_date, memo, currency, status, source_type, created_at, "
            "updated_at) VALUES (:c, '2026-03-05', 'manual', 'USD', 'draft', 'manual', CURRENT_TIMESTAMP, "
            "CURRENT_TIMESTAMP) RETURNING id"), {"c": ids["company"]}).scalar()
        accounts = dict(conn.execute(text("SELECT code, id FROM accounts WHERE company_id = :c"),
                                     {"c": ids["company"]}).all())
        for account, debit, credit in ((accounts["1000"], 100, 0), (accounts["4000"], 0, 99)):
            conn.execute(text("INSERT INTO journal_lines (company_id, journal_entry_id, account_id, debit_minor, "
                              "credit_minor) VALUES (:c, :e, :a, :d, :cr)"),
                         {"c": ids["company"], "e": entry_id, "a": account, "d": debit, "cr": credit})
    _refused(engine, "UPDATE journal_entries SET status = 'posted' WHERE id = :id", "does not balance", id=entry_id)
    _refused(engine, "INSERT INTO journal_entries (company_id, entry_date, memo, currency, status, source_type, "
                     "created_at, updated_at) VALUES (:c, '2026-03-05', 'x', 'USD', 'posted', 'manual', "
                     "CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)", "inserted as a draft", c=ids["company"])
    with engine.begin() as conn:
        conn.execute(text("UPDATE journal_lines SET credit_minor = 100 WHERE journal_entry_id = :e AND "
                          "credit_minor = 99"), {"e": entry_id})
        conn.execute(text("INSERT INTO closed_periods (company_id, period, closed_at) VALUES (:c, '2026-03', "
                          "CURRENT_TIMESTAMP)"), {"c": ids["company"]})
    _refused(engine, "UPDATE journal_entries SET status = 'posted' WHERE id = :id", "period is closed", id=entry_id)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM closed_periods"))
        conn.execute(text("UPDATE journal_entries SET status = 'posted' WHERE id = :id"), {"id": entry_id})


def test_services_refuse_before_the_database_has_to(books):
    engine, ids = books
    from sqlalchemy.orm import Session

    from operational_api.services.errors import ImmutableRecord

    with Session(engine) as s:
        from operational_api.db.models import Company, Invoice

        company, invoice = s.get(Company, ids["company"]), s.get(Invoice, ids["invoice"])
        with pytest.raises(ImmutableRecord, match="credit note"):
            invoicing.update_draft(s, company, invoice, notes="x")
        with pytest.raises(ImmutableRecord, match="reversal"):
            ledger.update_draft(s, company, s.get(JournalEntry, ids["entry"]), memo="x")
        lines = s.scalars(select(JournalLine).where(JournalLine.journal_entry_id == ids["entry"])).all()
        assert sum(ln.debit_minor for ln in lines) == sum(ln.credit_minor for ln in lines) == 2000
        assert s.scalar(select(AuditLog.id).limit(1)) is not None


def test_the_integrity_migration_upgrades_and_downgrades_on_both_databases(empty_ops_db):
    url = empty_ops_db
    schema.upgrade(url)
    engine = make_engine(url)
    tables = set(inspect(engine).get_table_names())
    assert {"audit_log", "audit_heads", "credit_notes", "refunds", "closed_periods", "number_sequences"} <= tables
    schema.downgrade(url, "0002")
    assert "audit_log" not in inspect(engine).get_table_names()
    assert "credited_minor" not in {c["name"] for c in inspect(engine).get_columns("invoices")}
    schema.upgrade(url)
    assert "audit_log" in inspect(engine).get_table_names()
    schema.downgrade(url, "base")
    assert "invoices" not in inspect(engine).get_table_names()
    engine.dispose()
