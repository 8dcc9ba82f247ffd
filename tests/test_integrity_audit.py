"""The audit log: every change of a financial record with actor, company, request id, before and after;
hash-chained per company; `ez360 audit verify` names a tampered, deleted or bypassed row."""

from __future__ import annotations

from datetime import date
from decimal import Decimal

import pytest
from sqlalchemy import select, text
from typer.testing import CliRunner

from ez360.cli.app import app as cli
from operational_api.db.audit_trail import Actor, set_actor
from operational_api.db.engine import make_engine
from operational_api.db.models import AuditLog, Client, Company
from operational_api.services import audit, companies, invoicing, records
from tests.support.integrity import session_scope

runner = CliRunner()


@pytest.fixture
def books(ops_db, tmp_path, monkeypatch):
    url = ops_db
    monkeypatch.setenv("EZ360_DATABASE_URL", url)
    monkeypatch.setenv("EZ360_VAR_DIR", str(tmp_path / "var"))
    with session_scope(url) as s, s.begin():
        acme = companies.create_company(s, slug="acme", name="Acme", base_currency="USD", invoice_prefix="ACM")
        globex = companies.create_company(s, slug="globex", name="Globex", base_currency="EUR", invoice_prefix="GX")
        user = companies.create_user(s, email="fin@acme.test", full_name="Fin", password_hash="x")
        companies.add_member(s, acme, user, "finance")
        set_actor(s, Actor(user.id, f"user:{user.id}", "req-42"))
        client = records.create_client(s, acme, name="Client", email="c@example.org")
        invoice = invoicing.create_invoice(s, acme, client, [invoicing.LineInput("x", Decimal(1), 1000)])
        invoicing.send_invoice(s, acme, invoice, date(2026, 1, 31))
        records.create_client(s, globex, name="Theirs", email="t@example.org")
        ids = {"acme": acme.id, "client": client.id, "invoice": invoice.id, "user": user.id}
    return url, ids


def _verify(*args):
    return runner.invoke(cli, ["audit", "verify", *args])


def test_changes_are_recorded_with_actor_request_id_before_and_after(books):
    url, ids = books
    with session_scope(url) as s:
        rows = s.scalars(select(AuditLog).where(AuditLog.entity_type == "invoice",
                                                AuditLog.entity_id == ids["invoice"]).order_by(AuditLog.seq)).all()
    assert [r.action for r in rows][0] == "create" and rows[-1].action == "transition"
    sent = rows[-1]
    assert (sent.actor_user_id, sent.request_id, sent.company_id) == (ids["user"], "req-42", ids["acme"])
    assert (sent.before["status"], sent.after["status"], sent.after["number"]) == ("draft", "sent", "ACM-2026-00001")
    assert sent.after["created_by_id"] == ids["user"]


def test_soft_delete_and_restore_are_audited_as_such(books):
    url, ids = books
    with session_scope(url) as s, s.begin():
        from operational_api.db.models import Client, Company

        company, client = s.get(Company, ids["acme"]), s.get(Client, ids["client"])
        client2 = records.create_client(s, company, name="Other", email="o@example.org")
        records.delete_client(s, company, client2)
        records.restore_client(s, company, client2)
        assert client.id
    with session_scope(url) as s:  # the chain is sealed at COMMIT (the head lock is taken last, issue 8)
        actions = s.scalars(select(AuditLog.action).where(AuditLog.entity_type == "client",
                                                          AuditLog.entity_id == client2.id)
                            .order_by(AuditLog.seq)).all()
        assert actions == ["create", "delete", "restore"]


def test_audit_verify_passes_on_untouched_books(books):
    result = _verify()
    assert result.exit_code == 0, result.output
    assert "audit trail intact" in result.output


def _bypass_triggers(engine, table: str):
    """What a database superuser could do: switch the append-only protection off."""
    with engine.begin() as conn:
        if engine.dialect.name == "sqlite":
            for (name,) in conn.execute(text("SELECT name FROM sqlite_master WHERE type = 'trigger' AND "
                                             "tbl_name = :t"), {"t": table}):
                conn.execute(text(f"DROP TRIGGER {name}"))
        else:
            conn.execute(text(f"ALTER TABLE {table} DISABLE TRIGGER USER"))


def test_audit_verify_names_a_tampered_audit_row(books):
    url, ids = books
    engine = make_engine(url)
    _bypass_triggers(engine, "audit_log")
    with engine.begin() as conn:
        row_id = conn.execute(text("SELECT id FROM audit_log WHERE company_id = :c AND entity_type = 'invoice' "
                                   "ORDER BY seq DESC LIMIT 1"), {"c": ids["acme"]}).scalar()
        conn.execute(text("UPDATE audit_log SET actor = 'nobody' WHERE id = :id"), {"id": row_id})
    engine.dispose()
    result = _verify()
    assert result.exit_code == 1
    assert f"company acme (id {ids['acme']}): audit row {row_id}" in result.output and "was changed" in result.output
    assert "globex" not in result.output


def test_audit_verify_names_a_deleted_audit_row_and_deleted_newest_rows(books):
    url, ids = books
    engine = make_engine(url)
    _bypass_triggers(engine, "audit_log")
    with engine.begin() as conn:
        seqs = conn.execute(text("SELECT seq FROM audit_log WHERE company_id = :c ORDER BY seq"),
                            {"c": ids["acme"]}).scalars().all()
        conn.execute(text("DELETE FROM audit_log WHERE company_id = :c AND seq IN (:a, :b)"),
                     {"c": ids["acme"], "a": seqs[3], "b": seqs[-1]})
    engine.dispose()
    result = _verify("--company", "acme")
    assert result.exit_code == 1
    assert f"audit rows with seq {seqs[3]}..{seqs[3]} are missing" in result.output
    assert f"head records seq {seqs[-1]}" in result.output


def test_audit_verify_detects_a_row_changed_behind_the_apis_back(books):
    url, ids = books
    engine = make_engine(url)
    with engine.begin() as conn:  # clients are not final records: the database allows this, the audit log notices
        conn.execute(text("UPDATE clients SET name = 'Renamed in SQL' WHERE id = :id"), {"id": ids["client"]})
    engine.dispose()
    result = _verify()
    assert result.exit_code == 1
    assert f"company acme (id {ids['acme']}): client {ids['client']} differs from its last audited state in name" \
        in result.output


def test_verify_finds_nothing_after_normal_work_through_the_services(books):
    url, ids = books
    with session_scope(url) as s:
        assert audit.verify(s) == []


def test_audit_verify_detects_a_draft_invoice_and_an_expense_changed_behind_the_apis_back(books):
    url, ids = books
    with session_scope(url) as s, s.begin():
        set_actor(s, Actor(ids["user"], f"user:{ids['user']}", "req-43"))
        acme = s.get(Company, ids["acme"])
        client = s.get(Client, ids["client"])
        draft = invoicing.create_invoice(s, acme, client, [invoicing.LineInput("draft", Decimal(2), 500)])
        expense = records.record_expense(s, acme, category="software", amount_minor=4500, incurred_on=date(2026, 2, 1))
        draft_id, expense_id = draft.id, expense.id
    with session_scope(url) as s:
        assert audit.verify(s) == []
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE invoices SET notes = 'edited in SQL' WHERE id = :id"), {"id": draft_id})
        conn.execute(text("UPDATE expenses SET vendor = 'someone else' WHERE id = :id"), {"id": expense_id})
    engine.dispose()
    result = _verify()
    assert result.exit_code == 1
    assert f"invoice {draft_id} differs from its last audited state in notes" in result.output
    assert f"expense {expense_id} differs from its last audited state in vendor" in result.output
