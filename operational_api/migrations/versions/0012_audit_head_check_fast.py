"""The audit head's COMMIT check (0009_ops_money) in a form PostgreSQL answers from the chain's index.

The rule is unchanged: at COMMIT the head must name the newest row of its company's chain (seq and hash), and
no row may lie beyond it. 0009 asked the second half as `EXISTS (... WHERE company_id = $1 AND seq > $2)`; inside
PL/pgSQL that runs as a generic plan, and for EXISTS the planner expects an early hit and walks the company's
rows through `ix_audit_log_company_id`, filtering on seq: with 966,000 audit rows in one company every commit that
wrote audit rows spent ~0.8 s there (API and pgbench alike, issue 8). `max(seq)` reads one entry at the end of the
unique (company_id, seq) index whatever the plan: 0.1 ms.

Revision ID: 0012_audit_head_fast
Revises: 0011
"""

from alembic import op

revision = "0012_audit_head_fast"
down_revision = "0011"
branch_labels = None
depends_on = None

M_AUDIT_HEAD = "ez360: audit_heads changes only through the audit chain"


def _body(beyond: str) -> str:
    return f"""
        DECLARE head record;
        BEGIN
            SELECT h.last_seq, h.last_hash INTO head FROM audit_heads h WHERE h.company_id = NEW.company_id;
            IF NOT EXISTS (SELECT 1 FROM audit_log a WHERE a.company_id = NEW.company_id
                           AND a.seq = head.last_seq AND a.hash = head.last_hash)
               OR {beyond}
            THEN RAISE EXCEPTION '%', '{M_AUDIT_HEAD}' USING ERRCODE = '23514'; END IF;
            RETURN NULL;
        END"""


FAST = "COALESCE((SELECT max(a.seq) FROM audit_log a WHERE a.company_id = NEW.company_id), 0) > head.last_seq"
SLOW = "EXISTS (SELECT 1 FROM audit_log a WHERE a.company_id = NEW.company_id AND a.seq > head.last_seq)"


def _replace(beyond: str) -> None:
    if op.get_bind().dialect.name != "postgresql":
        return  # SQLite's head trigger (0009) is a row-level check of its own
    op.execute(f"CREATE OR REPLACE FUNCTION ez360_audit_head_follows_chain() RETURNS trigger LANGUAGE plpgsql "
               f"AS $fn$ {_body(beyond)} $fn$")


def upgrade() -> None:
    _replace(FAST)


def downgrade() -> None:
    _replace(SLOW)
