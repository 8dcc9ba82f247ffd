"""The audit trail: every create, change, state transition and delete of an audited row, written in the same
transaction as the change itself, by a session hook (so no code path can forget it).

Each row records the actor, the company, the request id, and the row's state before and after. Rows form one
hash chain per company: `hash = HMAC-SHA256(audit key, canonical JSON of (prev_hash, the row's content))`, and
`audit_heads` holds each chain's last link, so a changed, removed or truncated row breaks verification
(`ez360 audit verify`, `operational_api.services.audit.verify`). The key (`EZ360_AUDIT_KEY`, comma-separated
for rotation: the first seals, all verify) is what makes a row recomputed with SQL, plus a matching head update,
fail verification: whoever can write the database cannot seal a row without it. The database refuses TRUNCATE
of the trail and lets `audit_heads` only follow the newest row (migration 0009).

When rows are written (issue 8's write path): each flush only *collects* the audit items of what it wrote
(snapshots taken then); the chain is sealed in `before_commit`, just before COMMIT: the company's head row is
locked (the last lock of the lock order in `operational_api.db.locking`), the rows get their sequence numbers
and hashes and are inserted, the head moves, and COMMIT releases the lock. So writers of one company queue on
the head only for that final step, not for their whole transaction; a rolled-back savepoint drops the items
it collected.

Security-relevant rows are in the chain too: memberships and roles, API tokens, and the company's numbering
settings (the `company` row) and counters (`number_sequence`, written with SQL by `next_number`, audited
explicitly); user rows (email, active, verification) and their 2FA state are chained into every company the
user is a member of. Secret columns (password hash, TOTP ciphertexts) are chained as a SHA-256 digest, never
as their value; volatile bookkeeping (a token's last use, the TOTP replay step) is not chained.

Snapshots hold every column except `created_at`/`updated_at` (the audit row has its own time), normalised so
that a value read back from SQLite or PostgreSQL snapshots exactly as it was written: Decimal at its column's
scale, datetimes in UTC ISO 8601, dates in ISO 8601.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, bindparam, event, insert, inspect, select, update
from sqlalchemy.orm import Session

from operational_api.db import models as m
from operational_api.db.security_models import UserSecurity

GENESIS = "0" * 64
NOT_SNAPSHOT = frozenset({"created_at", "updated_at"})
NOT_CHAINED: dict[type, frozenset[str]] = {  # volatile bookkeeping, not a security state
    m.ApiToken: frozenset({"last_used_at"}), UserSecurity: frozenset({"totp_last_step"}),
}
DIGESTED: dict[type, frozenset[str]] = {  # secrets: chained as a digest, so a change shows without the value
    m.User: frozenset({"password_hash"}), UserSecurity: frozenset({"totp_secret", "totp_pending_secret"}),
    m.ApiToken: frozenset({"token_hash"}),
}

# entity type name -> model; the order is the order rows of one flush are written in (parents first)
AUDITED: dict[str, type] = {
    "company": m.Company, "user": m.User, "user_security": UserSecurity, "membership": m.Membership,
    "api_token": m.ApiToken, "account": m.Account, "client": m.Client,
    "project": m.Project, "time_entry": m.TimeEntry, "expense": m.Expense, "invoice": m.Invoice,
    "invoice_line": m.InvoiceLine, "credit_note": m.CreditNote, "payment": m.Payment, "refund": m.Refund,
    "payment_allocation": m.PaymentAllocation, "journal_entry": m.JournalEntry, "journal_line": m.JournalLine,
    "closed_period": m.ClosedPeriod, "number_sequence": m.NumberSequence,
}
ENTITY_OF: dict[type, str] = {model: name for name, model in AUDITED.items()}
USER_LEVEL = frozenset({"user", "user_security"})  # chained into each company the user is a member of
# number_sequences rows are keyed (company, kind): their audit entity id is the kind's number here
SEQUENCE_KINDS = {"invoice": 1, "credit_note": 2}
COUNTER_IDS = SEQUENCE_KINDS
_ORDER = {name: i for i, name in enumerate(AUDITED)}
SEAL_ENTITY = "audit_chain"  # the row migration 0009 appends on top of an unkeyed (older) chain
PENDING = "ez360_audit_pending"
KEYS_INFO = "ez360_audit_keys"
SETTING = "EZ360_AUDIT_KEY"
DEVELOPMENT_KEY = b"ez360 development audit key (public: never for production)"


class AuditKeyError(ValueError):
    """No audit key configured in production."""


def keys_from(settings) -> list[bytes]:
    keys = [k.strip().encode() for k in settings.audit_key.get_secret_value().split(",") if k.strip()]
    if not keys:
        if settings.environment == "production":
            raise AuditKeyError(f"{SETTING} must be set in production (a long random string)")
        return [DEVELOPMENT_KEY]
    return keys


_process_keys: list[bytes] | None = None


def configure(settings) -> None:
    """Install the process-wide audit keys (the CLI, scripts; API sessions carry their app's keys)."""
    global _process_keys
    _process_keys = keys_from(settings)


def keys(session: Session | None = None) -> list[bytes]:
    if session is not None and session.info.get(KEYS_INFO):
        return session.info[KEYS_INFO]
    if _process_keys is None:
        from ez360.core.settings import Settings
        configure(Settings())
    return _process_keys


def attach_keys(session: Session, settings) -> None:
    session.info[KEYS_INFO] = keys_from(settings)


def register(entity: str, model: type) -> None:
    """Audit one more model (a model module outside `models` calls this where its class is defined, so any
    session that can write the model audits it)."""
    AUDITED[entity] = model
    ENTITY_OF[model] = entity
    _ORDER.setdefault(entity, len(_ORDER))


@dataclass(frozen=True)
class Actor:
    """Who is acting: a user (with the request that carried the change) or the system."""

    user_id: int | None
    label: str
    request_id: str | None = None


SYSTEM = Actor(None, "system")


def set_actor(session: Session, actor: Actor) -> None:
    session.info["audit_actor"] = actor


def current_actor(session: Session) -> Actor:
    return session.info.get("audit_actor", SYSTEM)


def jsonable(value: Any, column=None) -> Any:
    if value is None or isinstance(value, bool | int | str):
        return value
    if isinstance(value, Decimal):
        scale = getattr(getattr(column, "type", None), "scale", None) if column is not None else None
        if scale is not None:
            value = value.quantize(Decimal(1).scaleb(-scale))
        return str(value)
    if isinstance(value, datetime):
        aware = value if value.tzinfo else value.replace(tzinfo=UTC)
        return aware.astimezone(UTC).isoformat()
    if isinstance(value, date):
        return value.isoformat()
    if isinstance(value, float):  # never expected on an audited row; recorded exactly rather than silently
        return repr(value)
    return value


def _columns(model) -> list:
    skip = NOT_SNAPSHOT | NOT_CHAINED.get(model, frozenset())
    return [c for c in inspect(model).mapper.column_attrs if c.key not in skip]


def _chained(model, key: str, value):
    if value is not None and key in DIGESTED.get(model, ()):
        return "sha256:" + hashlib.sha256(str(value).encode()).hexdigest()
    return value


def snapshot(obj) -> dict:
    """The row's audited state as plain JSON values."""
    out = {}
    for attr in _columns(type(obj)):
        column = attr.columns[0]
        value = getattr(obj, attr.key)
        if isinstance(column.type, Numeric) and value is not None and not isinstance(value, Decimal):
            value = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        out[attr.key] = _chained(type(obj), attr.key, jsonable(value, column))
    return out


def _snapshot_before(obj) -> dict:
    state = inspect(obj)
    out = {}
    for attr in _columns(type(obj)):
        history = state.attrs[attr.key].history
        if history.deleted:
            value = history.deleted[0]
        elif history.added and not history.unchanged:
            value = None  # the attribute had no value before (set for the first time)
        else:
            value = getattr(obj, attr.key)
        out[attr.key] = _chained(type(obj), attr.key, jsonable(value, attr.columns[0]))
    return out


def canonical(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _content(prev_hash: str, row: dict) -> bytes:
    content = {key: row[key] for key in HASHED}
    content["occurred_at"] = jsonable(row["occurred_at"])
    return canonical({"prev": prev_hash, **content}).encode()


def row_hash(prev_hash: str, row: dict, key: bytes | None = None) -> str:
    """The chain link of one audit row (HMAC-SHA256 with the sealing key, by default the first configured one);
    `row` holds the stored columns other than id, prev_hash and hash."""
    return hmac.new(key if key is not None else keys()[0], _content(prev_hash, row), hashlib.sha256).hexdigest()


def legacy_hash(prev_hash: str, row: dict) -> str:
    """The unkeyed SHA-256 link of rows written before migration 0009 (accepted only below its seal row)."""
    return hashlib.sha256(_content(prev_hash, row)).hexdigest()


def seal_legacy_chain(conn, company_id: int, key: bytes) -> None:
    """Append a keyed seal row on top of an unkeyed chain (migration 0009): from here on the HMAC covers it."""
    heads, audit = m.AuditHead.__table__, m.AuditLog.__table__
    head = conn.execute(select(heads.c.last_seq, heads.c.last_hash).where(heads.c.company_id == company_id)).first()
    if head is None:
        return
    row = {"company_id": company_id, "seq": head.last_seq + 1, "occurred_at": datetime.now(UTC),
           "actor_user_id": None, "actor": SYSTEM.label, "request_id": None, "action": "seal",
           "entity_type": SEAL_ENTITY, "entity_id": 0, "before": None,
           "after": {"sealed_through_seq": head.last_seq, "scheme": "hmac-sha256"}}
    row["prev_hash"], row["hash"] = head.last_hash, row_hash(head.last_hash, row, key)
    conn.execute(insert(audit), [row])
    conn.execute(update(heads).where(heads.c.company_id == company_id)
                 .values(last_seq=row["seq"], last_hash=row["hash"]))


def seals(prev_hash: str, row: dict, stored_hash: str, ring: list[bytes]) -> bool:
    """Whether one of the keys sealed this row (constant-time comparison)."""
    content = _content(prev_hash, row)
    return any(hmac.compare_digest(hmac.new(k, content, hashlib.sha256).hexdigest(), stored_hash) for k in ring)


HASHED = ("company_id", "seq", "occurred_at", "actor_user_id", "actor", "request_id", "action", "entity_type",
          "entity_id", "before", "after")


def _entity_id(obj) -> int:
    if isinstance(obj, m.NumberSequence):
        return SEQUENCE_KINDS.get(obj.kind, 0)
    return obj.user_id if isinstance(obj, UserSecurity) else obj.id


def _companies_of(session: Session, entity: str, obj) -> list[int]:
    if entity == "company":
        return [obj.id]
    if entity in USER_LEVEL:
        user_id = obj.id if entity == "user" else obj.user_id
        return list(session.connection().execute(
            select(m.Membership.company_id).where(m.Membership.user_id == user_id)).scalars())
    return [obj.company_id]


def _action(before: dict | None, after: dict | None) -> str:
    if before is None:
        return "create"
    if after is None:
        return "delete"
    if "deleted_at" in after and before.get("deleted_at") != after.get("deleted_at"):
        return "delete" if after["deleted_at"] else "restore"
    if "status" in after and before.get("status") != after.get("status"):
        return "transition"
    return "update"


@event.listens_for(Session, "before_flush")
def _stamp_authorship(session: Session, _flush_context, _instances) -> None:
    actor = current_actor(session)
    for obj in session.new:
        if hasattr(obj, "created_by_id") and obj.created_by_id is None:
            obj.created_by_id = actor.user_id
        if hasattr(obj, "updated_by_id") and obj.updated_by_id is None:
            obj.updated_by_id = actor.user_id
    for obj in session.dirty:
        if hasattr(obj, "updated_by_id") and session.is_modified(obj) and obj.updated_by_id != actor.user_id:
            obj.updated_by_id = actor.user_id


@event.listens_for(Session, "before_flush", insert=True)
def _revoke_tokens_in_the_chain(session: Session, _flush_context, _instances) -> None:
    """Tokens lose their power when their member is removed or their user deactivated (the security layer
    revokes them with SQL as well): revoking them here through the ORM puts the revocation in the chain."""
    targets = []
    for obj in session.deleted:
        if isinstance(obj, m.Membership):
            targets.append((m.ApiToken.company_id == obj.company_id) & (m.ApiToken.user_id == obj.user_id))
    for obj in session.dirty:
        if isinstance(obj, m.User):
            history = inspect(obj).attrs.is_active.history
            if history.added and history.added[0] is False and (history.deleted or [True])[0] is not False:
                targets.append(m.ApiToken.user_id == obj.id)
    if not targets:
        return
    now = datetime.now(UTC)
    with session.no_autoflush:
        for condition in targets:
            for token in session.scalars(select(m.ApiToken).where(condition, m.ApiToken.revoked_at.is_(None))):
                token.revoked_at = now


@event.listens_for(Session, "after_flush")
def _collect_audit_items(session: Session, _flush_context) -> None:
    """Snapshot what this flush wrote; the rows are chained just before COMMIT (`_seal_before_commit`)."""
    changes: list[tuple[str, object, dict | None, dict | None]] = []
    for obj in session.new:
        entity = ENTITY_OF.get(type(obj))
        if entity:
            changes.append((entity, obj, None, snapshot(obj)))
    for obj in session.dirty:
        entity = ENTITY_OF.get(type(obj))
        if entity and session.is_modified(obj, include_collections=False):
            before, after = _snapshot_before(obj), snapshot(obj)
            if before != after:
                changes.append((entity, obj, before, after))
    for obj in session.deleted:
        entity = ENTITY_OF.get(type(obj))
        if entity:
            changes.append((entity, obj, _snapshot_before(obj), None))
    if not changes:
        return
    changes.sort(key=lambda c: (_ORDER[c[0]], _entity_id(c[1]), c[3] is None))
    items = []
    for entity, obj, before, after in changes:
        for company_id in _companies_of(session, entity, obj):
            items.append((company_id, entity, _entity_id(obj), before, after))
        if entity == "membership" and before is None:  # a new member: the user's current state joins the chain
            for user_entity, model in (("user", m.User), ("user_security", UserSecurity)):
                row = session.get(model, obj.user_id)
                if row is not None and row not in session.new:
                    items.append((obj.company_id, user_entity, obj.user_id, None, snapshot(row)))
    defer(session, current_actor(session), items)


def defer(session: Session, actor: Actor, items: list[tuple[int, str, int, dict | None, dict | None]]) -> None:
    """Queue audit items in the current (innermost) transaction; they are chained at COMMIT."""
    transaction = session.get_nested_transaction() or session.get_transaction()
    session.info.setdefault(PENDING, []).append((transaction, actor, items))


def _within(transaction, ended) -> bool:
    while transaction is not None:
        if transaction is ended:
            return True
        transaction = transaction.parent
    return False


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous_transaction) -> None:
    pending = session.info.get(PENDING)
    if pending:
        session.info[PENDING] = [p for p in pending if not _within(p[0], previous_transaction)]


@event.listens_for(Session, "before_commit")
def _seal_before_commit(session: Session) -> None:
    if session.get_nested_transaction() is not None:
        return  # a savepoint's release: its items wait for the real COMMIT
    session.flush()  # the last changes' items first
    pending = session.info.pop(PENDING, None)
    if not pending:
        return
    by_actor: list[tuple[Actor, list]] = []
    for _transaction, actor, items in pending:
        if by_actor and by_actor[-1][0] == actor:
            by_actor[-1][1].extend(items)
        else:
            by_actor.append((actor, list(items)))
    seal(session, by_actor)


def append(session: Session, actor: Actor, items: list[tuple[int, str, int, dict | None, dict | None]]) -> None:
    """Chain audit rows now (the head rows are locked until COMMIT); writers use `defer` instead."""
    seal(session, [(actor, items)])


_HEAD_FOR_UPDATE = (select(m.AuditHead.__table__.c.last_seq, m.AuditHead.__table__.c.last_hash)
                    .where(m.AuditHead.__table__.c.company_id == bindparam("company_id")).with_for_update())


def seal(session: Session, batches: list[tuple[Actor, list]]) -> None:
    """Lock each company's head (ascending company id), chain the rows in order, move the head."""
    conn = session.connection()
    heads, audit = m.AuditHead.__table__, m.AuditLog.__table__
    key = keys(session)[0]
    now = datetime.now(UTC)
    companies = sorted({item[0] for _actor, items in batches for item in items})
    for company_id in companies:
        head = conn.execute(_HEAD_FOR_UPDATE, {"company_id": company_id}).first()
        seq, prev = (head.last_seq, head.last_hash) if head else (0, GENESIS)
        rows = []
        for actor, items in batches:
            for cid, entity, entity_id, before, after in items:
                if cid != company_id:
                    continue
                seq += 1
                row = {"company_id": company_id, "seq": seq, "occurred_at": now, "actor_user_id": actor.user_id,
                       "actor": actor.label[:100], "request_id": actor.request_id,
                       "action": _action(before, after), "entity_type": entity, "entity_id": entity_id,
                       "before": before, "after": after}
                row["prev_hash"], row["hash"] = prev, row_hash(prev, row, key)
                prev = row["hash"]
                rows.append(row)
        move = update(heads).where(heads.c.company_id == company_id).values(last_seq=seq, last_hash=prev)
        if head and conn.dialect.name == "postgresql":
            _insert_and_move(conn, rows, company_id, seq, prev)
        elif head:
            conn.execute(insert(audit), rows)
            conn.execute(move)
        else:
            conn.execute(insert(audit), rows)
            conn.execute(insert(heads).values(company_id=company_id, last_seq=seq, last_hash=prev))


_SEALING_SQL: dict[int, str] = {}  # rows -> the statement (its text depends only on how many rows)


def _insert_and_move(conn, rows: list[dict], company_id: int, seq: int, prev: str) -> None:
    """PostgreSQL: the rows and the head's move in one statement, one round trip fewer while the head is locked.
    Plain SQL kept per row count: SQLAlchemy compiles a multi-row VALUES afresh on every call (it cannot cache
    one), which cost more CPU under the lock than the round trip saved. The JSON columns are written by the
    column type's own serializer, so the stored values are the ORM's to the byte."""
    sql = _SEALING_SQL.get(len(rows))
    if sql is None:
        row = "(" + ", ".join(["%s"] * 9 + ["%s::json", "%s::json", "%s", "%s"]) + ")"
        sql = _SEALING_SQL[len(rows)] = (
            f"WITH sealed AS (INSERT INTO audit_log ({', '.join(_SEALED_COLUMNS)}) VALUES "
            f"{', '.join([row] * len(rows))}) UPDATE audit_heads SET last_seq = %s, last_hash = %s "
            f"WHERE company_id = %s")
    json_column = m.AuditLog.__table__.c.before.type.bind_processor(conn.dialect)
    params: list = []
    for row in rows:
        params.extend(json_column(row[c]) if c in ("before", "after") else row[c] for c in _SEALED_COLUMNS)
    conn.exec_driver_sql(sql, (*params, seq, prev, company_id))


_SEALED_COLUMNS = ("company_id", "seq", "occurred_at", "actor_user_id", "actor", "request_id", "action",
                   "entity_type", "entity_id", "before", "after", "prev_hash", "hash")


def sequence_state(company_id: int, kind: str, last_value: int) -> dict:
    return {"company_id": company_id, "kind": kind, "last_value": last_value}


def record_sequence(session: Session, company_id: int, kind: str, before: int | None, after: int) -> None:
    """A gapless counter moved (written with SQL, not the ORM): chain it like any audited row."""
    defer(session, current_actor(session), [
        (company_id, "number_sequence", SEQUENCE_KINDS.get(kind, 0),
         None if before is None else sequence_state(company_id, kind, before),
         sequence_state(company_id, kind, after))])
