"""Who may read the PostgreSQL warehouse's published tables: reader roles, grants and row-level security.

Applied by the publisher to the NEW tables before they are swapped in (pipelines/publish.py), so the published
schema is never without its policies, not even for the first read after a publish. The dashboards (apps/rls.py)
only verify it and become a reader role for each read.

Every published table with a `company_id` column gets RLS and one policy: a row is visible to the reader role of
its company (`ez360_reader_c<company_id>`) and to the platform reader (`ez360_reader_platform`), to no one else.
A child table without the column (`CHILD_TABLES`) sees the rows whose parent the reader sees. Tables without a
company column (the publish log) are readable by every reader. The reader roles are NOLOGIN members of
`ez360_readers`, which holds the SELECT grants and USAGE on the schema.

Everything here takes a DB-API cursor (psycopg2), so the publisher's transaction and a SQLAlchemy connection's
(`conn.connection.cursor()`) use the same statements. A leaf of the shared core: imports no layer.
"""

from __future__ import annotations

from ez360.core.warehouse import PUBLISHED_SCHEMA

READERS = "ez360_readers"
PLATFORM_READER = "ez360_reader_platform"
POLICY = "ez360_company_reader"
ACCESS_SCHEMA = "ez360_access"  # helper functions of the policies (outside the schema a publish replaces)

# Published tables without a company_id column that belong to a company through a parent row:
# {child table: (key column, parent table with company_id)}
CHILD_TABLES: dict[str, tuple[str, str]] = {
    "fct_reconciliation_candidates": ("item_key", "fct_reconciliation_items"),
}


def company_reader(company_id: int) -> str:
    return f"ez360_reader_c{int(company_id)}"


def ensure_role(cur, role: str, member_of: str | None = None) -> None:
    """Create the NOLOGIN role if missing and let the connecting user SET ROLE to it (idempotent)."""
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (role,))
    if cur.fetchone() is None:
        # concurrent readers and publishers may race to create the same role: a duplicate is fine
        cur.execute(f"DO $$ BEGIN CREATE ROLE {role} NOLOGIN{' IN ROLE ' + member_of if member_of else ''}; "
                    "EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    cur.execute("SELECT pg_has_role(current_user, %s, 'MEMBER')", (role,))
    if not cur.fetchone()[0]:
        cur.execute(f"GRANT {role} TO current_user")


def prepare_readers(cur, tables: list[str]) -> None:
    """The cluster-wide roles and the policies' helper functions. Run OUTSIDE a long transaction: a role or
    function created inside one would make a concurrent reader creating the same wait for its commit."""
    ensure_role(cur, READERS)
    ensure_role(cur, PLATFORM_READER, READERS)
    children = [t for t in tables if t in CHILD_TABLES]
    if children:
        cur.execute(f"CREATE SCHEMA IF NOT EXISTS {ACCESS_SCHEMA}")
        cur.execute(f"GRANT USAGE ON SCHEMA {ACCESS_SCHEMA} TO {READERS}")
    for child in children:
        key, parent = CHILD_TABLES[child]
        # Through a function, not a subquery: a policy naming the parent would tie the child's policy to one
        # generation of the parent table (a plpgsql body is resolved by name when it runs, so it follows the
        # swap). As the reader, the parent's own policy applies inside it.
        cur.execute(
            f"CREATE OR REPLACE FUNCTION {_company_of(parent)}(k text) RETURNS bigint LANGUAGE plpgsql STABLE AS "
            f"$fn$ BEGIN RETURN (SELECT company_id FROM {PUBLISHED_SCHEMA}.{parent} WHERE {key} = k LIMIT 1); "
            "END $fn$")


def secure_schema(cur, schema: str, tables: list[str]) -> None:
    """Grants and policies on `tables` of `schema` (the publisher's staging schema, renamed to `published`
    afterwards: grants and policies belong to the objects and follow the rename)."""
    cur.execute(f"GRANT USAGE ON SCHEMA {schema} TO {READERS}")
    for table in tables:
        secure_table(cur, schema, table)


def secure_table(cur, schema: str, table: str) -> None:
    """RLS + the company policy on one table, and the readers' SELECT grant (idempotent)."""
    qualified = f"{schema}.{table}"
    cur.execute(f"GRANT SELECT ON {qualified} TO {READERS}")
    if table in CHILD_TABLES:
        key, parent = CHILD_TABLES[table]
        rule = (f"current_user = '{PLATFORM_READER}' OR current_user = 'ez360_reader_c' || "
                f"{_company_of(parent)}({key}::text)::text")
    elif has_company(cur, schema, table):
        rule = f"current_user = '{PLATFORM_READER}' OR current_user = 'ez360_reader_c' || company_id::text"
    else:
        return
    cur.execute(f"ALTER TABLE {qualified} ENABLE ROW LEVEL SECURITY")
    cur.execute(f"DROP POLICY IF EXISTS {POLICY} ON {qualified}")
    cur.execute(f"CREATE POLICY {POLICY} ON {qualified} FOR SELECT USING ({rule})")


def is_secured(cur, table: str, schema: str = PUBLISHED_SCHEMA) -> bool:
    """The readers may select from the table and, when it is company-scoped, RLS is on."""
    cur.execute("SELECT 1 FROM pg_roles WHERE rolname = %s", (READERS,))
    if cur.fetchone() is None:
        return False
    cur.execute("SELECT c.relrowsecurity, has_table_privilege(%s, c.oid, 'SELECT') FROM pg_class c "
                "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = %s AND c.relname = %s",
                (READERS, schema, table))
    row = cur.fetchone()
    if row is None:
        return False
    scoped = table in CHILD_TABLES or has_company(cur, schema, table)
    return bool(row[1]) and (bool(row[0]) or not scoped)


def has_company(cur, schema: str, table: str) -> bool:
    cur.execute("SELECT 1 FROM information_schema.columns WHERE table_schema = %s AND table_name = %s "
                "AND column_name = 'company_id'", (schema, table))
    return cur.fetchone() is not None


def _company_of(parent: str) -> str:
    return f"{ACCESS_SCHEMA}.company_of_{parent}"
