"""Run an expectation suite against one warehouse table and say, in plain terms, what failed.

    result = run_suite(Warehouse.sqlalchemy_url(), "marts", "rpt_revenue_by_company_month", revenue_mart_suite())
    if not result.success:
        raise RuntimeError(result.summary())

Uses an ephemeral GX context (nothing written to disk) and releases every database connection before
returning, so a DuckDB file is free for the next writer in the same process.
"""

from __future__ import annotations

import json
import uuid
import warnings
from dataclasses import dataclass, field
from typing import Any

import great_expectations as gx
import great_expectations.expectations as gxe
import sqlalchemy as sa
from great_expectations.data_context.types.base import ProgressBarsConfig

from quality.gx_duckdb import enable_duckdb, use_default_schema


@dataclass(frozen=True)
class FailedExpectation:
    name: str  # expectation type, e.g. "expect_column_values_to_be_between"
    column: str | None  # the column (or "a, b" for compound columns); None for table-level expectations
    details: str  # what was observed, e.g. unexpected values, or the error GX raised
    unexpected_count: int | None = None  # failing rows, when the expectation counts rows
    sample_keys: list[str] = field(default_factory=list)  # key values of (up to 5) failing rows

    def as_dict(self) -> dict:
        return {"expectation": self.name, "column": self.column, "unexpected_count": self.unexpected_count,
                "sample_keys": self.sample_keys, "details": self.details}


@dataclass
class GateResult:
    success: bool
    evaluated: int
    failed: list[FailedExpectation] = field(default_factory=list)
    table: str = ""
    row_count: int | None = None

    def summary(self) -> str:
        where = f" on {self.table}" if self.table else ""
        if self.success:
            return f"quality gate passed{where}: {self.evaluated} expectations met"
        lines = [f"quality gate FAILED{where}: {len(self.failed)} of {self.evaluated} expectations failed"]
        for failure in self.failed:
            column = f" [{failure.column}]" if failure.column else ""
            lines.append(f"- {failure.name}{column}: {failure.details}")
        return "\n".join(lines)


SAMPLE_SIZE = 5


def run_suite(sqlalchemy_url: str, schema: str, table: str, suite: gx.ExpectationSuite,
              key_columns: list[str] | tuple[str, ...] = ()) -> GateResult:
    """Validate `suite` against the whole of `schema.table` at `sqlalchemy_url`
    (`duckdb:///path` or `postgresql+psycopg2://...`, as Warehouse.sqlalchemy_url() gives).

    Failed expectations are reported in the result; a table that does not exist, or a database that
    cannot be reached, raises (GX's TestConnectionError). Connections are released either way.
    With `key_columns`, each failure names the keys of (up to SAMPLE_SIZE) failing rows."""
    with SchemaValidator(sqlalchemy_url, schema) as validator:
        return validator.run(table, suite, key_columns)


class SchemaValidator:
    """One GX context and data source for several tables of one schema (a gate step validates many tables;
    a context per table would cost most of the gate's time). Use as a context manager: it releases every
    connection on exit, so a DuckDB file is free for the next writer in the same process."""

    def __init__(self, sqlalchemy_url: str, schema: str):
        self.schema = schema
        is_duckdb = sqlalchemy_url.startswith("duckdb")
        if is_duckdb:
            enable_duckdb()
        context = gx.get_context(mode="ephemeral")
        context.variables.progress_bars = ProgressBarsConfig(globally=False)
        name = f"warehouse_{uuid.uuid4().hex[:8]}"
        if is_duckdb:
            self.datasource = context.data_sources.add_sql(name=name, connection_string=sqlalchemy_url)
        else:
            self.datasource = context.data_sources.add_postgres(name=name, connection_string=sqlalchemy_url)
        try:
            if is_duckdb:
                use_default_schema(self.datasource.get_execution_engine().engine, schema)
        except BaseException:
            _release_connections(self.datasource)
            raise

    def __enter__(self) -> SchemaValidator:
        return self

    def __exit__(self, *exc_info: object) -> None:
        _release_connections(self.datasource)

    def run(self, table: str, suite: gx.ExpectationSuite, key_columns: list[str] | tuple[str, ...] = ()) -> GateResult:
        schema = self.schema
        with warnings.catch_warnings():
            # GX would rather have the schema in the connection configuration, which DuckDB cannot take
            # (its `schema` setting is per connection, and duckdb_engine applies config globally).
            warnings.filterwarnings("ignore", message="`schema_name` is deprecated", category=DeprecationWarning)
            asset = self.datasource.add_table_asset(name=f"{schema}.{table}", table_name=table, schema_name=schema)
        batch = asset.add_batch_definition_whole_table("whole_table").get_batch()
        # Column expectations report SUMMARY (counts and a few failing rows' keys); query expectations return
        # their unexpected rows only in COMPLETE, so they are validated apart (their queries return few rows).
        queries = [e for e in suite.expectations if isinstance(e, gxe.UnexpectedRowsExpectation)]
        columns = [e for e in suite.expectations if not isinstance(e, gxe.UnexpectedRowsExpectation)]
        results = []
        for part, level in ((columns, "SUMMARY"), (queries, "COMPLETE")):
            if not part:
                continue
            result_format: dict[str, Any] = {"result_format": level, "partial_unexpected_count": SAMPLE_SIZE}
            if key_columns and level == "SUMMARY":
                result_format["unexpected_index_column_names"] = list(key_columns)
            validation = batch.validate(gx.ExpectationSuite(name=f"{suite.name}:{level}", expectations=part),
                                        result_format=result_format)
            results += validation.results
        row_count = _row_count(self.datasource, schema, table)
        failed = [_failure(result, key_columns) for result in results if not result.success]
        return GateResult(success=not failed, evaluated=len(results), failed=failed,
                          table=f"{schema}.{table}", row_count=row_count)

    def table_exists(self, table: str) -> bool:
        query = sa.text("SELECT count(*) FROM information_schema.tables WHERE table_schema = :s AND table_name = :t")
        params = {"s": self.schema, "t": table}
        engine = self.datasource.get_execution_engine()
        connection = getattr(engine, "_connection", None)
        if connection is not None:
            return bool(connection.execute(query, params).scalar())
        with engine.engine.connect() as conn:
            return bool(conn.execute(query, params).scalar())


def _row_count(datasource: Any, schema: str, table: str) -> int:
    engine = datasource.get_execution_engine()
    connection = getattr(engine, "_connection", None)
    query = sa.text(f'SELECT count(*) FROM "{schema}"."{table}"')
    if connection is not None:
        return int(connection.execute(query).scalar())
    with engine.engine.connect() as conn:
        return int(conn.execute(query).scalar())


def _release_connections(datasource: Any) -> None:
    """Close the execution engine's persisted connection and dispose every engine GX opened."""
    execution_engine = datasource.execution_engine
    if execution_engine is not None:
        connection = getattr(execution_engine, "_connection", None)
        if connection is not None:
            connection.close()
            execution_engine._connection = None
        execution_engine.engine.dispose()
    engine = getattr(datasource, "_engine", None)  # the one GX tests the connection with
    if engine is not None:
        engine.dispose()


def _failure(result: Any, key_columns: list[str] | tuple[str, ...] = ()) -> FailedExpectation:
    config = result.expectation_config
    kwargs = config.kwargs
    column = kwargs.get("column")
    if column is None and kwargs.get("column_list"):
        column = ", ".join(kwargs["column_list"])
    res = result.result or {}
    count = res.get("unexpected_count")
    rows = (res.get("details") or {}).get("unexpected_rows") if isinstance(res.get("details"), dict) else None
    if rows is not None and count is None:
        count = res.get("observed_value")
    details = _details(result)
    if config.description:  # query expectations say what they check only in their description
        details = f"{config.description}: {details}"
    return FailedExpectation(name=config.type, column=column, details=details,
                             unexpected_count=int(count) if count is not None else None,
                             sample_keys=_sample_keys(res, rows, key_columns))


def _sample_keys(res: dict, rows: list | None, key_columns: list[str] | tuple[str, ...]) -> list[str]:
    """Keys of failing rows: from GX's index list (column expectations) or the unexpected rows' key columns
    (query expectations; the query's first column when it returns none of the keys)."""
    indexed = res.get("partial_unexpected_index_list") or []
    candidates = [row for row in indexed if isinstance(row, dict)]
    if not candidates and rows:
        candidates = [row for row in rows if isinstance(row, dict)]
    if not candidates and not key_columns and res.get("partial_unexpected_list"):
        return [str(v) for v in res["partial_unexpected_list"][:SAMPLE_SIZE]]
    keys: list[str] = []
    for row in candidates[:SAMPLE_SIZE]:
        present = [c for c in key_columns if c in row] or list(row)[:1]
        keys.append("|".join(str(row[c]) for c in present))
    return keys


def _details(result: Any) -> str:
    info = result.exception_info or {}
    if info.get("raised_exception"):
        return f"error: {info.get('exception_message')}"
    for nested in info.values():  # keyed by metric when several metrics raised
        if isinstance(nested, dict) and nested.get("raised_exception"):
            return f"error: {nested.get('exception_message')}"
    res = result.result or {}
    parts = []
    if "observed_value" in res:
        parts.append(f"observed {res['observed_value']!r}")
    if res.get("unexpected_count"):
        parts.append(f"{res['unexpected_count']} unexpected rows")
    sample = res.get("partial_unexpected_list")
    if sample:
        parts.append(f"e.g. {json.dumps(sample[:5], default=str)}")
    return ", ".join(parts) or "failed"
