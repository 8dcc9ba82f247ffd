"""Reading and verifying the audit trail.

`verify` walks each company's hash chain (a changed row no longer matches its hash, a deleted row leaves a gap
in the sequence or breaks the next row's link, deleted newest rows fall short of the chain head) and compares
every audited record with its last audited state (a row changed, added or deleted with SQL behind the API's
back no longer matches). Each finding names the company and the row.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from operational_api.db import audit_trail
from operational_api.db.models import AuditHead, AuditLog, Company, Membership


@dataclass(frozen=True)
class Finding:
    company_id: int
    company_slug: str
    problem: str  # tampered | missing | truncated | drift | unaudited | vanished
    detail: str
    audit_row_id: int | None = None
    entity_type: str | None = None
    entity_id: int | None = None

    def __str__(self) -> str:
        return f"company {self.company_slug} (id {self.company_id}): {self.detail}"


def verify(session: Session, company_id: int | None = None) -> list[Finding]:
    query = select(Company).order_by(Company.id)
    if company_id is not None:
        query = query.where(Company.id == company_id)
    findings: list[Finding] = []
    for company in session.scalars(query):
        last_state = _verify_chain(session, company, findings)
        _verify_records(session, company, last_state, findings)
    return findings


def _verify_chain(session: Session, company: Company, findings: list[Finding]) -> dict:
    table = AuditLog.__table__
    rows = session.execute(select(table).where(table.c.company_id == company.id).order_by(table.c.seq)).mappings()
    expected_seq, prev_hash = 1, audit_trail.GENESIS
    ring = audit_trail.keys(session)
    legacy_done = False
    last_state: dict[tuple[str, int], dict | None] = {}

    def add(problem, detail, row=None):
        findings.append(Finding(company.id, company.slug, problem, detail, row["id"] if row else None,
                                row["entity_type"] if row else None, row["entity_id"] if row else None))

    unsealed_legacy: list = []  # unkeyed rows from before migration 0009: valid only below a seal row
    for row in rows:
        if row["seq"] != expected_seq:
            add("missing", f"audit rows with seq {expected_seq}..{row['seq'] - 1} are missing (deleted) before "
                           f"audit row {row['id']}", row)
        elif row["prev_hash"] != prev_hash:
            add("tampered", f"audit row {row['id']} (seq {row['seq']}) does not link to the row before it", row)
        if not audit_trail.seals(row["prev_hash"], dict(row), row["hash"], ring):
            if not legacy_done and audit_trail.legacy_hash(row["prev_hash"], dict(row)) == row["hash"]:
                unsealed_legacy.append(row)
                expected_seq, prev_hash = row["seq"] + 1, row["hash"]
                last_state[(row["entity_type"], row["entity_id"])] = row["after"]
                continue
            add("tampered", f"audit row {row['id']} (seq {row['seq']}, {row['entity_type']} {row['entity_id']}) "
                            "was changed or forged: its content is not sealed by its hash under any audit key",
                row)
        else:
            legacy_done = True  # after the first keyed row, an unkeyed one is a forgery
            if row["entity_type"] == audit_trail.SEAL_ENTITY:
                unsealed_legacy.clear()  # the seal's HMAC covers the older chain through its prev_hash
        expected_seq, prev_hash = row["seq"] + 1, row["hash"]
        last_state[(row["entity_type"], row["entity_id"])] = row["after"]
    for row in unsealed_legacy:
        add("tampered", f"audit row {row['id']} (seq {row['seq']}, {row['entity_type']} {row['entity_id']}) "
                        "carries an unkeyed hash that no seal row covers: forged or written without the audit key",
            row)
    head = session.get(AuditHead, company.id)
    if head is not None and (head.last_seq != expected_seq - 1 or head.last_hash != prev_hash):
        add("truncated", f"the audit log ends at seq {expected_seq - 1} but its head records seq {head.last_seq}: "
                         "the newest audit rows were deleted or changed")
    return last_state


def _rows_of(session: Session, company: Company, entity: str, model) -> list[tuple[int, dict]]:
    """(entity id, current audited state) of each row of this entity that belongs in the company's chain."""
    if entity == "company":
        query = select(model).where(model.id == company.id)
    elif entity in audit_trail.USER_LEVEL:
        key = model.id if entity == "user" else model.user_id
        members = select(Membership.user_id).where(Membership.company_id == company.id)
        query = select(model).where(key.in_(members)).order_by(key)
    else:
        query = select(model).where(model.company_id == company.id).order_by(*model.__table__.primary_key)
    return [(audit_trail._entity_id(obj), audit_trail.snapshot(obj)) for obj in session.scalars(query)]


def _still_exists(session: Session, entity: str, model, entity_id: int) -> bool:
    return entity in audit_trail.USER_LEVEL and session.get(model, entity_id) is not None


def _verify_records(session: Session, company: Company, last_state: dict, findings: list[Finding]) -> None:
    entities = [(entity, model, _rows_of(session, company, entity, model))
                for entity, model in audit_trail.AUDITED.items()]
    for entity, model, rows in entities:
        seen = set()
        for entity_id, current in rows:
            seen.add(entity_id)
            key = (entity, entity_id)
            if key not in last_state:
                findings.append(Finding(company.id, company.slug, "unaudited",
                                        f"{entity} {entity_id} has no audit record (written behind the API's back)",
                                        entity_type=entity, entity_id=entity_id))
            elif last_state[key] is None:
                findings.append(Finding(company.id, company.slug, "drift",
                                        f"{entity} {entity_id} was deleted according to the audit log but exists",
                                        entity_type=entity, entity_id=entity_id))
            elif last_state[key] != current:
                changed = sorted(k for k in current if current.get(k) != last_state[key].get(k))
                findings.append(Finding(company.id, company.slug, "drift",
                                        f"{entity} {entity_id} differs from its last audited state in "
                                        f"{', '.join(changed)} (changed behind the API's back)",
                                        entity_type=entity, entity_id=entity_id))
        for (kind, entity_id), state in last_state.items():
            if kind == entity and state is not None and entity_id not in seen \
                    and not _still_exists(session, entity, model, entity_id):
                findings.append(Finding(company.id, company.slug, "vanished",
                                        f"{entity} {entity_id} is in the audit log but no longer exists "
                                        "(deleted behind the API's back)", entity_type=entity, entity_id=entity_id))
