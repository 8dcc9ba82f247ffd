"""Row-level security on the PostgreSQL warehouse's published tables: the dashboards' second line of defence.

Every published table with a `company_id` column gets RLS and one policy: a row is visible to the reader role of
its company (`ez360_reader_c<company_id>`) and to the platform reader (`ez360_reader_platform`), to no one else.
A child table without the column (`apps.data.CHILD_TABLES`) sees the rows whose parent the reader sees.
Tables without a company column (the publish log) are readable by every reader. The reader roles are NOLOGIN
members of `ez360_readers`, which holds the SELECT grants.

Each dashboards read runs in a transaction that first does `SET LOCAL ROLE` to the reader of the company asked
for (`read_as_reader`), so even a query that forgot its WHERE clause sees that company's rows only.

Publishing swaps the whole schema, so the policies are (re)applied per table when a read finds a table without
them (`secure_table`; idempotent, cheap). The connecting user must own the published tables (the warehouse
user does) and may create roles; a user that cannot makes reads fail closed with the reason.
"""

from __future__ import annotations

import sqlalchemy as sa

from apps.data import CHILD_TABLES
from ez360.core.warehouse import PUBLISHED_SCHEMA

READERS = "ez360_readers"
PLATFORM_READER = "ez360_reader_platform"
POLICY = "ez360_company_reader"
ACCESS_SCHEMA = "ez360_access"  # helper functions of the policies (outside the schema publish rewrites)


def company_reader(company_id: int) -> str:
    return f"ez360_reader_c{int(company_id)}"


def _ensure_role(conn: sa.Connection, role: str, member_of: str | None = None) -> None:
    exists = conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar()
    if not exists:
        # concurrent readers may race to create the same role: a duplicate is fine
        conn.execute(sa.text(
            f"DO $$ BEGIN CREATE ROLE {role} NOLOGIN{' IN ROLE ' + member_of if member_of else ''}; "
            "EXCEPTION WHEN duplicate_object THEN NULL; END $$"))
    # the connecting user must be able to SET ROLE to the reader
    is_member = conn.execute(sa.text("SELECT pg_has_role(current_user, :r, 'MEMBER')"), {"r": role}).scalar()
    if not is_member:
        conn.execute(sa.text(f"GRANT {role} TO current_user"))


def secure_table(conn: sa.Connection, table: str) -> None:
    """RLS + the company policy on one published table, and the readers' SELECT grant (idempotent)."""
    qualified = f"{PUBLISHED_SCHEMA}.{table}"
    _ensure_role(conn, READERS)
    _ensure_role(conn, PLATFORM_READER, READERS)
    conn.execute(sa.text(f"GRANT USAGE ON SCHEMA {PUBLISHED_SCHEMA} TO {READERS}"))
    conn.execute(sa.text(f"GRANT SELECT ON {qualified} TO {READERS}"))
    if table in CHILD_TABLES:
        key, parent = CHILD_TABLES[table]
        if not _secured(conn, parent):
            secure_table(conn, parent)
        # Through a function, not a subquery: a policy naming the parent would make the publish's DROP of the
        # parent fail (a plpgsql body is not a tracked dependency). As the reader, the parent's policy applies.
        function = f"{ACCESS_SCHEMA}.company_of_{parent}"
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {ACCESS_SCHEMA}"))
        conn.execute(sa.text(
            f"CREATE OR REPLACE FUNCTION {function}(k text) RETURNS bigint LANGUAGE plpgsql STABLE AS $fn$ BEGIN "
            f"RETURN (SELECT company_id FROM {PUBLISHED_SCHEMA}.{parent} WHERE {key} = k LIMIT 1); END $fn$"))
        conn.execute(sa.text(f"GRANT USAGE ON SCHEMA {ACCESS_SCHEMA} TO {READERS}"))
        rule = (f"current_user = '{PLATFORM_READER}' OR current_user = 'ez360_reader_c' || "
                f"{function}({key}::text)::text")
    elif _has_company(conn, table):
        rule = f"current_user = '{PLATFORM_READER}' OR current_user = 'ez360_reader_c' || company_id::text"
    else:
        return
    conn.execute(sa.text(f"ALTER TABLE {qualified} ENABLE ROW LEVEL SECURITY"))
    conn.execute(sa.text(f"DROP POLICY IF EXISTS {POLICY} ON {qualified}"))
    conn.execute(sa.text(f"CREATE POLICY {POLICY} ON {qualified} FOR SELECT USING ({rule})"))


def _has_company(conn: sa.Connection, table: str) -> bool:
    return bool(conn.execute(sa.text(
        "SELECT 1 FROM information_schema.columns WHERE table_schema = :s AND table_name = :t "
        "AND column_name = 'company_id'"), {"s": PUBLISHED_SCHEMA, "t": table}).scalar())


def _secured(conn: sa.Connection, table: str) -> bool:
    row = conn.execute(sa.text(
        "SELECT c.relrowsecurity, has_table_privilege(:readers, c.oid, 'SELECT') "
        "FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = :s AND c.relname = :t"),
        {"s": PUBLISHED_SCHEMA, "t": table, "readers": READERS}).first() if _role_exists(conn, READERS) else None
    if row is None:
        return False
    scoped = table in CHILD_TABLES or _has_company(conn, table)
    return bool(row[1]) and (bool(row[0]) or not scoped)


def _role_exists(conn: sa.Connection, role: str) -> bool:
    return bool(conn.execute(sa.text("SELECT 1 FROM pg_roles WHERE rolname = :r"), {"r": role}).scalar())


def read_as_reader(conn: sa.Connection, table: str, company_ids: list[int] | None) -> None:
    """Inside the read's transaction: make sure `table` is secured, then become the reader of the company
    (one company), or the platform reader (None = platform-wide, or several companies at once)."""
    if not _secured(conn, table):
        secure_table(conn, table)
    if company_ids is not None and len(company_ids) == 1:
        role = company_reader(company_ids[0])
        _ensure_role(conn, role, READERS)
    else:
        role = PLATFORM_READER
        _ensure_role(conn, role, READERS)
    conn.execute(sa.text(f"SET LOCAL ROLE {role}"))
