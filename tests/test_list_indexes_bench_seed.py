"""The benchmark's fast seeding (COPY, `benchmarks/bench_api_seed.py`) leaves books the rest of the product
agrees with: the audit chain verifies, the ledger ties out to the invoices and payments, and the API pages,
sends and allocates on the seeded rows as on rows it wrote itself (issue 8)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from benchmarks import bench_api_seed as seeding
from ez360.core.settings import Settings
from operational_api.app import create_app
from operational_api.db import schema
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.db.models import (
    Account,
    Company,
    Invoice,
    InvoiceLine,
    JournalEntry,
    JournalLine,
    Payment,
    PaymentAllocation,
    User,
)
from operational_api.security.tokens import issue_token
from operational_api.services import audit
from tests.support.postgres import temporary_database

pytestmark = pytest.mark.postgres
MIX = seeding.Mix(paid=180, partly_paid=30, open=40, drafts=25)


@pytest.fixture(scope="module")
def seeded():
    with temporary_database() as url:
        schema.upgrade(url)
        company = seeding.create_company(url, slug="seeded", name="Seeded Ltd", clients=7, password_hash="x",
                                         finance_users=1)
        seeding.BATCH, batch = 100, seeding.BATCH  # several COPY rounds, so the chain crosses batches
        try:
            added = seeding.add_invoices(url, company.id, company.client_ids, company.project_ids, MIX)
        finally:
            seeding.BATCH = batch
        engine = make_engine(url)
        yield url, engine, company, added
        engine.dispose()


def test_seeded_rows_pass_the_audit_verification_and_tie_out_to_the_ledger(seeded):
    url, engine, company, added = seeded
    with make_sessionmaker(engine)() as s:
        assert audit.verify(s) == []
        statuses = Counter(s.scalars(select(Invoice.status).where(Invoice.company_id == company.id)))
        assert statuses == {"paid": MIX.paid, "partially_paid": MIX.partly_paid, "sent": MIX.open,
                            "draft": MIX.drafts}
        assert s.scalar(select(func.count()).select_from(InvoiceLine)
                        .where(InvoiceLine.invoice_id.in_(added.drafts))) >= MIX.drafts
        # the ledger, recomputed from the documents: AR = invoiced - received; the bank = received
        sent = select(Invoice).where(Invoice.company_id == company.id, Invoice.status != "draft")
        invoiced = sum(i.total_minor for i in s.scalars(sent))
        received = s.scalar(select(func.sum(Payment.amount_minor)).where(Payment.company_id == company.id))
        allocated = s.scalar(select(func.sum(PaymentAllocation.amount_minor))
                             .where(PaymentAllocation.company_id == company.id))
        balances = dict(s.execute(
            select(Account.code, func.sum(JournalLine.debit_minor - JournalLine.credit_minor))
            .join(JournalLine, JournalLine.account_id == Account.id)
            .join(JournalEntry, JournalEntry.id == JournalLine.journal_entry_id)
            .where(JournalEntry.company_id == company.id, JournalEntry.status == "posted")
            .group_by(Account.code)).all())
    assert received == allocated > 0
    assert {code: int(v) for code, v in balances.items()} == {"1100": invoiced - received, "4000": -invoiced,
                                                              "1000": received}


def test_the_api_pages_sends_and_allocates_on_seeded_rows_and_the_chain_stays_whole(seeded):
    url, engine, company, added = seeded
    with make_sessionmaker(engine)() as s, s.begin():
        user = s.scalar(select(User).where(User.email == company.finance_emails[0]))
        _, token = issue_token(s, s.get(Company, company.id), user, "finance", "seed-check")
    headers = {"Authorization": f"Bearer {token}"}
    base = f"/api/v1/companies/{company.id}"
    with TestClient(create_app(Settings(_env_file=None, database_url=url))) as api:
        page = api.get(f"{base}/invoices", params={"limit": 50, "status": "paid"}, headers=headers).json()
        assert len(page["items"]) == 50 and page["next_cursor"]
        assert all(i["lines"] and i["amount_due"] == "0.00" for i in page["items"])

        sent = api.post(f"{base}/invoices/{added.drafts[0]}/send", json={}, headers=headers)
        assert sent.status_code == 200, sent.text
        year = datetime.now(UTC).year
        assert sent.json()["number"] == f"BEN-{year}-{MIX.total - MIX.drafts + 1:05d}"  # the counter continues

        open_invoice = api.get(f"{base}/invoices/{added.open[0]}", headers=headers).json()
        paid = api.post(f"{base}/payments", headers=headers, json={
            "client_id": open_invoice["client_id"], "method": "bank", "amount": open_invoice["amount_due"],
            "received_on": datetime.now(UTC).date().isoformat(),
            "allocations": [{"invoice_id": added.open[0], "amount": open_invoice["amount_due"]}]})
        assert paid.status_code == 201, paid.text
        assert api.get(f"{base}/invoices/{added.open[0]}", headers=headers).json()["status"] == "paid"
    with make_sessionmaker(engine)() as s:
        assert audit.verify(s) == []
