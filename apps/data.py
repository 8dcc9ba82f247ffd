"""Read access to PUBLISHED data for the dashboards (never the tables dbt is writing).

DuckDB: `published_dir/reporting.duckdb`, opened read-only for each call and closed straight after, so a
publish can swap the file at any time. PostgreSQL: schema `published` of the warehouse, via SQLAlchemy.
Every read can be restricted to a list of company ids (the tenant boundary).

`read()` is the one data-access path of the dashboard pages: a published table, ALWAYS for the companies named
(or `ALL_COMPANIES`, which only the platform-admin view passes). On PostgreSQL each read also runs as a reader
role of its own (`ez360_reader_c<company id>`, or `ez360_reader_platform`) under row-level security on every
published table with a `company_id` column, so a bug in a WHERE clause still cannot show another company's rows
(`apps.rls`).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import duckdb
import pandas as pd
import sqlalchemy as sa

from apps.formatting import money_decimal
from ez360.core.published import (
    LOG_TABLE,
    STATUS_GATE_FAILED,
    STATUS_PUBLISHED,
    open_snapshot,
    read_status_file,
    snapshot_path,
)
from ez360.core.published_access import CHILD_TABLES
from ez360.core.settings import Settings, get_settings
from ez360.core.warehouse import PUBLISHED_SCHEMA, parse_warehouse_url

REVENUE_TABLE = "rpt_revenue_by_company_month"
REVENUE_COLUMNS = [
    "company_id", "company_slug", "company_name", "revenue_month", "currency", "currency_exponent",
    "invoice_count", "net_revenue_minor", "tax_minor", "gross_revenue_minor",
]
_INT_COLUMNS = ["company_id", "currency_exponent", "invoice_count", "net_revenue_minor", "tax_minor",
                "gross_revenue_minor"]
COMPANY_COLUMNS = ["company_id", "company_slug", "company_name"]
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
HOW_TO_PUBLISH = "Run `ez360 pipeline run` to load, transform, check and publish the data."


class NothingPublishedYet(RuntimeError):
    """No pipeline run has published data yet."""


class MissingTable(NothingPublishedYet):
    """The published snapshot has no such table (yet): the page says which and what to run."""

    def __init__(self, table: str, location: str):
        super().__init__(f"The published data at {location} has no table {table} yet. {HOW_TO_PUBLISH}")
        self.table = table


class _AllCompanies:
    def __repr__(self) -> str:
        return "ALL_COMPANIES"


ALL_COMPANIES = _AllCompanies()  # platform-wide reads (platform admins only); never a default
_IDENT = __import__("re").compile(r"^[a-z_][a-z0-9_]*$")


@dataclass(frozen=True)
class PublishStatus:
    last_published_run_id: str | None = None
    last_published_at: datetime | None = None
    row_counts: dict[str, int] = field(default_factory=dict)
    last_attempt_run_id: str | None = None
    last_attempt_at: datetime | None = None
    last_attempt_status: str | None = None  # "published" | "gate_failed" | None
    failed_checks: tuple[str, ...] = ()
    location: str = ""

    @property
    def has_published(self) -> bool:
        return self.last_published_run_id is not None

    @property
    def latest_attempt_failed(self) -> bool:
        """True when the most recent pipeline attempt failed its quality gate (data is from an older run)."""
        return self.last_attempt_status == STATUS_GATE_FAILED


class PublishedData:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.warehouse = parse_warehouse_url(settings.warehouse_url)
        self.published_dir = settings.published_dir
        self._engine: sa.Engine | None = None

    @classmethod
    def from_settings(cls, settings: Settings | None = None) -> PublishedData:
        return cls(settings or get_settings())

    @property
    def location(self) -> str:
        if self.warehouse.kind == "duckdb":
            return str(snapshot_path(self.published_dir))
        w = self.warehouse
        return f"postgresql://{w.host}:{w.port}/{w.database} (schema {PUBLISHED_SCHEMA})"

    def close(self) -> None:
        if self._engine is not None:
            self._engine.dispose()
            self._engine = None

    # ----------------------------------------------------------------------------------------- reads

    def revenue_by_company_month(self, company_ids: Sequence[int] | None = None) -> pd.DataFrame:
        """The published revenue mart, plus exact Decimal columns net_revenue, tax and gross_revenue."""
        rows = self._select(REVENUE_COLUMNS, company_ids,
                            order_by="company_name, company_id, revenue_month, currency")
        return revenue_decimals(_frame(rows, REVENUE_COLUMNS))

    def read(self, table: str, companies: Sequence[int] | _AllCompanies, *, columns: Sequence[str] | None = None,
             between: dict[str, tuple[Any, Any]] | None = None, equals: dict[str, Any] | None = None,
             order_by: Sequence[str] = ()) -> pd.DataFrame:
        """Rows of published `table` for `companies` (ids) only; `between` = {column: (from, to_exclusive)}.

        Raises MissingTable when the snapshot has no such table."""
        for name in [table, *(columns or ()), *(between or {}), *(equals or {}), *order_by]:
            if not _IDENT.match(name):
                raise ValueError(f"not a plain identifier: {name!r}")
        everyone = companies is ALL_COMPANIES
        ids = [] if everyone else sorted({int(i) for i in companies})  # type: ignore[union-attr]
        if not everyone and not ids:
            raise ValueError("read() needs the company (or ALL_COMPANIES for the platform view)")
        clauses, params = [], {}
        if not everyone:
            in_companies = "company_id IN (" + ", ".join(f":c{i}" for i in range(len(ids))) + ")"
            if table in CHILD_TABLES:
                key, parent = CHILD_TABLES[table]
                in_companies = f"{key} IN (SELECT {key} FROM {PUBLISHED_SCHEMA}.{parent} WHERE {in_companies})"
            clauses.append(in_companies)
            params.update({f"c{i}": v for i, v in enumerate(ids)})
        for n, (col, (lo, hi)) in enumerate((between or {}).items()):
            clauses.append(f"{col} >= :lo{n} AND {col} < :hi{n}")
            params.update({f"lo{n}": lo, f"hi{n}": hi})
        for n, (col, value) in enumerate((equals or {}).items()):
            clauses.append(f"{col} = :eq{n}")
            params[f"eq{n}"] = value
        cols = ", ".join(columns) if columns else "*"
        sql = f"SELECT {cols} FROM {PUBLISHED_SCHEMA}.{table}" + (" WHERE " + " AND ".join(clauses) if clauses
                                                                   else "")
        if order_by:
            sql += " ORDER BY " + ", ".join(order_by)
        if self.warehouse.kind == "duckdb":
            names = list(params)
            duck_sql = sql
            for name in sorted(names, key=len, reverse=True):
                duck_sql = duck_sql.replace(f":{name}", f"${name}")
            with self._duckdb() as con:
                try:
                    result = con.execute(duck_sql, params)
                except duckdb.CatalogException as exc:
                    if f"{table}" in str(exc) and "Table" in str(exc):
                        raise MissingTable(table, self.location) from None
                    raise
                return result.fetchdf()
        from apps import rls

        with self._pg().begin() as conn:
            if conn.execute(sa.text("SELECT to_regclass(:t)"), {"t": f"{PUBLISHED_SCHEMA}.{table}"}).scalar() is None:
                raise MissingTable(table, self.location)
            rls.read_as_reader(conn, table, None if everyone else ids)
            result = conn.execute(sa.text(sql), params)
            return pd.DataFrame(result.fetchall(), columns=list(result.keys()))

    def has_table(self, table: str) -> bool:
        if self.warehouse.kind == "duckdb":
            if not snapshot_path(self.published_dir).exists():
                return False
            with self._duckdb() as con:
                return con.execute("SELECT count(*) FROM information_schema.tables WHERE table_schema = ? "
                                   "AND table_name = ?", [PUBLISHED_SCHEMA, table]).fetchone()[0] > 0
        with self._pg().connect() as conn:
            return conn.execute(sa.text("SELECT to_regclass(:t)"),
                                {"t": f"{PUBLISHED_SCHEMA}.{table}"}).scalar() is not None

    def companies(self, company_ids: Sequence[int] | None = None) -> pd.DataFrame:
        """Companies present in the published revenue data, by name."""
        rows = self._select(COMPANY_COLUMNS, company_ids, order_by="company_name, company_id", distinct=True)
        return _frame(rows, COMPANY_COLUMNS)

    def status(self) -> PublishStatus:
        """Last published run and the latest attempt. Does not raise when nothing is published yet:
        check `has_published` (a first run can fail its gate before anything was ever published)."""
        if self.warehouse.kind == "duckdb":
            return self._status_duckdb()
        return self._status_postgres()

    # ----------------------------------------------------------------------------------------- internals

    def _nothing(self, why: str) -> NothingPublishedYet:
        return NothingPublishedYet(f"Nothing has been published yet ({why}). {HOW_TO_PUBLISH}")

    def _select(self, columns: list[str], company_ids: Sequence[int] | None, order_by: str,
                distinct: bool = False) -> list[tuple]:
        ids = None if company_ids is None else [int(i) for i in company_ids]
        if ids is not None and not ids:
            return []
        cols = ", ".join(columns)
        head = f"SELECT {'DISTINCT ' if distinct else ''}{cols} FROM {PUBLISHED_SCHEMA}.{REVENUE_TABLE}"
        if self.warehouse.kind == "duckdb":
            where = f" WHERE company_id IN ({', '.join('?' for _ in ids)})" if ids else ""
            with self._duckdb() as con:
                try:
                    return con.execute(f"{head}{where} ORDER BY {order_by}", ids or []).fetchall()
                except duckdb.CatalogException:
                    raise self._nothing(f"{self.location} has no table {REVENUE_TABLE}") from None
        with self._pg().connect() as conn:
            if conn.execute(sa.text("SELECT to_regclass(:t)"),
                            {"t": f"{PUBLISHED_SCHEMA}.{REVENUE_TABLE}"}).scalar() is None:
                raise self._nothing(f"{self.location} has no table {REVENUE_TABLE}")
            query = sa.text(f"{head}{' WHERE company_id IN :ids' if ids else ''} ORDER BY {order_by}")
            if ids:
                query = query.bindparams(sa.bindparam("ids", expanding=True))
            return [tuple(r) for r in conn.execute(query, {"ids": ids} if ids else {}).fetchall()]

    def _duckdb(self) -> duckdb.DuckDBPyConnection:
        path = snapshot_path(self.published_dir)
        if not path.exists():
            raise self._nothing(f"no snapshot at {path}")
        return open_snapshot(path)

    def _pg(self) -> sa.Engine:
        if self._engine is None:
            self._engine = sa.create_engine(self.warehouse.sqlalchemy_url(), pool_pre_ping=True)
        return self._engine

    def _status_duckdb(self) -> PublishStatus:
        published: tuple | None = None
        latest_logged: tuple | None = None
        if snapshot_path(self.published_dir).exists():
            with self._duckdb() as con:
                published, latest_logged = _log_rows(
                    lambda q, p: con.execute(q, p).fetchone(), f"{PUBLISHED_SCHEMA}.{LOG_TABLE}", "?")
        attempt = latest_logged
        recorded = read_status_file(self.published_dir)
        if recorded and recorded.get("last_attempt_run_id"):
            at = _parse_time(recorded.get("last_attempt_at"))
            if attempt is None or (at is not None and at >= attempt[1]):
                attempt = (str(recorded["last_attempt_run_id"]), at, recorded.get("last_attempt_status"),
                           list(recorded.get("failed_checks") or []))
        return _status(published, attempt, self.location)

    def _status_postgres(self) -> PublishStatus:
        with self._pg().connect() as conn:
            if conn.execute(sa.text("SELECT to_regclass(:t)"),
                            {"t": f"{PUBLISHED_SCHEMA}.{LOG_TABLE}"}).scalar() is None:
                return PublishStatus(location=self.location)

            def fetch(q: str, p: list[Any]) -> tuple | None:
                row = conn.execute(sa.text(q), {"status": p[0]} if p else {}).fetchone()
                return tuple(row) if row is not None else None

            published, latest = _log_rows(fetch, f"{PUBLISHED_SCHEMA}.{LOG_TABLE}", ":status")
        return _status(published, latest, self.location)


def revenue_decimals(frame: pd.DataFrame) -> pd.DataFrame:
    """Exact Decimal columns net_revenue, tax and gross_revenue beside the revenue mart's minor units."""
    frame = frame.copy()
    for col in _INT_COLUMNS:
        if col in frame:
            frame[col] = frame[col].astype("int64")
    for decimal_col, minor_col in (("net_revenue", "net_revenue_minor"), ("tax", "tax_minor"),
                                   ("gross_revenue", "gross_revenue_minor")):
        frame[decimal_col] = pd.Series(
            [money_decimal(v, c, e) for v, c, e in
             zip(frame[minor_col], frame["currency"], frame["currency_exponent"], strict=True)],
            index=frame.index, dtype=object,
        )
    return frame


def _log_rows(fetch, log: str, placeholder: str) -> tuple[tuple | None, tuple | None]:
    """(last published row, latest row of any status), each (run_id, at, status, failed_checks, row_counts)."""
    cols = "run_id, published_at, status, detail, row_counts"
    published = fetch(f"SELECT {cols} FROM {log} WHERE status = {placeholder} "
                      "ORDER BY published_at DESC LIMIT 1", [STATUS_PUBLISHED])
    latest = fetch(f"SELECT {cols} FROM {log} ORDER BY published_at DESC LIMIT 1", [])
    return _log_row(published), _log_row(latest)


def _log_row(row: tuple | None) -> tuple | None:
    if row is None:
        return None
    run_id, at, status, detail, row_counts = row
    checks: list[str] = []
    if detail:
        try:
            checks = list(json.loads(detail).get("failed_checks") or [])
        except (ValueError, AttributeError):
            checks = []
    try:
        counts = {str(k): int(v) for k, v in json.loads(row_counts).items()} if row_counts else {}
    except (ValueError, AttributeError):
        counts = {}
    return (str(run_id), _as_utc(at), status, checks, counts)


def _status(published: tuple | None, attempt: tuple | None, location: str) -> PublishStatus:
    return PublishStatus(
        last_published_run_id=published[0] if published else None,
        last_published_at=published[1] if published else None,
        row_counts=published[4] if published else {},
        last_attempt_run_id=attempt[0] if attempt else None,
        last_attempt_at=attempt[1] if attempt else None,
        last_attempt_status=attempt[2] if attempt else None,
        failed_checks=tuple(attempt[3]) if attempt and attempt[2] == STATUS_GATE_FAILED else (),
        location=location,
    )


def _as_utc(value: Any) -> datetime | None:
    if value is None:
        return None
    if isinstance(value, int):
        return _EPOCH + timedelta(microseconds=value)
    if isinstance(value, str):
        return _parse_time(value)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _parse_time(value: Any) -> datetime | None:
    try:
        parsed = datetime.fromisoformat(str(value))
    except ValueError:
        return None
    return parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)


def _frame(rows: list[tuple], columns: list[str]) -> pd.DataFrame:
    frame = pd.DataFrame.from_records(rows, columns=columns)
    for col in columns:
        if col in _INT_COLUMNS:
            frame[col] = frame[col].astype("int64")
        elif col != "revenue_month":
            frame[col] = frame[col].astype(object)
    return frame
