"""Merge the money invariants (0009_ops_money) and the reconciliation resolutions table (0009_recon_warehouse)
into one head.

Revision ID: 0010
Revises: 0009_ops_money, 0009_recon_warehouse
"""

revision = "0010"
down_revision = ("0009_ops_money", "0009_recon_warehouse")
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
