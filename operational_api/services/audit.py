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
from operational_api.db.models import AuditHead, AuditLog, Company


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
    last_state: dict[tuple[str, int], dict | None] = {}

    def add(problem, detail, row=None):
        findings.append(Finding(company.id, company.slug, problem, detail, row["id"] if row else None,
                                row["entity_type"] if row else None, row["entity_id"] if row else None))

    for row in rows:
        if row["seq"] != expected_seq:
            add("missing", f"audit rows with seq {expected_seq}..{row['seq'] - 1} are missing (deleted) before "
                           f"audit row {row['id']}", row)
        elif row["prev_hash"] != prev_hash:
            add("tampered", f"audit row {row['id']} (seq {row['seq']}) does not link to the row before it", row)
        if audit_trail.row_hash(row["prev_hash"], dict(row)) != row["hash"]:
            add("tampered", f"audit row {row['id']} (seq {row['seq']}, {row['entity_type']} {row['entity_id']}) "
                            "was changed: its content does not match its hash", row)
        expected_seq, prev_hash = row["seq"] + 1, row["hash"]
        last_state[(row["entity_type"], row["entity_id"])] = row["after"]
    head = session.get(AuditHead, company.id)
    if head is not None and (head.last_seq != expected_seq - 1 or head.last_hash != prev_hash):
        add("truncated", f"the audit log ends at seq {expected_seq - 1} but its head records seq {head.last_seq}: "
                         "the newest audit rows were deleted or changed")
    return last_state


def _verify_records(session: Session, company: Company, last_state: dict, findings: list[Finding]) -> None:
    for entity, model in audit_trail.AUDITED.items():
        key_column = model.id if entity == "company" else model.company_id
        seen = set()
        for obj in session.scalars(select(model).where(key_column == company.id).order_by(model.id)):
            seen.add(obj.id)
            key = (entity, obj.id)
            current = audit_trail.snapshot(obj)
            if key not in last_state:
                findings.append(Finding(company.id, company.slug, "unaudited",
                                        f"{entity} {obj.id} has no audit record (written behind the API's back)",
                                        entity_type=entity, entity_id=obj.id))
            elif last_state[key] is None:
                findings.append(Finding(company.id, company.slug, "drift",
                                        f"{entity} {obj.id} was deleted according to the audit log but exists",
                                        entity_type=entity, entity_id=obj.id))
            elif last_state[key] != current:
                changed = sorted(k for k in current if current.get(k) != last_state[key].get(k))
                findings.append(Finding(company.id, company.slug, "drift",
                                        f"{entity} {obj.id} differs from its last audited state in "
                                        f"{', '.join(changed)} (changed behind the API's back)",
                                        entity_type=entity, entity_id=obj.id))
        for (kind, entity_id), state in last_state.items():
            if kind == entity and state is not None and entity_id not in seen:
                findings.append(Finding(company.id, company.slug, "vanished",
                                        f"{entity} {entity_id} is in the audit log but no longer exists "
                                        "(deleted behind the API's back)", entity_type=entity, entity_id=entity_id))
