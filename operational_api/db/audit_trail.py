"""The audit trail: every create, change, state transition and delete of an audited row, written in the same
transaction as the change itself, by a session hook (so no code path can forget it).

Each row records the actor, the company, the request id, and the row's state before and after. Rows form one
hash chain per company: `hash = sha256(canonical JSON of (prev_hash, the row's content))`, and `audit_heads`
holds each chain's last link, so a changed, removed or truncated row breaks verification
(`ez360 audit verify`, `operational_api.services.audit.verify`).

Snapshots hold every column except `created_at`/`updated_at` (the audit row has its own time), normalised so
that a value read back from SQLite or PostgreSQL snapshots exactly as it was written: Decimal at its column's
scale, datetimes in UTC ISO 8601, dates in ISO 8601.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import Numeric, event, insert, inspect, select, update
from sqlalchemy.orm import Session

from operational_api.db import models as m

GENESIS = "0" * 64
NOT_SNAPSHOT = frozenset({"created_at", "updated_at"})

# entity type name -> model; the order is the order rows of one flush are written in (parents first)
AUDITED: dict[str, type] = {
    "company": m.Company, "membership": m.Membership, "account": m.Account, "client": m.Client,
    "project": m.Project, "time_entry": m.TimeEntry, "expense": m.Expense, "invoice": m.Invoice,
    "invoice_line": m.InvoiceLine, "credit_note": m.CreditNote, "payment": m.Payment, "refund": m.Refund,
    "payment_allocation": m.PaymentAllocation, "journal_entry": m.JournalEntry, "journal_line": m.JournalLine,
    "closed_period": m.ClosedPeriod,
}
ENTITY_OF: dict[type, str] = {model: name for name, model in AUDITED.items()}
_ORDER = {name: i for i, name in enumerate(AUDITED)}


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
    return [c for c in inspect(model).mapper.column_attrs if c.key not in NOT_SNAPSHOT]


def snapshot(obj) -> dict:
    """The row's audited state as plain JSON values."""
    out = {}
    for attr in _columns(type(obj)):
        column = attr.columns[0]
        value = getattr(obj, attr.key)
        if isinstance(column.type, Numeric) and value is not None and not isinstance(value, Decimal):
            value = Decimal(str(value)) if isinstance(value, float) else Decimal(value)
        out[attr.key] = jsonable(value, column)
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
        out[attr.key] = jsonable(value, attr.columns[0])
    return out


def canonical(payload: Any) -> str:
    return json.dumps(payload, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def row_hash(prev_hash: str, row: dict) -> str:
    """The chain link of one audit row; `row` holds the stored columns other than id, prev_hash and hash."""
    content = {key: row[key] for key in HASHED}
    content["occurred_at"] = jsonable(row["occurred_at"])
    return hashlib.sha256(canonical({"prev": prev_hash, **content}).encode()).hexdigest()


HASHED = ("company_id", "seq", "occurred_at", "actor_user_id", "actor", "request_id", "action", "entity_type",
          "entity_id", "before", "after")


def _company_of(entity: str, obj) -> int:
    return obj.id if entity == "company" else obj.company_id


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


@event.listens_for(Session, "after_flush")
def _write_audit_rows(session: Session, _flush_context) -> None:
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
    changes.sort(key=lambda c: (_ORDER[c[0]], c[1].id, c[3] is None))
    append(session, current_actor(session),
           [(_company_of(entity, obj), entity, obj.id, before, after) for entity, obj, before, after in changes])


def append(session: Session, actor: Actor, items: list[tuple[int, str, int, dict | None, dict | None]]) -> None:
    """Chain audit rows onto each company's log (the head row is locked, so writers of one company queue)."""
    conn = session.connection()
    heads, audit = m.AuditHead.__table__, m.AuditLog.__table__
    now = datetime.now(UTC)
    for company_id in sorted({item[0] for item in items}):
        head = conn.execute(select(heads.c.last_seq, heads.c.last_hash).where(heads.c.company_id == company_id)
                            .with_for_update()).first()
        seq, prev = (head.last_seq, head.last_hash) if head else (0, GENESIS)
        rows = []
        for cid, entity, entity_id, before, after in items:
            if cid != company_id:
                continue
            seq += 1
            row = {"company_id": company_id, "seq": seq, "occurred_at": now, "actor_user_id": actor.user_id,
                   "actor": actor.label[:100], "request_id": actor.request_id, "action": _action(before, after),
                   "entity_type": entity, "entity_id": entity_id, "before": before, "after": after}
            row["prev_hash"], row["hash"] = prev, row_hash(prev, row)
            prev = row["hash"]
            rows.append(row)
        conn.execute(insert(audit), rows)
        if head:
            conn.execute(update(heads).where(heads.c.company_id == company_id).values(last_seq=seq, last_hash=prev))
        else:
            conn.execute(insert(heads).values(company_id=company_id, last_seq=seq, last_hash=prev))
