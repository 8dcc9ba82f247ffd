"""reconciliation_resolutions: finance's append-only resolutions of warehouse reconciliation items.

Revision ID: 0009_reconciliation_resolutions_warehouse
Revises: 0008
"""

import sqlalchemy as sa
from alembic import op

revision = "0009_reconciliation_resolutions_warehouse"
down_revision = "0008"
branch_labels = None
depends_on = None

TABLE = "reconciliation_resolutions"
MESSAGE = "ez360: reconciliation_resolutions is append-only; record a new resolution (or 'reopened')"


def upgrade() -> None:
    op.create_table(
        TABLE,
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("company_id", sa.Integer, sa.ForeignKey("companies.id"), nullable=False),
        sa.Column("pair", sa.Text, nullable=False),
        sa.Column("item_key", sa.Text, nullable=False),
        sa.Column("action", sa.String(32), nullable=False),
        sa.Column("linked_key", sa.Text),
        sa.Column("note", sa.Text, nullable=False),
        sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                  server_default=sa.text("CURRENT_TIMESTAMP")),
        sa.CheckConstraint("action in ('resolved', 'accepted_difference', 'written_off', 'linked', 'reopened')",
                           name="ck_reconciliation_resolution_action"),
        sa.CheckConstraint("length(note) <= 2000", name="ck_reconciliation_resolution_note_length"),
    )
    op.create_index("ix_reconciliation_resolutions_company_id", TABLE, ["company_id"])
    op.create_index("ix_reconciliation_resolutions_item", TABLE, ["company_id", "pair", "item_key", "created_at"])
    literal = "'" + MESSAGE.replace("'", "''") + "'"
    if op.get_bind().dialect.name == "sqlite":
        for event in ("UPDATE", "DELETE"):
            op.execute(f"CREATE TRIGGER ez360_{TABLE}_no_{event.lower()} BEFORE {event} ON {TABLE} FOR EACH ROW "
                       f"BEGIN SELECT RAISE(ABORT, {literal}); END")
        return
    op.execute(f"CREATE FUNCTION ez360_{TABLE}_append_only() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN "
               f"RAISE EXCEPTION '%', {literal} USING ERRCODE = '23514'; END $fn$")
    op.execute(f"CREATE TRIGGER ez360_{TABLE}_append_only BEFORE UPDATE OR DELETE ON {TABLE} FOR EACH ROW "
               f"EXECUTE FUNCTION ez360_{TABLE}_append_only()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for event in ("update", "delete"):
            op.execute(f"DROP TRIGGER IF EXISTS ez360_{TABLE}_no_{event}")
    else:
        op.execute(f"DROP TRIGGER IF EXISTS ez360_{TABLE}_append_only ON {TABLE}")
        op.execute(f"DROP FUNCTION IF EXISTS ez360_{TABLE}_append_only()")
    op.drop_index("ix_reconciliation_resolutions_item", table_name=TABLE)
    op.drop_index("ix_reconciliation_resolutions_company_id", table_name=TABLE)
    op.drop_table(TABLE)
