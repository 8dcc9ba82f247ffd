"""money invariants in the database itself, and a tamper-proof audit chain

PostgreSQL (constraint triggers, DEFERRABLE INITIALLY DEFERRED: checked at COMMIT, after the rows they lock
were written, each locking the parent row first so two committing writers are checked one after the other):
- a payment's allocations (net of refund take-backs) plus its refunds never exceed its amount, so a client's
  credit (the unapplied rest) is never negative;
- an invoice's allocations never go below zero nor above its total less its credit notes, and equal its paid
  amount;
- a posted journal entry balances (debits = credits, not zero) whatever its lines went through;
- a sent invoice's subtotal, tax and total are the sums of its lines (what the ledger posted);
- TRUNCATE of audit_log / audit_heads is refused; audit_heads is never deleted, only moves forward, and at
  COMMIT names the newest audit row (its seq and hash).

SQLite (one writer at a time, every transaction `BEGIN IMMEDIATE`): BEFORE triggers with the same rules where a
row-level check can hold them (refunds within the payment, positive allocations within the payment and the
invoice, sent totals equal the lines, audit heads only follow the chain).

Revision ID: 0009_ops_money
Revises: 0008
"""

from alembic import op

revision = "0009_ops_money"
down_revision = "0008"
branch_labels = None
depends_on = None

M_PAY_OVER = "ez360: refunds and allocations exceed the payment (client credit would be negative)"
M_INV_OVER = "ez360: the allocations to an invoice exceed its total less its credit notes, or go below zero"
M_JE_BALANCE = "ez360: journal entry does not balance; debits must equal credits"
M_INV_LINES = "ez360: a sent invoice's totals must equal the sum of its lines"
M_AUDIT_TRUNCATE = "ez360: the audit trail cannot be truncated"
M_AUDIT_HEAD = "ez360: audit_heads changes only through the audit chain"


def _lit(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


def _fail(message: str) -> str:
    return f"RAISE EXCEPTION '%', {_lit(message)} USING ERRCODE = '23514';"


PAYMENT_SUMS = """(SELECT COALESCE(SUM(amount_minor), 0) FROM payment_allocations WHERE payment_id = {p})
    + (SELECT COALESCE(SUM(amount_minor), 0) FROM refunds WHERE payment_id = {p})"""

PG_FUNCTIONS = {
    # function: (body, [(trigger name, table, events)], deferred)
    "ez360_check_payment_total": (f"""
        DECLARE amount bigint;
        BEGIN
            SELECT p.amount_minor INTO amount FROM payments p WHERE p.id = NEW.payment_id FOR UPDATE;
            IF {PAYMENT_SUMS.format(p='NEW.payment_id')} > amount THEN {_fail(M_PAY_OVER)} END IF;
            RETURN NULL;
        END""", [("ez360_allocations_within_payment", "payment_allocations", "INSERT"),
                 ("ez360_refunds_within_payment", "refunds", "INSERT")], True),
    "ez360_check_invoice_allocations": (f"""
        DECLARE inv record; allocated bigint;
        BEGIN
            SELECT i.total_minor, i.credited_minor, i.amount_paid_minor INTO inv FROM invoices i
                WHERE i.id = NEW.invoice_id FOR UPDATE;
            SELECT COALESCE(SUM(amount_minor), 0) INTO allocated FROM payment_allocations
                WHERE invoice_id = NEW.invoice_id;
            IF allocated < 0 OR allocated > inv.total_minor - inv.credited_minor
               OR allocated <> inv.amount_paid_minor THEN {_fail(M_INV_OVER)} END IF;
            RETURN NULL;
        END""", [("ez360_allocations_within_invoice", "payment_allocations", "INSERT")], True),
    "ez360_check_entry_balanced": (f"""
        DECLARE v_entry integer; entry_status text; debits bigint; credits bigint;
        BEGIN
            IF TG_TABLE_NAME = 'journal_entries' THEN v_entry := NEW.id;
            ELSIF TG_OP = 'DELETE' THEN v_entry := OLD.journal_entry_id;
            ELSE v_entry := NEW.journal_entry_id;
            END IF;
            SELECT status INTO entry_status FROM journal_entries WHERE id = v_entry FOR UPDATE;
            IF entry_status = 'posted' THEN
                SELECT COALESCE(SUM(debit_minor), 0), COALESCE(SUM(credit_minor), 0) INTO debits, credits
                    FROM journal_lines WHERE journal_entry_id = v_entry;
                IF debits <> credits OR debits = 0 THEN {_fail(M_JE_BALANCE)} END IF;
            END IF;
            RETURN NULL;
        END""", [("ez360_entry_balanced", "journal_entries", "INSERT OR UPDATE"),
                 ("ez360_entry_lines_balanced", "journal_lines", "INSERT OR UPDATE OR DELETE")], True),
    "ez360_check_sent_totals": (f"""
        DECLARE v_invoice integer; inv record; nets bigint; taxes bigint;
        BEGIN
            IF TG_TABLE_NAME = 'invoices' THEN v_invoice := NEW.id;
            ELSIF TG_OP = 'DELETE' THEN v_invoice := OLD.invoice_id;
            ELSE v_invoice := NEW.invoice_id;
            END IF;
            SELECT i.status, i.subtotal_minor, i.tax_minor, i.total_minor INTO inv FROM invoices i
                WHERE i.id = v_invoice FOR UPDATE;
            IF inv.status IS NOT NULL AND inv.status <> 'draft' THEN
                SELECT COALESCE(SUM(net_minor), 0), COALESCE(SUM(tax_minor), 0) INTO nets, taxes
                    FROM invoice_lines WHERE invoice_lines.invoice_id = v_invoice;
                IF nets <> inv.subtotal_minor OR taxes <> inv.tax_minor OR inv.total_minor <> nets + taxes
                THEN {_fail(M_INV_LINES)} END IF;
            END IF;
            RETURN NULL;
        END""", [("ez360_sent_totals", "invoices", "UPDATE"),
                 ("ez360_sent_lines_totals", "invoice_lines", "INSERT OR UPDATE OR DELETE")], True),
    "ez360_audit_no_truncate": (f"""
        BEGIN {_fail(M_AUDIT_TRUNCATE)} RETURN NULL; END""",
                                [("ez360_audit_log_no_truncate", "audit_log", "TRUNCATE"),
                                 ("ez360_audit_heads_no_truncate", "audit_heads", "TRUNCATE")], False),
    "ez360_audit_head_moves_forward": (f"""
        BEGIN
            IF TG_OP = 'DELETE' THEN {_fail(M_AUDIT_HEAD)} END IF;
            IF NEW.company_id <> OLD.company_id OR NEW.last_seq <= OLD.last_seq THEN {_fail(M_AUDIT_HEAD)} END IF;
            RETURN NEW;
        END""", [("ez360_audit_head_guard", "audit_heads", "UPDATE OR DELETE")], False),
    # checked at COMMIT against the head as it is then, so a writer may move the head before or after it
    # inserts the rows (within its transaction); at COMMIT the head must name the newest row, hash included
    "ez360_audit_head_follows_chain": (f"""
        DECLARE head record;
        BEGIN
            SELECT h.last_seq, h.last_hash INTO head FROM audit_heads h WHERE h.company_id = NEW.company_id;
            IF NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.company_id = NEW.company_id
                           AND a.seq = head.last_seq AND a.hash = head.last_hash)
               OR EXISTS (SELECT 1 FROM audit_log a WHERE a.company_id = NEW.company_id AND a.seq > head.last_seq)
            THEN {_fail(M_AUDIT_HEAD)} END IF;
            RETURN NULL;
        END""", [("ez360_audit_head_at_commit", "audit_heads", "INSERT OR UPDATE")], True),
}


def _pg_create() -> None:
    for function, (body, triggers, deferred) in PG_FUNCTIONS.items():
        op.execute(f"CREATE FUNCTION {function}() RETURNS trigger LANGUAGE plpgsql AS $fn$ {body} $fn$")
        for name, table, events in triggers:
            if deferred:
                op.execute(f"CREATE CONSTRAINT TRIGGER {name} AFTER {events} ON {table} "
                           f"DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION {function}()")
            elif events == "TRUNCATE":
                op.execute(f"CREATE TRIGGER {name} BEFORE TRUNCATE ON {table} "
                           f"FOR EACH STATEMENT EXECUTE FUNCTION {function}()")
            else:
                op.execute(f"CREATE TRIGGER {name} BEFORE {events} ON {table} "
                           f"FOR EACH ROW EXECUTE FUNCTION {function}()")


def _pg_drop() -> None:
    for function, (_body, triggers, _deferred) in PG_FUNCTIONS.items():
        for name, table, _events in triggers:
            op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {function}()")


def _sqlite_triggers() -> list[tuple[str, str, str, str, str]]:
    pay_sums = PAYMENT_SUMS.format(p="NEW.payment_id")
    amount = "(SELECT amount_minor FROM payments WHERE id = NEW.payment_id)"
    inv_alloc = "(SELECT COALESCE(SUM(amount_minor), 0) FROM payment_allocations WHERE invoice_id = NEW.invoice_id)"
    inv_room = "(SELECT total_minor - credited_minor FROM invoices WHERE id = NEW.invoice_id)"
    lines = "(SELECT COALESCE(SUM({col}), 0) FROM invoice_lines WHERE invoice_id = NEW.id)"
    return [
        ("ez360_refunds_within_payment", "refunds", "BEFORE INSERT",
         f"(SELECT COALESCE(SUM(amount_minor), 0) FROM refunds WHERE payment_id = NEW.payment_id) "
         f"+ NEW.amount_minor > {amount}", M_PAY_OVER),
        ("ez360_allocations_within_payment", "payment_allocations", "BEFORE INSERT",
         f"NEW.amount_minor > 0 AND {pay_sums} + NEW.amount_minor > {amount}", M_PAY_OVER),
        ("ez360_allocations_within_invoice", "payment_allocations", "BEFORE INSERT",
         f"{inv_alloc} + NEW.amount_minor < 0 OR {inv_alloc} + NEW.amount_minor > {inv_room}", M_INV_OVER),
        ("ez360_sent_totals", "invoices", "BEFORE UPDATE",
         f"OLD.status = 'draft' AND NEW.status <> 'draft' AND (NEW.subtotal_minor <> {lines.format(col='net_minor')} "
         f"OR NEW.tax_minor <> {lines.format(col='tax_minor')} OR NEW.total_minor <> NEW.subtotal_minor + "
         "NEW.tax_minor)", M_INV_LINES),
        ("ez360_audit_head_update", "audit_heads", "BEFORE UPDATE",
         "NEW.company_id <> OLD.company_id OR NEW.last_seq <= OLD.last_seq OR NOT EXISTS (SELECT 1 FROM audit_log a "
         "WHERE a.company_id = NEW.company_id AND a.seq = NEW.last_seq AND a.hash = NEW.last_hash) OR EXISTS "
         "(SELECT 1 FROM audit_log a WHERE a.company_id = NEW.company_id AND a.seq > NEW.last_seq)", M_AUDIT_HEAD),
        ("ez360_audit_head_insert", "audit_heads", "BEFORE INSERT",
         "NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.company_id = NEW.company_id AND a.seq = NEW.last_seq "
         "AND a.hash = NEW.last_hash) OR EXISTS (SELECT 1 FROM audit_log a WHERE a.company_id = NEW.company_id "
         "AND a.seq > NEW.last_seq)", M_AUDIT_HEAD),
        ("ez360_audit_head_delete", "audit_heads", "BEFORE DELETE", "1", M_AUDIT_HEAD),
    ]


def _seal_existing_chains() -> None:
    """Chains written before this revision are unkeyed SHA-256: a keyed seal row on top of each makes any later
    change to them detectable (`ez360 audit verify` accepts unkeyed rows only below a seal row)."""
    import sqlalchemy as sa

    from ez360.core.settings import Settings
    from operational_api.db import audit_trail
    conn = op.get_bind()
    key = audit_trail.keys_from(Settings())[0]
    for (company_id,) in conn.execute(sa.text("SELECT company_id FROM audit_heads ORDER BY company_id")).all():
        audit_trail.seal_legacy_chain(conn, company_id, key)


def upgrade() -> None:
    _seal_existing_chains()  # before the head guard exists: it is the last unguarded move of the heads
    if op.get_bind().dialect.name == "sqlite":
        for name, table, when, condition, message in _sqlite_triggers():
            op.execute(f"CREATE TRIGGER {name} {when} ON {table} FOR EACH ROW WHEN {condition} "
                       f"BEGIN SELECT RAISE(ABORT, {_lit(message)}); END")
        return
    _pg_create()


def downgrade() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for name, *_ in _sqlite_triggers():
            op.execute(f"DROP TRIGGER IF EXISTS {name}")
        return
    _pg_drop()
