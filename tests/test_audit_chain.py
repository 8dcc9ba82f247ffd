"""The audit chain resists someone who can write SQL (issue 7 item 12) and is sealed at COMMIT (issue 8).

- TRUNCATE of the trail is refused (PostgreSQL); `audit_heads` cannot be moved back, deleted, or pointed at a
  row that is not the newest (both engines).
- A row recomputed with SQL plus a matching head update does not pass verification: the chain is an HMAC keyed
  with EZ360_AUDIT_KEY, which the database does not hold. Key rotation keeps old rows verifiable.
- Security-relevant rows changed with SQL (a token's role, a user's email, 2FA state, numbering counters and
  settings) show up as drift.
- While a transaction writes, the company's audit head is not locked: the head lock is taken just before COMMIT.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import uuid
from contextlib import contextmanager
from datetime import UTC, datetime
from decimal import Decimal

import psycopg2
import pytest
from psycopg2 import sql
from sqlalchemy import select, text
from sqlalchemy.exc import DBAPIError

from ez360.core.settings import Settings
from operational_api.db import audit_trail
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.db.models import AuditHead, Company
from operational_api.db.security_models import UserSecurity
from operational_api.security.tokens import issue_token
from operational_api.services import audit, companies, invoicing, records
from tests.support.postgres import SERVER_URL, temporary_database

KEY = "audit-key-for-tests-1"


def _settings(key: str = KEY) -> Settings:
    return Settings(_env_file=None, audit_key=key)


class Db:
    def __init__(self, url: str, key: str = KEY):
        self.url, self.key = url, key
        self.engine = make_engine(url)
        self.maker = make_sessionmaker(self.engine)

    def session(self, key: str | None = None):
        s = self.maker()
        audit_trail.attach_keys(s, _settings(key or self.key))
        return s

    def findings(self, key: str | None = None) -> list[audit.Finding]:
        with self.session(key) as s:
            return audit.verify(s)

    def sql(self, statement: str, **params):
        with self.engine.begin() as conn:
            return conn.execute(text(statement), params)


def _seed(url: str) -> dict:
    db = Db(url)
    with db.session() as s, s.begin():
        acme = companies.create_company(s, slug="acme", name="Acme", base_currency="USD", invoice_prefix="ACM",
                                        plan="business")
        owner = companies.create_user(s, email="owner@acme.test", full_name="Owner", password_hash="x")
        companies.add_member(s, acme, owner, "owner")
        admin = companies.create_user(s, email="admin@acme.test", full_name="Admin", password_hash="x")
        companies.add_member(s, acme, admin, "admin")
        s.add(UserSecurity(user_id=admin.id, totp_secret="ciphertext-1", totp_enabled_at=datetime.now(UTC)))
        issue_token(s, acme, admin, "admin", "script")
        client = records.create_client(s, acme, name="Client", email="c@example.org")
        invoice = invoicing.create_invoice(s, acme, client, [invoicing.LineInput("x", Decimal(1), 1000)])
        invoicing.send_invoice(s, acme, invoice, datetime(2026, 3, 31).date())
        ids = {"acme": acme.id, "admin": admin.id, "client": client.id}
    db.engine.dispose()
    return ids


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def seeded(request, tmp_path_factory):
    """One migrated, seeded database per engine for the module; each test works on a copy of it."""
    from operational_api.db import schema
    if request.param == "sqlite":
        path = tmp_path_factory.mktemp("audit-chain") / "template.sqlite3"
        schema.upgrade(f"sqlite:///{path}")
        yield "sqlite", path, _seed(f"sqlite:///{path}")
        return
    with temporary_database("ez360_audit_tmpl") as url:
        schema.upgrade(url)
        yield "postgres", url, _seed(url)


@pytest.fixture
def db(seeded, tmp_path):
    engine, template, ids = seeded
    if engine == "sqlite":
        copy = tmp_path / "ops.sqlite3"
        shutil.copyfile(template, copy)
        db = Db(f"sqlite:///{copy}")
        db.ids = ids
        yield db
        db.engine.dispose()
        return
    with _clone(template) as url:
        db = Db(url)
        db.ids = ids
        yield db
        db.engine.dispose()


@contextmanager
def _clone(template_url: str):
    """A copy of the template database (PostgreSQL's CREATE DATABASE ... TEMPLATE), dropped afterwards."""
    name = f"ez360_audit_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(SERVER_URL)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(
                sql.Identifier(name), sql.Identifier(template_url.rsplit("/", 1)[1])))
        yield template_url.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()


def _refused(db: Db, statement: str, message: str) -> None:
    with pytest.raises(DBAPIError) as raised:
        db.sql(statement)
    assert message in str(raised.value)


def test_untouched_books_verify_and_security_rows_are_in_the_chain(db):
    assert db.findings() == []
    chained = {row[0] for row in db.sql("SELECT DISTINCT entity_type FROM audit_log")}
    assert {"membership", "api_token", "user", "user_security", "number_sequence", "company"} <= chained
    secrets = db.sql("SELECT after FROM audit_log WHERE entity_type IN ('user', 'user_security', 'api_token')").all()
    dumped = " ".join(json.dumps(r[0]) if not isinstance(r[0], str) else r[0] for r in secrets)
    assert "ciphertext-1" not in dumped and '"x"' not in dumped  # secrets are chained as digests only


ON_POSTGRES = pytest.mark.parametrize("seeded", [pytest.param("postgres", marks=pytest.mark.postgres)],
                                      indirect=True)


@ON_POSTGRES
def test_truncating_the_audit_trail_is_refused_on_postgresql(db):
    for statement in ("TRUNCATE audit_log, audit_heads", "TRUNCATE audit_heads", "TRUNCATE audit_log CASCADE"):
        _refused(db, statement, "the audit trail cannot be truncated")
    assert db.sql("SELECT count(*) FROM audit_log").scalar() > 0
    assert db.findings() == []


def test_audit_heads_change_only_through_the_chain(db):
    c = db.ids["acme"]
    for statement in (f"UPDATE audit_heads SET last_seq = last_seq - 1 WHERE company_id = {c}",
                      f"UPDATE audit_heads SET last_hash = '{'f' * 64}' WHERE company_id = {c}",
                      f"DELETE FROM audit_heads WHERE company_id = {c}"):
        _refused(db, statement, "audit_heads changes only through the audit chain")
    assert db.findings() == []


def _forge(db: Db, seal) -> None:
    """What an attacker with SQL does: append a recomputed row for a changed client, and move the head to it."""
    c = db.ids["acme"]
    head = db.sql(f"SELECT last_seq, last_hash FROM audit_heads WHERE company_id = {c}").one()
    before = db.sql(f"SELECT after FROM audit_log WHERE entity_type = 'client' AND entity_id = {db.ids['client']} "
                    "ORDER BY seq DESC LIMIT 1").scalar()
    before = json.loads(before) if isinstance(before, str) else before
    after = {**before, "name": "Forged Name"}
    row = {"company_id": c, "seq": head.last_seq + 1, "occurred_at": datetime.now(UTC), "actor_user_id": None,
           "actor": "system", "request_id": None, "action": "update", "entity_type": "client",
           "entity_id": db.ids["client"], "before": before, "after": after}
    digest = seal(head.last_hash, row)
    with db.engine.begin() as conn:
        conn.execute(text("UPDATE clients SET name = 'Forged Name' WHERE id = :i"), {"i": db.ids["client"]})
        conn.execute(text("INSERT INTO audit_log (company_id, seq, occurred_at, actor_user_id, actor, request_id, "
                          "action, entity_type, entity_id, before, after, prev_hash, hash) VALUES (:c, :seq, :at, "
                          "NULL, 'system', NULL, 'update', 'client', :e, :before, :after, :prev, :hash)"),
                     {"c": c, "seq": row["seq"], "at": row["occurred_at"], "e": row["entity_id"],
                      "before": json.dumps(before), "after": json.dumps(after), "prev": head.last_hash,
                      "hash": digest})
        conn.execute(text("UPDATE audit_heads SET last_seq = :seq, last_hash = :hash WHERE company_id = :c"),
                     {"seq": row["seq"], "hash": digest, "c": c})


def _plain_sha256(prev: str, row: dict) -> str:  # the unkeyed chain of before this change
    return hashlib.sha256(audit_trail._content(prev, row)).hexdigest()


def test_a_recomputed_forged_row_plus_head_update_does_not_pass_verify(db):
    _forge(db, _plain_sha256)
    problems = {(f.problem, f.entity_type) for f in db.findings()}
    assert ("tampered", "client") in problems, problems


def test_a_row_forged_with_another_key_does_not_pass(db):
    _forge(db, lambda prev, row: audit_trail.row_hash(prev, row, b"a guessed key"))
    assert any(f.problem == "tampered" for f in db.findings())


def test_the_real_key_seals_what_the_forger_could_not(db):
    _forge(db, lambda prev, row: audit_trail.row_hash(prev, row, KEY.encode()))
    assert db.findings() == []  # whoever holds EZ360_AUDIT_KEY can write the chain: keep it out of the database


def test_key_rotation_keeps_old_rows_verifiable(db):
    rotated = f"new-audit-key,{KEY}"
    with db.session(rotated) as s, s.begin():
        records.create_client(s, s.get(Company, db.ids["acme"]), name="After rotation", email="r@example.org")
    assert db.findings(rotated) == []
    assert any(f.problem == "tampered" for f in db.findings("new-audit-key"))  # old rows need the old key
    assert any(f.problem == "tampered" for f in db.findings(KEY))  # new rows are sealed with the new key


def test_removing_a_member_revokes_their_tokens_inside_the_chain(db):
    from operational_api.db.models import Membership
    with db.session() as s, s.begin():
        membership = s.scalar(select(Membership).where(Membership.user_id == db.ids["admin"]))
        companies.remove_member(s, s.get(Company, db.ids["acme"]), membership, "owner")
    assert db.sql("SELECT count(*) FROM api_tokens WHERE revoked_at IS NULL AND user_id = :u",
                  u=db.ids["admin"]).scalar() == 0
    revoked = db.sql("SELECT action FROM audit_log WHERE entity_type = 'api_token' ORDER BY seq DESC LIMIT 1")
    assert revoked.scalar() == "update"
    assert db.findings() == []


SECURITY_CHANGES = {
    "api_token": "UPDATE api_tokens SET role = 'owner'",
    "user": "UPDATE users SET email = 'attacker@evil.test' WHERE email = 'admin@acme.test'",
    "user_security": "UPDATE user_security SET totp_secret = 'attacker-seed', totp_enabled_at = NULL",
    "membership": "UPDATE memberships SET role = 'owner'",
    "number_sequence": "UPDATE number_sequences SET last_value = 0",
    "company": "UPDATE companies SET invoice_number_format = '{prefix}-{seq}'",
}


def test_security_relevant_rows_changed_with_sql_show_as_drift(db):
    assert db.findings() == []
    for change in SECURITY_CHANGES.values():
        db.sql(change)
    drift = {f.entity_type for f in db.findings() if f.problem == "drift"}
    assert set(SECURITY_CHANGES) <= drift, drift


@ON_POSTGRES
def test_the_head_is_not_locked_while_a_transaction_writes_only_at_commit(db):
    company_id = db.ids["acme"]
    head_seq = f"SELECT last_seq FROM audit_heads WHERE company_id = {company_id}"
    before = db.sql(head_seq).scalar()
    writer = db.session()
    with writer.begin():
        records.create_client(writer, writer.get(Company, company_id), name="Slow writer", email="s@example.org")
        writer.flush()
        with db.engine.connect() as other:  # another writer can take the head lock meanwhile (NOWAIT)
            head = other.execute(select(AuditHead.last_seq).where(AuditHead.company_id == company_id)
                                 .with_for_update(nowait=True)).scalar()
            other.rollback()
        assert head == before
    writer.close()
    assert db.sql(head_seq).scalar() == before + 1  # sealed at COMMIT
    assert db.findings() == []


def test_a_chain_written_before_the_audit_key_is_sealed_by_the_migration(tmp_path, monkeypatch):
    from operational_api.db import schema
    url = f"sqlite:///{tmp_path / 'legacy.sqlite3'}"
    schema.upgrade(url, "0009_recon_warehouse")  # every revision but the one that keys the audit chain
    with monkeypatch.context() as legacy:  # what the code before revision 0009 wrote: unkeyed SHA-256 links
        legacy.setattr(audit_trail, "row_hash", lambda prev, row, key=None: audit_trail.legacy_hash(prev, row))
        ids = _seed(url)
    db = Db(url)
    assert any(f.problem == "tampered" for f in db.findings())  # unkeyed rows that no seal covers
    monkeypatch.setenv("EZ360_AUDIT_KEY", KEY)
    schema.upgrade(url)
    assert db.findings() == []
    seal = db.sql("SELECT action, entity_type FROM audit_log ORDER BY seq DESC LIMIT 1").one()
    assert tuple(seal) == ("seal", audit_trail.SEAL_ENTITY)
    db.ids = ids
    _forge(db, _plain_sha256)  # an unkeyed row after the seal is a forgery
    assert any(f.problem == "tampered" and f.entity_type == "client" for f in db.findings())
    db.engine.dispose()
