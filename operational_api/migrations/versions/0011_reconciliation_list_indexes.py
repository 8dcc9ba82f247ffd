"""List indexes for finance's reconciliation decisions (GET .../reconciliation/resolutions), by the rule of
0007_list_indexes_api_speed: each sort on (company_id, column, id); a filter that a sort cannot serve cheaply gets
an index that starts with it. The item index of 0009_recon_warehouse (company_id, pair, item_key, created_at)
already serves the pair filter and the latest-decision-per-item lookups. tests/test_list_indexes.py proves it.

Revision ID: 0011
Revises: 0010
"""

from alembic import op

revision = "0011"
down_revision = "0010"
branch_labels = None
depends_on = None

INDEXES = (
    ("ix_reconciliation_resolutions_list_id", ["company_id", "id"]),
    ("ix_reconciliation_resolutions_list_created_at", ["company_id", "created_at", "id"]),
    ("ix_reconciliation_resolutions_filter_item_key", ["company_id", "item_key"]),
)


def upgrade() -> None:
    for name, columns in INDEXES:
        op.create_index(name, "reconciliation_resolutions", columns)


def downgrade() -> None:
    for name, _ in reversed(INDEXES):
        op.drop_index(name, table_name="reconciliation_resolutions")
