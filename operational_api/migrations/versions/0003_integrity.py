"""integrity: credit notes, refunds, closed periods, gapless sequences, the audit log, authorship columns,
and the database triggers that keep final financial records immutable (SQLite and PostgreSQL).

Revision ID: 0003
Revises: 0002
"""

import sqlalchemy as sa
from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None

AUTHORED = ("clients", "projects", "time_entries", "invoices", "payments", "expenses", "journal_entries")

# (name, table, timing/event, SQLite WHEN condition, message). PostgreSQL gets the same rules as plpgsql
# functions below; the messages are identical so callers can recognise them on either engine.
M_JE_DRAFT = "ez360: a journal entry is inserted as a draft and then posted"
M_JE_POSTED = "ez360: a posted journal entry is immutable; post a reversal entry"
M_JE_BALANCE = "ez360: journal entry does not balance; debits must equal credits"
M_JE_CLOSED = "ez360: the period is closed; no entry dated in it can be posted"
M_JL_POSTED = "ez360: the lines of a posted journal entry are immutable"
M_INV_DRAFT = "ez360: an invoice is created as a draft"
M_INV_SENT = "ez360: a sent invoice is immutable; correct it with a credit note"
M_INV_AMOUNTS = "ez360: an invoice's paid and credited amounts and status follow its payments and credit notes"
M_INV_SEND = "ez360: a draft invoice can only move to sent, numbered and with a positive total"
M_INV_DELETE = "ez360: a sent invoice cannot be deleted; correct it with a credit note"
M_IL_SENT = "ez360: the lines of a sent invoice are immutable"
M_PAY = "ez360: a recorded payment is immutable; record a refund"
M_APPEND = "ez360: {table} is append-only"

INVOICE_FIXED = ("company_id", "client_id", "project_id", "number", "currency", "issue_date", "due_date",
                 "subtotal_minor", "tax_minor", "total_minor", "sent_at", "notes", "deleted_at", "created_at",
                 "created_by_id")
PAYMENT_FIXED = ("company_id", "client_id", "method", "currency", "amount_minor", "received_on")
APPEND_ONLY = ("audit_log", "payment_allocations", "refunds", "credit_notes")


def _changed(columns, distinct: str) -> str:
    return " OR ".join(f"NEW.{c} {distinct} OLD.{c}" for c in columns)


def _derived_status(new: str = "NEW") -> str:
    return (f"CASE WHEN {new}.credited_minor = {new}.total_minor THEN 'void' "
            f"WHEN {new}.amount_paid_minor + {new}.credited_minor = {new}.total_minor THEN 'paid' "
            f"WHEN {new}.amount_paid_minor > 0 THEN 'partially_paid' ELSE 'sent' END")


def _amounts_broken() -> str:
    return ("NEW.amount_paid_minor <> (SELECT COALESCE(SUM(amount_minor), 0) FROM payment_allocations "
            "WHERE invoice_id = NEW.id) "
            "OR NEW.credited_minor <> (SELECT COALESCE(SUM(total_minor), 0) FROM credit_notes "
            "WHERE invoice_id = NEW.id) "
            "OR NEW.amount_paid_minor < 0 OR NEW.amount_paid_minor + NEW.credited_minor > NEW.total_minor "
            f"OR NEW.status <> ({_derived_status()})")


def _sqlite_triggers() -> list[tuple[str, str, str, str, str]]:
    je_sums = ("(SELECT COALESCE(SUM({side}), 0) FROM journal_lines WHERE journal_entry_id = NEW.id)")
    debit, credit = je_sums.format(side="debit_minor"), je_sums.format(side="credit_minor")
    inv_status = "(SELECT status FROM invoices WHERE id = {ref}.invoice_id)"
    je_status = "(SELECT status FROM journal_entries WHERE id = {ref}.journal_entry_id)"
    triggers = [
        ("ez360_je_insert", "journal_entries", "BEFORE INSERT", "NEW.status <> 'draft'", M_JE_DRAFT),
        ("ez360_je_update", "journal_entries", "BEFORE UPDATE", "OLD.status = 'posted'", M_JE_POSTED),
        ("ez360_je_balance", "journal_entries", "BEFORE UPDATE",
         f"NEW.status = 'posted' AND ({debit} <> {credit} OR {debit} = 0)", M_JE_BALANCE),
        ("ez360_je_closed", "journal_entries", "BEFORE UPDATE",
         "NEW.status = 'posted' AND EXISTS (SELECT 1 FROM closed_periods c WHERE c.company_id = NEW.company_id "
         "AND c.period = substr(NEW.entry_date, 1, 7))", M_JE_CLOSED),
        ("ez360_je_delete", "journal_entries", "BEFORE DELETE", "OLD.status = 'posted'", M_JE_POSTED),
        ("ez360_jl_insert", "journal_lines", "BEFORE INSERT", f"{je_status.format(ref='NEW')} = 'posted'",
         M_JL_POSTED),
        ("ez360_jl_update", "journal_lines", "BEFORE UPDATE",
         f"{je_status.format(ref='OLD')} = 'posted' OR {je_status.format(ref='NEW')} = 'posted'", M_JL_POSTED),
        ("ez360_jl_delete", "journal_lines", "BEFORE DELETE", f"{je_status.format(ref='OLD')} = 'posted'",
         M_JL_POSTED),
        ("ez360_inv_insert", "invoices", "BEFORE INSERT", "NEW.status <> 'draft'", M_INV_DRAFT),
        ("ez360_inv_fixed", "invoices", "BEFORE UPDATE",
         f"OLD.status <> 'draft' AND ({_changed(INVOICE_FIXED, 'IS NOT')})", M_INV_SENT),
        ("ez360_inv_amounts", "invoices", "BEFORE UPDATE",  # the fixed-columns message wins when both apply
         f"OLD.status <> 'draft' AND NOT ({_changed(INVOICE_FIXED, 'IS NOT')}) AND ({_amounts_broken()})",
         M_INV_AMOUNTS),
        ("ez360_inv_send", "invoices", "BEFORE UPDATE",
         "OLD.status = 'draft' AND NEW.status <> 'draft' AND (NEW.status <> 'sent' OR NEW.number IS NULL "
         "OR NEW.total_minor <= 0 OR NEW.amount_paid_minor <> 0 OR NEW.credited_minor <> 0)", M_INV_SEND),
        ("ez360_inv_delete", "invoices", "BEFORE DELETE", "OLD.status <> 'draft'", M_INV_DELETE),
        ("ez360_il_insert", "invoice_lines", "BEFORE INSERT", f"{inv_status.format(ref='NEW')} <> 'draft'",
         M_IL_SENT),
        ("ez360_il_update", "invoice_lines", "BEFORE UPDATE",
         f"{inv_status.format(ref='OLD')} <> 'draft' OR {inv_status.format(ref='NEW')} <> 'draft'", M_IL_SENT),
        ("ez360_il_delete", "invoice_lines", "BEFORE DELETE", f"{inv_status.format(ref='OLD')} <> 'draft'",
         M_IL_SENT),
        ("ez360_pay_update", "payments", "BEFORE UPDATE", _changed(PAYMENT_FIXED, "IS NOT"), M_PAY),
        ("ez360_pay_delete", "payments", "BEFORE DELETE", "1", M_PAY),
    ]
    for table in APPEND_ONLY:
        for event in ("UPDATE", "DELETE"):
            triggers.append((f"ez360_{table}_no_{event.lower()}", table, f"BEFORE {event}", "1",
                             M_APPEND.format(table=table)))
    return triggers


def _pg_functions() -> list[tuple[str, str, str, str]]:
    """(function, table, events, plpgsql body) for PostgreSQL."""
    def fail(message: str) -> str:
        return f"RAISE EXCEPTION '%', {_sql_literal(message)} USING ERRCODE = '23514';"

    je = f"""
        IF TG_OP = 'INSERT' THEN
            IF NEW.status <> 'draft' THEN {fail(M_JE_DRAFT)} END IF;
            RETURN NEW;
        ELSIF TG_OP = 'DELETE' THEN
            IF OLD.status = 'posted' THEN {fail(M_JE_POSTED)} END IF;
            RETURN OLD;
        END IF;
        IF OLD.status = 'posted' THEN {fail(M_JE_POSTED)} END IF;
        IF NEW.status = 'posted' THEN
            IF (SELECT COALESCE(SUM(debit_minor), 0) <> COALESCE(SUM(credit_minor), 0)
                       OR COALESCE(SUM(debit_minor), 0) = 0
                FROM journal_lines WHERE journal_entry_id = NEW.id) THEN {fail(M_JE_BALANCE)} END IF;
            IF EXISTS (SELECT 1 FROM closed_periods c WHERE c.company_id = NEW.company_id
                       AND c.period = to_char(NEW.entry_date, 'YYYY-MM')) THEN {fail(M_JE_CLOSED)} END IF;
        END IF;
        RETURN NEW;"""
    jl = f"""
        IF TG_OP IN ('UPDATE', 'DELETE') AND
           (SELECT status FROM journal_entries WHERE id = OLD.journal_entry_id) = 'posted' THEN
            {fail(M_JL_POSTED)}
        END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') AND
           (SELECT status FROM journal_entries WHERE id = NEW.journal_entry_id) = 'posted' THEN
            {fail(M_JL_POSTED)}
        END IF;
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;"""
    inv = f"""
        IF TG_OP = 'INSERT' THEN
            IF NEW.status <> 'draft' THEN {fail(M_INV_DRAFT)} END IF;
            RETURN NEW;
        ELSIF TG_OP = 'DELETE' THEN
            IF OLD.status <> 'draft' THEN {fail(M_INV_DELETE)} END IF;
            RETURN OLD;
        END IF;
        IF OLD.status <> 'draft' THEN
            IF {_changed(INVOICE_FIXED, 'IS DISTINCT FROM')} THEN {fail(M_INV_SENT)} END IF;
            IF {_amounts_broken()} THEN {fail(M_INV_AMOUNTS)} END IF;
        ELSIF NEW.status <> 'draft' AND (NEW.status <> 'sent' OR NEW.number IS NULL OR NEW.total_minor <= 0
              OR NEW.amount_paid_minor <> 0 OR NEW.credited_minor <> 0) THEN
            {fail(M_INV_SEND)}
        END IF;
        RETURN NEW;"""
    il = f"""
        IF TG_OP IN ('UPDATE', 'DELETE') AND
           (SELECT status FROM invoices WHERE id = OLD.invoice_id) <> 'draft' THEN {fail(M_IL_SENT)} END IF;
        IF TG_OP IN ('INSERT', 'UPDATE') AND
           (SELECT status FROM invoices WHERE id = NEW.invoice_id) <> 'draft' THEN {fail(M_IL_SENT)} END IF;
        IF TG_OP = 'DELETE' THEN RETURN OLD; END IF;
        RETURN NEW;"""
    pay = f"""
        IF TG_OP = 'DELETE' THEN {fail(M_PAY)} END IF;
        IF {_changed(PAYMENT_FIXED, 'IS DISTINCT FROM')} THEN {fail(M_PAY)} END IF;
        RETURN NEW;"""
    functions = [
        ("ez360_journal_entries_guard", "journal_entries", "INSERT OR UPDATE OR DELETE", je),
        ("ez360_journal_lines_guard", "journal_lines", "INSERT OR UPDATE OR DELETE", jl),
        ("ez360_invoices_guard", "invoices", "INSERT OR UPDATE OR DELETE", inv),
        ("ez360_invoice_lines_guard", "invoice_lines", "INSERT OR UPDATE OR DELETE", il),
        ("ez360_payments_guard", "payments", "UPDATE OR DELETE", pay),
    ]
    for table in APPEND_ONLY:
        functions.append((f"ez360_{table}_append_only", table, "UPDATE OR DELETE",
                          fail(M_APPEND.format(table=table))))
    return functions


def _sql_literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def create_triggers() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name, table, when, condition, message in _sqlite_triggers():
            op.execute(f"CREATE TRIGGER {name} {when} ON {table} FOR EACH ROW WHEN {condition} "
                       f"BEGIN SELECT RAISE(ABORT, {_sql_literal(message)}); END")
        return
    for function, table, events, body in _pg_functions():
        op.execute(f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $fn$ BEGIN {body} END $fn$")
        op.execute(f"CREATE TRIGGER {function} BEFORE {events} ON {table} FOR EACH ROW EXECUTE FUNCTION {function}()")


def drop_triggers() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name, *_ in _sqlite_triggers():
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        return
    for function, table, _events, _body in _pg_functions():
        op.execute(f"DROP TRIGGER IF EXISTS {function} ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {function}()")


def upgrade() -> None:
    # Batch mode: SQLite can only add a column with a foreign key by rebuilding the table (no triggers exist
    # on these tables yet; they are created last).
    for table in AUTHORED:
        with op.batch_alter_table(table) as batch:
            batch.add_column(sa.Column("created_by_id", sa.Integer(), nullable=True))
            batch.add_column(sa.Column("updated_by_id", sa.Integer(), nullable=True))
            batch.create_foreign_key(f"fk_{table}_created_by_id", "users", ["created_by_id"], ["id"])
            batch.create_foreign_key(f"fk_{table}_updated_by_id", "users", ["updated_by_id"], ["id"])
            if table == "invoices":
                batch.add_column(sa.Column("credited_minor", sa.BigInteger(), nullable=False, server_default="0"))
                batch.add_column(sa.Column("notes", sa.String(1000), nullable=False, server_default=""))
                batch.add_column(sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True))
            if table == "journal_entries":
                batch.add_column(sa.Column("reversal_of_id", sa.Integer(), nullable=True))
                batch.create_foreign_key("fk_journal_entries_reversal_of_id", "journal_entries", ["reversal_of_id"],
                                         ["id"])
                batch.create_index("ix_journal_entries_reversal_of_id", ["reversal_of_id"], unique=True)
            if table == "expenses":
                batch.add_column(sa.Column("journal_entry_id", sa.Integer(), nullable=True))
                batch.create_foreign_key("fk_expenses_journal_entry_id", "journal_entries", ["journal_entry_id"],
                                         ["id"])
    op.create_index("ux_payments_stripe_charge", "payments", ["company_id", "stripe_charge_id"], unique=True)

    op.create_table(
        "refunds",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("company_id", sa.Integer(), sa.ForeignKey("companies.id"), nullable=False, index=True),
        sa.Column("payment_id", sa.Integer(), sa.ForeignKey("payments.id"), nullable=False, index=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("refunded_on", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("stripe_refund_id", sa.String(60), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.CheckConstraint("amount_minor > 0", name="ck_refund_positive"),
    )
    op.create_index("ux_refunds_stripe_refund", "refunds", ["company_id", "stripe_refund_id"], unique=True)
    with op.batch_alter_table("payment_allocations") as batch:
        batch.add_column(sa.Column("refund_id", sa.Integer(), nullable=True))
        batch.add_column(sa.Column("created_at", sa.DateTime(timezone=True), nullable=False,
                                   server_default=sa.text("CURRENT_TIMESTAMP")))
        batch.create_foreign_key("fk_payment_allocations_refund_id", "refunds", ["refund_id"], ["id"])
    op.create_table(
        "credit_notes",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("company_id", sa.Integer(), sa.ForeignKey("companies.id"), nullable=False, index=True),
        sa.Column("invoice_id", sa.Integer(), sa.ForeignKey("invoices.id"), nullable=False, index=True),
        sa.Column("client_id", sa.Integer(), sa.ForeignKey("clients.id"), nullable=False),
        sa.Column("number", sa.String(40), nullable=False),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("issue_date", sa.Date(), nullable=False),
        sa.Column("reason", sa.String(300), nullable=False),
        sa.Column("net_minor", sa.BigInteger(), nullable=False),
        sa.Column("tax_minor", sa.BigInteger(), nullable=False),
        sa.Column("total_minor", sa.BigInteger(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("created_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.UniqueConstraint("company_id", "number"),
        sa.CheckConstraint("total_minor > 0 and net_minor >= 0 and tax_minor >= 0 "
                           "and total_minor = net_minor + tax_minor", name="ck_credit_note_amounts"),
    )
    op.create_table(
        "number_sequences",
        sa.Column("company_id", sa.Integer(), sa.ForeignKey("companies.id"), primary_key=True),
        sa.Column("kind", sa.String(20), primary_key=True),
        sa.Column("last_value", sa.Integer(), nullable=False),
    )
    op.create_table(
        "closed_periods",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("company_id", sa.Integer(), sa.ForeignKey("companies.id"), nullable=False, index=True),
        sa.Column("period", sa.String(7), nullable=False),
        sa.Column("closed_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("closed_by_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.UniqueConstraint("company_id", "period"),
    )
    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), primary_key=True),
        sa.Column("company_id", sa.Integer(), sa.ForeignKey("companies.id"), nullable=False, index=True),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("occurred_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_user_id", sa.Integer(), sa.ForeignKey("users.id"), nullable=True),
        sa.Column("actor", sa.String(100), nullable=False),
        sa.Column("request_id", sa.String(100), nullable=True),
        sa.Column("action", sa.String(20), nullable=False),
        sa.Column("entity_type", sa.String(40), nullable=False),
        sa.Column("entity_id", sa.Integer(), nullable=False),
        sa.Column("before", sa.JSON(), nullable=True),
        sa.Column("after", sa.JSON(), nullable=True),
        sa.Column("prev_hash", sa.String(64), nullable=False),
        sa.Column("hash", sa.String(64), nullable=False),
        sa.UniqueConstraint("company_id", "seq"),
    )
    op.create_index("ix_audit_log_entity", "audit_log", ["entity_type", "entity_id"])
    op.create_table(
        "audit_heads",
        sa.Column("company_id", sa.Integer(), sa.ForeignKey("companies.id"), primary_key=True),
        sa.Column("last_seq", sa.Integer(), nullable=False),
        sa.Column("last_hash", sa.String(64), nullable=False),
    )
    # Existing books: number sequences continue from the invoices already numbered; new chart accounts.
    op.execute("INSERT INTO number_sequences (company_id, kind, last_value) "
               "SELECT company_id, 'invoice', COUNT(*) FROM invoices WHERE number IS NOT NULL GROUP BY company_id")
    for code, name in (("6600", "Chargebacks and disputes"), ("6900", "Other expenses")):
        op.execute(f"INSERT INTO accounts (company_id, code, name, type) SELECT id, '{code}', '{name}', 'expense' "
                   f"FROM companies WHERE id NOT IN (SELECT company_id FROM accounts WHERE code = '{code}')")
    create_triggers()


def downgrade() -> None:
    drop_triggers()
    op.drop_table("audit_heads")
    op.drop_index("ix_audit_log_entity", table_name="audit_log")
    op.drop_table("audit_log")
    op.drop_table("closed_periods")
    op.drop_table("number_sequences")
    op.drop_table("credit_notes")
    with op.batch_alter_table("payment_allocations") as batch:
        batch.drop_constraint("fk_payment_allocations_refund_id", type_="foreignkey")
        batch.drop_column("created_at")
        batch.drop_column("refund_id")
    op.drop_index("ux_refunds_stripe_refund", table_name="refunds")
    op.drop_table("refunds")
    op.drop_index("ux_payments_stripe_charge", table_name="payments")
    for table in AUTHORED:
        with op.batch_alter_table(table) as batch:
            if table == "expenses":
                batch.drop_constraint("fk_expenses_journal_entry_id", type_="foreignkey")
                batch.drop_column("journal_entry_id")
            if table == "journal_entries":
                batch.drop_index("ix_journal_entries_reversal_of_id")
                batch.drop_constraint("fk_journal_entries_reversal_of_id", type_="foreignkey")
                batch.drop_column("reversal_of_id")
            if table == "invoices":
                batch.drop_column("deleted_at")
                batch.drop_column("notes")
                batch.drop_column("credited_minor")
            batch.drop_constraint(f"fk_{table}_updated_by_id", type_="foreignkey")
            batch.drop_constraint(f"fk_{table}_created_by_id", type_="foreignkey")
            batch.drop_column("updated_by_id")
            batch.drop_column("created_by_id")
    op.execute("DELETE FROM accounts WHERE code IN ('6600', '6900') "
               "AND id NOT IN (SELECT account_id FROM journal_lines)")
