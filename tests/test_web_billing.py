"""Billing from work done, on both ops DB engines: a draft from a client's unbilled time (at the project's rate,
with the company's default tax) and billable expenses; the work is then billed and cannot be billed twice, by
two people at the same moment either (parallel sessions on PostgreSQL), nor behind the service's back (the
database triggers); a deleted draft gives its work back; billed work on a sent invoice is final. Also the
money typed in a person's locale and the default tax rates a company starts with."""

from __future__ import annotations

import threading
from datetime import date
from decimal import Decimal

import pytest
from babel import Locale
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from operational_api.db.billing_models import BilledWork
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.db.models import Company, TimeEntry
from operational_api.services import billing, companies, invoicing, records
from operational_api.services.errors import Conflict, ValidationFailed
from operational_api.web import l10n


def _world(url: str, currency: str = "EUR") -> dict:
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s, s.begin():
        company = companies.create_company(s, slug="studio", name="Studio", base_currency=currency, invoice_prefix="ST",
                                           plan="business")
        billing.install_default_tax_rates(s, company)
        user = companies.create_user(s, email="ana@studio.test", full_name="Ana", password_hash="!")
        companies.add_member(s, company, user, "owner")
        client = records.create_client(s, company, name="Globex", email="ap@globex.test")
        web = records.create_project(s, company, client, name="Website", hourly_rate_minor=15000)
        app = records.create_project(s, company, client, name="App", hourly_rate_minor=9000)
        for project, day, hours in ((web, 2, "7.5"), (web, 3, "2.25"), (app, 4, "1")):
            records.log_time(s, company, project, user, work_date=date(2026, 3, day), hours=Decimal(hours),
                             cost_rate_minor=5000)
        records.log_time(s, company, web, user, work_date=date(2026, 3, 5), hours=Decimal(3), cost_rate_minor=5000,
                         billable=False)
        records.record_expense(s, company, category="travel", amount_minor=4590, incurred_on=date(2026, 3, 6),
                               vendor="Rail Co", project=web, billable=True)
        records.record_expense(s, company, category="software", amount_minor=999, incurred_on=date(2026, 3, 6),
                               project=web, billable=False)
        ids = {"company": company.id, "client": client.id, "user": user.id}
    return {"engine": engine, "sm": make_sessionmaker(engine), **ids}


def _draft(w):
    with w["sm"]() as s, s.begin():
        company = s.get(Company, w["company"])
        from operational_api.db.models import Client
        invoice = billing.draft_from_work(s, company, s.get(Client, w["client"]))
        return invoice.id


def test_a_draft_from_work_bills_the_unbilled_time_and_expenses_once(ops_db):
    w = _world(ops_db)
    invoice_id = _draft(w)
    with w["sm"]() as s:
        from operational_api.db.models import Invoice
        invoice = s.get(Invoice, invoice_id)
        lines = [(ln.description.split(":")[0].split(" (")[0], ln.quantity, ln.unit_price_minor, ln.tax_rate_percent,
                  ln.net_minor, ln.tax_minor) for ln in invoicing.lines_of(s, invoice)]
        # Recomputed by hand: 9.75 h x 150.00 = 1462.50, tax 20 % = 292.50; 1 h x 90.00 = 90.00, tax 18.00;
        # the billable travel expense at cost, untaxed. Non-billable time and expenses stay out.
        assert sorted(lines) == sorted([
            ("Website", Decimal("9.75"), 15000, Decimal("20"), 146250, 29250),
            ("App", Decimal("1"), 9000, Decimal("20"), 9000, 1800),
            ("Travel expense, Rail Co", Decimal("1"), 4590, Decimal("0"), 4590, 0)])
        assert invoice.total_minor == 146250 + 29250 + 9000 + 1800 + 4590
        billed = s.scalars(select(BilledWork).where(BilledWork.invoice_id == invoice_id)).all()
        assert len([b for b in billed if b.time_entry_id]) == 3 and len([b for b in billed if b.expense_id]) == 1
    with pytest.raises(Conflict, match="no unbilled"):
        _draft(w)  # nothing left to bill


def test_the_database_refuses_to_bill_work_twice_and_keeps_billed_work_on_sent_invoices_final(ops_db):
    w = _world(ops_db)
    first = _draft(w)
    with w["sm"]() as s, s.begin():
        from operational_api.db.models import Client
        company, client = s.get(Company, w["company"]), s.get(Client, w["client"])
        other = invoicing.create_invoice(s, company, client, [invoicing.LineInput("x", Decimal(1), 100)]).id
        entry_id = s.scalar(select(BilledWork.time_entry_id).where(BilledWork.invoice_id == first,
                                                                   BilledWork.time_entry_id.is_not(None)).limit(1))
    with w["engine"].connect() as conn, pytest.raises(DBAPIError):  # the same entry on a second invoice
        conn.execute(text("INSERT INTO billed_work (company_id, invoice_id, time_entry_id, created_at) "
                          "VALUES (:c, :i, :t, CURRENT_TIMESTAMP)"), {"c": w["company"], "i": other, "t": entry_id})
    with w["sm"]() as s, s.begin():
        from operational_api.db.models import Invoice
        invoicing.send_invoice(s, s.get(Company, w["company"]), s.get(Invoice, first), date(2026, 3, 31))
    with w["engine"].connect() as conn:
        for sql in ("DELETE FROM billed_work WHERE invoice_id = :i",
                    "UPDATE billed_work SET invoice_id = invoice_id WHERE invoice_id = :i"):
            with pytest.raises(DBAPIError, match="ez360:"):
                conn.execute(text(sql), {"i": first})
            conn.rollback()
        with pytest.raises(DBAPIError, match="billed on a sent invoice"):
            conn.execute(text("UPDATE time_entries SET hours = 1 WHERE id = :t"), {"t": entry_id})
        conn.rollback()
    with w["sm"]() as s, s.begin():
        entry = s.get(TimeEntry, entry_id)
        entry.description = "still editable: only what was billed is final"


def test_a_deleted_draft_gives_its_work_back(ops_db):
    w = _world(ops_db)
    first = _draft(w)
    with w["sm"]() as s, s.begin():
        from operational_api.db.models import Invoice
        company, invoice = s.get(Company, w["company"]), s.get(Invoice, first)
        assert billing.release(s, company, invoice) == 4
        invoicing.delete_draft(s, company, invoice)
    second = _draft(w)
    assert second != first


@pytest.mark.postgres
def test_two_people_drafting_the_same_work_at_once_bill_it_once(postgres_url):
    from tests.support.migrated import migrate
    migrate(postgres_url)
    w = _world(postgres_url)
    barrier, outcomes = threading.Barrier(4), []

    def draft():
        barrier.wait()
        try:
            outcomes.append(("ok", _draft(w)))
        except Conflict as exc:
            outcomes.append(("conflict", str(exc)))

    threads = [threading.Thread(target=draft) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(kind for kind, _ in outcomes) == ["conflict", "conflict", "conflict", "ok"], outcomes
    with w["sm"]() as s:
        counts = s.execute(text("SELECT COUNT(*), COUNT(DISTINCT time_entry_id), COUNT(DISTINCT expense_id) "
                                "FROM billed_work")).one()
        assert tuple(counts) == (4, 3, 1)
        invoices = s.execute(text("SELECT COUNT(*) FROM invoices")).scalar()
        assert invoices == 1  # the losers' drafts were rolled back whole
    w["engine"].dispose()


@pytest.mark.parametrize(("typed", "locale", "currency", "minor"), [
    ("1,234.50", "en_US", "USD", 123450), ("1.234,50", "de_DE", "EUR", 123450), ("1 234,5", "fr_FR", "EUR", 123450),
    ("1234", "ja_JP", "JPY", 1234), ("1,234.567", "en_US", "KWD", 1234567), ("$ 12", "en_US", "USD", 1200)])
def test_money_is_read_as_people_type_it_in_their_locale(typed, locale, currency, minor):
    assert l10n.parse_money(typed, currency, Locale.parse(locale), "amount") == minor


@pytest.mark.parametrize(("typed", "locale", "currency", "message"), [
    ("1,234.50", "de_DE", "EUR", "not a number as written here"),
    ("12.345", "en_US", "USD", "more than 2 decimal places"), ("1.5", "ja_JP", "JPY", "more than 0 decimal places"),
    ("", "en_US", "USD", "enter a number"), ("0", "en_US", "USD", "must be positive")])
def test_money_typed_wrong_gets_a_clear_error(typed, locale, currency, message):
    with pytest.raises(ValidationFailed, match=message):
        l10n.parse_money(typed, currency, Locale.parse(locale), "amount")


def test_money_is_shown_in_the_readers_format():
    assert l10n.money(123450, "EUR", Locale.parse("de_DE")) == "1.234,50\xa0€"
    assert l10n.money(123450, "USD", Locale.parse("en_US")) == "$1,234.50"
    assert l10n.amount(1234567, "KWD", Locale.parse("en_US")) == "1,234.567"
    assert l10n.amount(1234, "JPY", Locale.parse("en_US")) == "1,234"


def test_a_new_company_starts_with_tax_rates_for_its_currency():
    assert billing.default_rates("GBP") == [("No tax", Decimal(0), False), ("VAT standard", Decimal(20), True)]
    assert billing.default_rates("JPY") == [("No tax", Decimal(0), False), ("Consumption tax", Decimal(10), True)]
    assert billing.default_rates("USD") == [("No tax", Decimal(0), True)]  # US sales tax depends on the state


def test_the_api_deletes_and_sends_invoices_as_the_pages_do(ops_db):
    """An API client deleting a draft gives its work back, and sending mails the client the PDF and a link:
    one service for both, so an integration cannot leave work billed on a deleted draft or a client unmailed."""
    from fastapi.testclient import TestClient

    from ez360.core.settings import Settings
    from operational_api.app import create_app
    from operational_api.db.billing_models import EmailAttachment
    from operational_api.db.models import User
    from operational_api.db.security_models import EmailOutbox
    from operational_api.security.tokens import issue_token

    w = _world(ops_db)
    with w["sm"]() as s, s.begin():
        token = issue_token(s, s.get(Company, w["company"]), s.get(User, w["user"]), "owner", "integration")[1]
    api = TestClient(create_app(Settings(_env_file=None, database_url=ops_db,
                                         public_base_url="https://books.studio.test")),
                     headers={"Authorization": f"Bearer {token}"})
    base = f"/api/v1/companies/{w['company']}/invoices"

    first = _draft(w)
    assert api.delete(f"{base}/{first}").status_code == 200
    second = _draft(w)  # the same work drafts again: the deleted draft gave it back
    answer = api.post(f"{base}/{second}/send", json={})
    assert answer.status_code == 200, answer.text
    assert answer.json()["status"] == "sent"

    with w["sm"]() as s:
        mails = s.scalars(select(EmailOutbox).where(EmailOutbox.to_address == "ap@globex.test")).all()
        assert len(mails) == 1
        number = answer.json()["number"]
        assert number in mails[0].subject
        attachment = s.scalar(select(EmailAttachment).where(EmailAttachment.outbox_id == mails[0].id))
        assert attachment.filename == f"{number}.pdf" and attachment.content.startswith(b"%PDF")
    assert api.delete(f"{base}/{second}").status_code == 409  # a sent invoice keeps its work: credit it instead
    w["engine"].dispose()
