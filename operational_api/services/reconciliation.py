"""Reconciliation resolutions: what finance decided about an item of the warehouse's `fct_reconciliation_items`.

Append-only: a decision is a new row, never an update or a delete; the latest row per (company, pair, item)
wins and `reopened` undoes the decision before it. Each row is audited like every ops write (the audit hook of
`operational_api.db.audit_trail`), lands in `raw_ops.reconciliation_resolutions` with the ops ingest, and the
warehouse joins it back onto the item on its next run. Until then the dashboards show it as pending.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from operational_api.db.reconciliation_models import ReconciliationResolution
from operational_api.services.errors import Conflict, ValidationFailed

ACTIONS = ("resolved", "accepted_difference", "written_off", "linked", "reopened")
# the pairs the warehouse compares (MARTS contract, same strings as the demo's ground truth)
PAIRS = (
    "ops_payment~stripe_charge", "stripe_balance_transaction~stripe_payout", "stripe_payout~erp_bank_transaction",
    "stripe_charge~erp_payment_entry", "stripe_refund~erp_journal_entry", "stripe_balance_transaction~erp_gl_entry",
    "ops_invoice~erp_sales_invoice", "ops_ledger~erp_gl",
)
NOTE_MAX = 2000
KEY_MAX = 200


def _text(value: str | None, field: str, max_length: int, *, required: bool) -> str | None:
    text = (value or "").strip()
    if not text:
        if required:
            raise ValidationFailed(f"{field} is required")
        return None
    if len(text) > max_length:
        raise ValidationFailed(f"{field} is longer than {max_length} characters")
    if any(ord(ch) < 32 and ch not in "\n\t" for ch in text):
        raise ValidationFailed(f"{field} contains control characters")
    return text


def latest(db: Session, company_id: int, pair: str, item_key: str) -> ReconciliationResolution | None:
    """The decision in force for one item (None when there is none or it was reopened)."""
    row = db.scalar(select(ReconciliationResolution)
                    .where(ReconciliationResolution.company_id == company_id, ReconciliationResolution.pair == pair,
                           ReconciliationResolution.item_key == item_key)
                    .order_by(ReconciliationResolution.created_at.desc(), ReconciliationResolution.id.desc())
                    .limit(1))
    return None if row is None or row.action == "reopened" else row


def record(db: Session, company_id: int, user_id: int, *, pair: str, item_key: str, action: str, note: str,
           linked_key: str | None = None, now: datetime | None = None) -> ReconciliationResolution:
    """Append one decision. `linked` needs the candidate's key; every decision needs a note (why)."""
    if pair not in PAIRS:
        raise ValidationFailed(f"pair must be one of {', '.join(PAIRS)}")
    if action not in ACTIONS:
        raise ValidationFailed(f"action must be one of {', '.join(ACTIONS)}")
    item_key = _text(item_key, "item_key", KEY_MAX, required=True)
    note = _text(note, "note", NOTE_MAX, required=True)
    linked_key = _text(linked_key, "linked_key", KEY_MAX, required=action == "linked")
    if action != "linked" and linked_key is not None:
        raise ValidationFailed("linked_key goes with the action linked only")
    current = latest(db, company_id, pair, item_key)
    if action == "reopened" and current is None:
        raise Conflict(f"item {item_key} of {pair} has no decision to reopen")
    row = ReconciliationResolution(company_id=company_id, pair=pair, item_key=item_key, action=action,
                                   linked_key=linked_key, note=note, user_id=user_id)
    if now is not None:
        row.created_at = now
    db.add(row)
    db.flush()
    return row


def history(db: Session, company_id: int, *, pairs: Iterable[str] | None = None,
            item_keys: Iterable[str] | None = None):
    """A select of the company's decisions (newest first), for listing and pagination."""
    stmt = select(ReconciliationResolution).where(ReconciliationResolution.company_id == company_id)
    if pairs:
        stmt = stmt.where(ReconciliationResolution.pair.in_(list(pairs)))
    if item_keys:
        stmt = stmt.where(ReconciliationResolution.item_key.in_(list(item_keys)))
    return stmt
