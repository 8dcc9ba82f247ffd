"""Fingerprints of the raw tables dbt reads: did this table's data change since the last build?

The ingest's "rows loaded" cannot say: tables without an update cursor are re-read whole every run
(raw_ops.invoice_lines, raw_ops.accounts), and a merge re-writes rows it already had. So each table is
fingerprinted by its content: the row count and the sum of one hash per row, over every column except
dlt's per-load bookkeeping (`_dlt_id`, `_dlt_load_id`, `_dlt_parent_id`, `_dlt_root_id` change on every
load of the same data). Order-independent, in the database, one query per table (well under a second for
the demo's raw layer on either engine).
"""

from __future__ import annotations

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from ez360.core.warehouse import Warehouse

LOAD_BOOKKEEPING = frozenset({"_dlt_id", "_dlt_load_id", "_dlt_parent_id", "_dlt_root_id"})
MISSING = "missing"


def _row_hash_sum(kind: str, columns: list[str]) -> str:
    quoted = ", ".join(f'"{c}"' for c in columns)
    if kind == "duckdb":
        return f"coalesce(sum(hash({quoted})), 0)"
    return f"coalesce(sum(('x' || left(md5(row({quoted})::text), 16))::bit(64)::bigint::numeric), 0)"


def fingerprints(warehouse: Warehouse, tables: list[str]) -> dict[str, str]:
    """"schema.table" -> "<rows>:<row hash sum>" (or "missing" for a table not landed yet)."""
    engine = create_engine(warehouse.sqlalchemy_url(), poolclass=NullPool)
    found: dict[str, str] = {}
    try:
        with engine.connect() as conn:
            columns: dict[str, list[str]] = {}
            for schema, table, column in _columns(conn, tables):
                if column not in LOAD_BOOKKEEPING:
                    columns.setdefault(f"{schema}.{table}", []).append(column)
            for name in tables:
                if name not in columns:
                    found[name] = MISSING
                    continue
                schema, table = name.split(".")
                rows, total = conn.execute(text(
                    f'select count(*), {_row_hash_sum(warehouse.kind, columns[name])} from "{schema}"."{table}"'
                )).one()
                found[name] = f"{rows}:{total}"
    finally:
        engine.dispose()
    return found


def _columns(conn, tables: list[str]) -> list:
    schemas = sorted({t.split(".")[0] for t in tables})
    placeholders = ", ".join(f":s{i}" for i in range(len(schemas)))
    return conn.execute(text(
        "select table_schema, table_name, column_name from information_schema.columns "
        f"where table_schema in ({placeholders}) order by table_schema, table_name, ordinal_position"),
        {f"s{i}": s for i, s in enumerate(schemas)}).all()


def current_date(warehouse: Warehouse) -> str:
    """The warehouse's own `current_date` (its time zone), the date the "as of today" marts are built with."""
    engine = create_engine(warehouse.sqlalchemy_url(), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            return str(conn.execute(text("select current_date")).scalar())
    finally:
        engine.dispose()


def missing_relations(warehouse: Warehouse, relations: list[str]) -> list[str]:
    """The "schema.name" tables/views of `relations` that the warehouse does not have (it was rebuilt?)."""
    engine = create_engine(warehouse.sqlalchemy_url(), poolclass=NullPool)
    try:
        with engine.connect() as conn:
            present = {f"{s}.{t}" for s, t in conn.execute(text(
                "select table_schema, table_name from information_schema.tables")).all()}
    finally:
        engine.dispose()
    return sorted(set(relations) - present)
