"""Merge the web app's billing (0007_billing_webapp), the security hardening (0007_ops_security) and the
list indexes (0007_api_speed) into one head, so later migrations have a single parent.

Revision ID: 0008
Revises: 0007_billing_webapp, 0007_api_speed (which depends on 0007_ops_security)
"""

revision = "0008"
down_revision = ("0007_billing_webapp", "0007_api_speed")  # 0007_api_speed already needs 0007_ops_security
branch_labels = None
depends_on = None


def upgrade() -> None:
    pass


def downgrade() -> None:
    pass
