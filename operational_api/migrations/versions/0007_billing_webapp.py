"""billing from work done (billed_work, with triggers), tax rates, invoice links, email attachments; the three
invoice indexes the web app's home page and invoice list need at 100k invoices

Revision ID: 0007_billing_webapp
Revises: 0006
"""

import sqlalchemy as sa
from alembic import op

revision = "0007_billing_webapp"
down_revision = "0006"
branch_labels = None
depends_on = None

M_CHANGED = "ez360: a billed-work link never changes: release the work from its draft invoice and bill it again"
M_RELEASE = "ez360: work billed on a sent invoice stays billed; correct the invoice with a credit note"
M_INSERT = "ez360: work can be billed only on a draft invoice of its own company"
M_TIME = "ez360: this time entry is billed on a sent invoice: its hours, rate and billable flag are final"
M_EXPENSE = "ez360: this expense is billed on a sent invoice: its amount and billable flag are final"
TIME_FIXED = ("hours", "rate_minor", "billable", "project_id", "deleted_at", "currency")
EXPENSE_FIXED = ("amount_minor", "currency", "billable", "project_id", "deleted_at")


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _changed(columns, op_: str) -> str:
    return " OR ".join(f"NEW.{c} {op_} OLD.{c}" for c in columns)


def _billed_on_sent(column: str) -> str:
    return (f"EXISTS (SELECT 1 FROM billed_work b JOIN invoices i ON i.id = b.invoice_id "
            f"WHERE b.{column} = OLD.id AND i.status <> 'draft')")


INSERT_BAD = ("(SELECT status FROM invoices WHERE id = NEW.invoice_id) <> 'draft' "
              "OR (SELECT company_id FROM invoices WHERE id = NEW.invoice_id) <> NEW.company_id "
              "OR (NEW.time_entry_id IS NOT NULL AND "
              "(SELECT company_id FROM time_entries WHERE id = NEW.time_entry_id) <> NEW.company_id) "
              "OR (NEW.expense_id IS NOT NULL AND "
              "(SELECT company_id FROM expenses WHERE id = NEW.expense_id) <> NEW.company_id)")


def _sqlite_triggers():
    return [
        ("ez360_bw_insert", "billed_work", "BEFORE INSERT", INSERT_BAD, M_INSERT),
        ("ez360_bw_update", "billed_work", "BEFORE UPDATE", "1", M_CHANGED),
        ("ez360_bw_delete", "billed_work", "BEFORE DELETE",
         "(SELECT status FROM invoices WHERE id = OLD.invoice_id) <> 'draft'", M_RELEASE),
        ("ez360_te_billed", "time_entries", "BEFORE UPDATE",
         f"({_changed(TIME_FIXED, 'IS NOT')}) AND {_billed_on_sent('time_entry_id')}", M_TIME),
        ("ez360_ex_billed", "expenses", "BEFORE UPDATE",
         f"({_changed(EXPENSE_FIXED, 'IS NOT')}) AND {_billed_on_sent('expense_id')}", M_EXPENSE),
    ]


def _fail(message: str) -> str:
    return f"RAISE EXCEPTION '%', {_lit(message)} USING ERRCODE = '23514';"


def _pg_functions():
    bw = f"""
        IF TG_OP = 'UPDATE' THEN {_fail(M_CHANGED)} END IF;
        IF TG_OP = 'DELETE' THEN
            IF (SELECT status FROM invoices WHERE id = OLD.invoice_id) <> 'draft' THEN {_fail(M_RELEASE)} END IF;
            RETURN OLD;
        END IF;
        IF {INSERT_BAD} THEN {_fail(M_INSERT)} END IF;
        RETURN NEW;"""
    te = f"""
        IF ({_changed(TIME_FIXED, 'IS DISTINCT FROM')}) AND {_billed_on_sent('time_entry_id')} THEN
            {_fail(M_TIME)}
        END IF;
        RETURN NEW;"""
    ex = f"""
        IF ({_changed(EXPENSE_FIXED, 'IS DISTINCT FROM')}) AND {_billed_on_sent('expense_id')} THEN
            {_fail(M_EXPENSE)}
        END IF;
        RETURN NEW;"""
    return [
        ("ez360_billed_work_guard", "billed_work", "INSERT OR UPDATE OR DELETE", bw),
        ("ez360_time_entries_billed_guard", "time_entries", "UPDATE", te),
        ("ez360_expenses_billed_guard", "expenses", "UPDATE", ex),
    ]


def upgrade() -> None:
    op.create_table(
        "billed_work",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), sa.ForeignKey("companies.id"), nullable=False),
        sa.Column("invoice_id", sa.Integer(), sa.ForeignKey("invoices.id"), nullable=False),
        sa.Column("time_entry_id", sa.Integer(), sa.ForeignKey("time_entries.id"), nullable=True),
        sa.Column("expense_id", sa.Integer(), sa.ForeignKey("expenses.id"), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.UniqueConstraint("time_entry_id", name="uq_billed_work_time_entry_id"),
        sa.UniqueConstraint("expense_id", name="uq_billed_work_expense_id"),
        sa.CheckConstraint("(time_entry_id IS NULL) <> (expense_id IS NULL)", name="ck_billed_work_one_source"),
    )
    op.create_index("ix_billed_work_company_id", "billed_work", ["company_id"])
    op.create_index("ix_billed_work_invoice_id", "billed_work", ["invoice_id"])
    op.create_table(
        "tax_rates",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), sa.ForeignKey("companies.id"), nullable=False),
        sa.Column("name", sa.String(length=60), nullable=False),
        sa.Column("rate_percent", sa.Numeric(5, 2), nullable=False),
        sa.Column("is_default", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
        sa.CheckConstraint("rate_percent >= 0 AND rate_percent <= 100", name="ck_tax_rate_percent"),
    )
    op.create_index("ix_tax_rates_company_id", "tax_rates", ["company_id"])
    op.create_table(
        "invoice_links",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("company_id", sa.Integer(), sa.ForeignKey("companies.id"), nullable=False),
        sa.Column("invoice_id", sa.Integer(), sa.ForeignKey("invoices.id"), nullable=False),
        sa.Column("token_hash", sa.String(length=64), nullable=False, unique=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_invoice_links_company_id", "invoice_links", ["company_id"])
    op.create_index("ix_invoice_links_invoice_id", "invoice_links", ["invoice_id"])
    op.create_table(
        "email_attachments",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("outbox_id", sa.Integer(), sa.ForeignKey("email_outbox.id"), nullable=False),
        sa.Column("filename", sa.String(length=200), nullable=False),
        sa.Column("content_type", sa.String(length=100), nullable=False),
        sa.Column("content", sa.LargeBinary(), nullable=False),
        sa.PrimaryKeyConstraint("id"),
    )
    op.create_index("ix_email_attachments_outbox_id", "email_attachments", ["outbox_id"])
    # The home page (first invoice, recent invoices, amounts owed, overdue count) and the invoice list's default
    # order read these instead of every invoice of the company (benchmarks/bench_web.py).
    op.create_index("ix_invoices_company_created", "invoices", ["company_id", "created_at", "id"])
    op.create_index("ix_invoices_company_status_due", "invoices", ["company_id", "status", "due_date"])
    op.create_index("ix_invoices_company_client_created", "invoices", ["company_id", "client_id", "created_at", "id"])
    if op.get_bind().dialect.name == "sqlite":
        for name, table, when, condition, message in _sqlite_triggers():
            op.execute(f"CREATE TRIGGER {name} {when} ON {table} FOR EACH ROW WHEN {condition} "
                       f"BEGIN SELECT RAISE(ABORT, {_lit(message)}); END")
    else:
        for function, table, events, body in _pg_functions():
            op.execute(f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN {body} END $fn$")
            op.execute(f"CREATE TRIGGER {function} BEFORE {events} ON {table} FOR EACH ROW "
                       f"EXECUTE FUNCTION {function}()")


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name, *_ in _sqlite_triggers():
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
    else:
        for function, table, _events, _body in _pg_functions():
            op.execute(f"DROP TRIGGER IF EXISTS {function} ON {table}")
            op.execute(f"DROP FUNCTION IF EXISTS {function}()")
    op.drop_index("ix_invoices_company_client_created", "invoices")
    op.drop_index("ix_invoices_company_status_due", "invoices")
    op.drop_index("ix_invoices_company_created", "invoices")
    for table in ("email_attachments", "invoice_links", "tax_rates", "billed_work"):
        op.drop_table(table)
