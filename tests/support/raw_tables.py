"""Reading raw tables back from either warehouse engine (DuckDB file or PostgreSQL), for ingest tests."""

from __future__ import annotations

from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from ez360.core.warehouse import parse_warehouse_url


class Raw:
    def __init__(self, warehouse_url: str) -> None:
        # no pool: a DuckDB file held open here would keep the next load (another config) out
        self.engine = create_engine(parse_warehouse_url(warehouse_url).sqlalchemy_url(), poolclass=NullPool)

    def close(self) -> None:
        self.engine.dispose()

    def rows(self, schema: str, table: str, columns: str = "*", where: str = "") -> list[dict[str, Any]]:
        with self.engine.connect() as conn:
            result = conn.execute(text(f'select {columns} from {schema}."{table}" {where}'))
            return [dict(r) for r in result.mappings()]

    def scalar(self, sql: str) -> Any:
        with self.engine.connect() as conn:
            return conn.execute(text(sql)).scalar()

    def tables(self, schema: str) -> set[str]:
        with self.engine.connect() as conn:
            return set(conn.execute(text("select table_name from information_schema.tables where table_schema = :s"),
                                    {"s": schema}).scalars())

    def columns(self, schema: str, table: str) -> dict[str, str]:
        """column -> SQL type as the engine names it (DuckDB: DECIMAL(38,18), BIGINT; PostgreSQL: numeric, bigint)."""
        with self.engine.connect() as conn:
            rows = conn.execute(text("select column_name, data_type from information_schema.columns "
                                     "where table_schema = :s and table_name = :t"), {"s": schema, "t": table})
            return {name: kind for name, kind in rows}

    def snapshot(self, schema: str, with_dlt: bool = True) -> dict[str, list[tuple[Any, ...]]]:
        """Every data table of `schema`, rows sorted; `with_dlt=False` leaves out dlt's own ids."""
        out = {}
        for table in sorted(t for t in self.tables(schema) if not t.startswith("_dlt")):
            columns = sorted(c for c in self.columns(schema, table)
                             if with_dlt or c not in ("_dlt_id", "_dlt_load_id", "_dlt_parent_id", "_dlt_root_id"))
            rows = self.rows(schema, table, ", ".join(f'"{c}"' for c in columns))
            out[table] = sorted((tuple(r[c] for c in columns) for r in rows), key=repr)
        return out
