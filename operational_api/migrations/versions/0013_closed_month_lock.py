"""Closing a month and posting into it are serialized by the database (PostgreSQL).

0003's guard refuses to post an entry dated in a closed month, but under READ COMMITTED it only sees closes that
had committed when the posting ran: a close committing between a posting and that posting's COMMIT let the entry
land in a month already closed (tests/test_concurrency_money.py reproduced it on the first try: five payments
committed into the month after its close). Now a posting takes the month's lock in SHARE mode, and a close takes
it EXCLUSIVE, both as transaction-scoped advisory locks keyed (company id, yyyymm), each in a trigger of its own.
Postings of one month never wait on each other; a close waits for the postings in flight to commit, and postings
that come after it wait for the close and are then refused by the guard, whose query runs after the lock is
granted and so sees the close. The close holds no other lock while it waits, so no cycle can form with the row
locks postings hold (operational_api.db.locking). SQLite has a single writer.

Revision ID: 0013_closed_month_lock
Revises: 0012_audit_head_fast
"""

from alembic import op

revision = "0013_closed_month_lock"
down_revision = "0012_audit_head_fast"
branch_labels = None
depends_on = None

# PostgreSQL fires the BEFORE triggers of one event in the order of their names: "ez360_je_month_lock" runs
# before 0003's "ez360_journal_entries_guard", so the guard's closed-month check waits for the lock first.
TRIGGERS = (  # (name, table, timing, condition, body)
    ("ez360_je_month_lock", "journal_entries", "BEFORE UPDATE OF status",
     "NEW.status = 'posted' AND OLD.status IS DISTINCT FROM 'posted'",
     "PERFORM pg_advisory_xact_lock_shared(NEW.company_id, to_char(NEW.entry_date, 'YYYYMM')::int);"),
    ("ez360_closed_periods_lock", "closed_periods", "BEFORE INSERT", "TRUE",
     "PERFORM pg_advisory_xact_lock(NEW.company_id, replace(NEW.period, '-', '')::int);"),
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table, timing, condition, body in TRIGGERS:
        op.execute(f"CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql "
                   f"AS $fn$ BEGIN {body} RETURN NEW; END $fn$")
        op.execute(f"CREATE TRIGGER {name} {timing} ON {table} FOR EACH ROW WHEN ({condition}) "
                   f"EXECUTE FUNCTION {name}()")


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    for name, table, *_ in TRIGGERS:
        op.execute(f"DROP TRIGGER IF EXISTS {name} ON {table}")
        op.execute(f"DROP FUNCTION IF EXISTS {name}()")
