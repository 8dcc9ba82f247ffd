"""Row-level security on the PostgreSQL warehouse's published tables: the dashboards' second line of defence.

The roles, grants and policies are defined in `ez360.core.published_access` and applied by the publisher to
the new tables before it swaps them in. Each dashboards read runs in a transaction that first does
`SET LOCAL ROLE` to the reader of the company asked for (`read_as_reader`), so even a query that forgot its
WHERE clause sees that company's rows only.

A read only verifies that its table is secured; a table published without policies (by an older publisher)
is secured then (`secure_table`; idempotent). The connecting user must own the published tables (the warehouse
user does) and may create roles; a user that cannot makes reads fail closed with the reason.
"""

from __future__ import annotations

import sqlalchemy as sa

from ez360.core import published_access as access
from ez360.core.published_access import (
    ACCESS_SCHEMA,
    CHILD_TABLES,
    PLATFORM_READER,
    POLICY,
    READERS,
    company_reader,
)
from ez360.core.warehouse import PUBLISHED_SCHEMA

__all__ = ["ACCESS_SCHEMA", "PLATFORM_READER", "POLICY", "READERS", "company_reader", "read_as_reader",
           "secure_table"]


def _cursor(conn: sa.Connection):
    return conn.connection.cursor()  # the DB-API cursor, inside this connection's transaction


def _ensure_role(conn: sa.Connection, role: str, member_of: str | None = None) -> None:
    access.ensure_role(_cursor(conn), role, member_of)


def secure_table(conn: sa.Connection, table: str) -> None:
    """RLS + the company policy on one published table, and the readers' SELECT grant (idempotent)."""
    cur = _cursor(conn)
    access.prepare_readers(cur, [table])
    if table in CHILD_TABLES and not _secured(conn, CHILD_TABLES[table][1]):
        secure_table(conn, CHILD_TABLES[table][1])
    access.secure_schema(cur, PUBLISHED_SCHEMA, [table])


def _secured(conn: sa.Connection, table: str) -> bool:
    return access.is_secured(_cursor(conn), table)


def read_as_reader(conn: sa.Connection, table: str, company_ids: list[int] | None) -> None:
    """Inside the read's transaction: make sure `table` is secured (the publisher did it: a check, no change),
    then become the reader of the company (one company), or the platform reader (None = platform-wide, or
    several companies at once)."""
    if not _secured(conn, table):
        secure_table(conn, table)
    if company_ids is not None and len(company_ids) == 1:
        role = company_reader(company_ids[0])
        _ensure_role(conn, role, READERS)
    else:
        role = PLATFORM_READER
        _ensure_role(conn, role, READERS)
    conn.execute(sa.text(f"SET LOCAL ROLE {role}"))
