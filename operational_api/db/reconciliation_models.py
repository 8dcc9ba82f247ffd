"""Finance's resolutions of reconciliation items (issue 10 designs the join, issue 13 writes them).

Append-only (database triggers refuse UPDATE and DELETE): the latest row per (company_id, pair, item_key) is
the item's resolution; an `action = 'reopened'` row undoes the earlier ones. `item_key` is the stable key of
a `fct_reconciliation_items` row in the warehouse; the ops ingest copies this table to
`raw_ops.reconciliation_resolutions` (cursor `created_at`), where dbt joins it onto the items.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, String, Text, text
from sqlalchemy.orm import Mapped, mapped_column

from operational_api.db.models import Base, utcnow

RESOLUTION_ACTIONS = ("resolved", "accepted_difference", "written_off", "linked", "reopened")
NOTE_MAX_CHARS = 2000


class ReconciliationResolution(Base):
    __tablename__ = "reconciliation_resolutions"
    __table_args__ = (
        CheckConstraint("action in ('resolved', 'accepted_difference', 'written_off', 'linked', 'reopened')",
                        name="ck_reconciliation_resolution_action"),
        CheckConstraint(f"length(note) <= {NOTE_MAX_CHARS}", name="ck_reconciliation_resolution_note_length"),
        Index("ix_reconciliation_resolutions_item", "company_id", "pair", "item_key", "created_at"),
    )
    id: Mapped[int] = mapped_column(primary_key=True)
    company_id: Mapped[int] = mapped_column(ForeignKey("companies.id"), nullable=False, index=True)
    pair: Mapped[str] = mapped_column(Text, nullable=False)
    item_key: Mapped[str] = mapped_column(Text, nullable=False)
    action: Mapped[str] = mapped_column(String(32), nullable=False)
    linked_key: Mapped[str | None] = mapped_column(Text)
    note: Mapped[str] = mapped_column(Text, nullable=False)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id"), nullable=False)
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), nullable=False, default=utcnow,
                                                 server_default=text("CURRENT_TIMESTAMP"))


from operational_api.db import audit_trail  # noqa: E402 (models imports audit_trail; it is complete by now)

audit_trail.register("reconciliation_resolution", ReconciliationResolution)  # every decision is audited
