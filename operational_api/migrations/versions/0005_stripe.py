"""stripe webhooks: event queue, payment intents, postings

Revision ID: 0005
Revises: 0002
Create Date: 2026-11-21 09:00:00.000000
"""

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "stripe_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("type", sa.String(length=100), nullable=False),
        sa.Column("livemode", sa.Boolean(), nullable=False),
        sa.Column("account", sa.String(length=255), nullable=True),
        sa.Column("api_version", sa.String(length=40), nullable=True),
        sa.Column("created", sa.BigInteger(), nullable=False),
        sa.Column("object_id", sa.String(length=255), nullable=True),
        sa.Column("payload", sa.Text(), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("next_attempt_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("locked_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("last_error", sa.Text(), nullable=True),
        sa.Column("note", sa.Text(), nullable=True),
        sa.Column("company_id", sa.Integer(), nullable=True),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("processed_at", sa.DateTime(timezone=True), nullable=True),
        sa.CheckConstraint("status in ('pending', 'processing', 'waiting', 'processed', 'ignored', 'failed')",
                           name="ck_stripe_event_status"),
        sa.ForeignKeyConstraint(["company_id"], ["companies.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("event_id", name="uq_stripe_events_event_id"),
    )
    with op.batch_alter_table("stripe_events", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stripe_events_company_id"), ["company_id"], unique=False)
        batch_op.create_index("ix_stripe_events_status_next_attempt", ["status", "next_attempt_at"], unique=False)

    op.create_table(
        "stripe_payment_intents",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("invoice_id", sa.Integer(), nullable=False),
        sa.Column("stripe_payment_intent_id", sa.String(length=255), nullable=False),
        sa.Column("stripe_account", sa.String(length=255), nullable=True),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.String(length=40), nullable=False),
        sa.Column("stripe_charge_id", sa.String(length=255), nullable=True),
        sa.Column("created_by_user_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint("amount_minor > 0", name="ck_stripe_payment_intent_positive"),
        sa.ForeignKeyConstraint(["company_id"], ["companies.id"]),
        sa.ForeignKeyConstraint(["created_by_user_id"], ["users.id"]),
        sa.ForeignKeyConstraint(["invoice_id"], ["invoices.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("stripe_payment_intent_id", name="uq_stripe_payment_intents_pi"),
    )
    with op.batch_alter_table("stripe_payment_intents", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stripe_payment_intents_company_id"), ["company_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_stripe_payment_intents_invoice_id"), ["invoice_id"], unique=False)

    op.create_table(
        "stripe_postings",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), nullable=False),
        sa.Column("kind", sa.String(length=30), nullable=False),
        sa.Column("stripe_object_id", sa.String(length=255), nullable=False),
        sa.Column("event_id", sa.String(length=255), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("payment_id", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.CheckConstraint(
            "kind in ('payment', 'fee', 'refund', 'dispute_withdrawal', 'dispute_fee', 'dispute_reinstatement', "
            "'payout', 'payout_failure')", name="ck_stripe_posting_kind"),
        sa.ForeignKeyConstraint(["company_id"], ["companies.id"]),
        sa.ForeignKeyConstraint(["payment_id"], ["payments.id"]),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("kind", "stripe_object_id", name="uq_stripe_postings_kind_object"),
    )
    with op.batch_alter_table("stripe_postings", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_stripe_postings_company_id"), ["company_id"], unique=False)
        batch_op.create_index(batch_op.f("ix_stripe_postings_payment_id"), ["payment_id"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("stripe_postings", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stripe_postings_payment_id"))
        batch_op.drop_index(batch_op.f("ix_stripe_postings_company_id"))
    op.drop_table("stripe_postings")

    with op.batch_alter_table("stripe_payment_intents", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_stripe_payment_intents_invoice_id"))
        batch_op.drop_index(batch_op.f("ix_stripe_payment_intents_company_id"))
    op.drop_table("stripe_payment_intents")

    with op.batch_alter_table("stripe_events", schema=None) as batch_op:
        batch_op.drop_index("ix_stripe_events_status_next_attempt")
        batch_op.drop_index(batch_op.f("ix_stripe_events_company_id"))
    op.drop_table("stripe_events")
