"""Make Great Expectations 1.x validate DuckDB tables (two workarounds, both checked by canary tests).

1. Persisted connection. GX's SqlAlchemyExecutionEngine keeps one persisted connection (StaticPool) only
   for the dialects in `_PERSISTED_CONNECTION_DIALECTS` (sqlite, mssql, bigquery, databricks). On DuckDB
   every other query comes back empty through duckdb_engine's shared cursor, so every expectation fails
   with `IndexError: list index out of range` in `resolve_metric_bundle`. `enable_duckdb()` adds DuckDB
   to that tuple. Its entries are `GXSqlDialect` members, matched both with `==` against the engine's
   dialect name and through `.value` against the URL's driver name; the enum has no DuckDB member, so the
   entry is a `str` equal to "duckdb" with a `value` property.

2. Default schema. duckdb_engine's column reflection fails on DuckDB 1.4 (its query reads
   `pg_catalog.pg_collation`, which DuckDB lacks), so GX falls back to `SELECT * FROM <table>` without
   the schema. `use_default_schema(engine, schema)` makes the asset's schema the connection's default.

Remove this module once tests/test_quality_gate.py's canaries report that GX works without it.
"""

from __future__ import annotations

import sqlalchemy as sa
from great_expectations.execution_engine import sqlalchemy_execution_engine as _gx_sql_engine


class _DuckDBDialect(str):
    """Stands in for the `GXSqlDialect.DUCKDB` member GX lacks: equal to "duckdb", with the enum's `.value`."""

    __slots__ = ()

    @property
    def value(self) -> str:
        return str(self)


DUCKDB_DIALECT = _DuckDBDialect("duckdb")


def duckdb_enabled() -> bool:
    """True when GX keeps a persisted connection for DuckDB (our patch, or GX itself one day)."""
    return any(getattr(d, "value", d) == "duckdb" for d in _gx_sql_engine._PERSISTED_CONNECTION_DIALECTS)


def enable_duckdb() -> None:
    """Let GX validate DuckDB: add DuckDB to the persisted-connection dialects. Idempotent."""
    if not duckdb_enabled():
        _gx_sql_engine._PERSISTED_CONNECTION_DIALECTS = (
            *_gx_sql_engine._PERSISTED_CONNECTION_DIALECTS,
            DUCKDB_DIALECT,
        )


def use_default_schema(engine: sa.Engine, schema: str) -> None:
    """Make `schema` the default schema of every DuckDB connection `engine` opens from now on."""
    quoted = schema.replace("'", "''")

    @sa.event.listens_for(engine, "connect")
    def _set_default_schema(dbapi_connection, _connection_record) -> None:
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"SET schema = '{quoted}'")
        finally:
            cursor.close()
