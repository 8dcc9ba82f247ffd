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
from great_expectations.data_context.types.base import ProgressBarsConfig

from quality.gx_duckdb import enable_duckdb, use_default_schema


@dataclass(frozen=True)
class FailedExpectation:
    name: str  # expectation type, e.g. "expect_column_values_to_be_between"
    column: str | None  # the column (or "a, b" for compound columns); None for table-level expectations
    details: str  # what was observed, e.g. unexpected values, or the error GX raised


@dataclass
class GateResult:
    success: bool
    evaluated: int
    failed: list[FailedExpectation] = field(default_factory=list)
    table: str = ""

    def summary(self) -> str:
        where = f" on {self.table}" if self.table else ""
        if self.success:
            return f"quality gate passed{where}: {self.evaluated} expectations met"
        lines = [f"quality gate FAILED{where}: {len(self.failed)} of {self.evaluated} expectations failed"]
        for failure in self.failed:
            column = f" [{failure.column}]" if failure.column else ""
            lines.append(f"- {failure.name}{column}: {failure.details}")
        return "\n".join(lines)


def run_suite(sqlalchemy_url: str, schema: str, table: str, suite: gx.ExpectationSuite) -> GateResult:
    """Validate `suite` against the whole of `schema.table` at `sqlalchemy_url`
    (`duckdb:///path` or `postgresql+psycopg2://...`, as Warehouse.sqlalchemy_url() gives).

    Failed expectations are reported in the result; a table that does not exist, or a database that
    cannot be reached, raises (GX's TestConnectionError). Connections are released either way."""
    is_duckdb = sqlalchemy_url.startswith("duckdb")
    if is_duckdb:
        enable_duckdb()
    context = gx.get_context(mode="ephemeral")
    context.variables.progress_bars = ProgressBarsConfig(globally=False)
    name = f"warehouse_{uuid.uuid4().hex[:8]}"
    if is_duckdb:
        datasource = context.data_sources.add_sql(name=name, connection_string=sqlalchemy_url)
    else:
        datasource = context.data_sources.add_postgres(name=name, connection_string=sqlalchemy_url)
    try:
        if is_duckdb:
            use_default_schema(datasource.get_execution_engine().engine, schema)
        with warnings.catch_warnings():
            # GX would rather have the schema in the connection configuration, which DuckDB cannot take
            # (its `schema` setting is per connection, and duckdb_engine applies config globally).
            warnings.filterwarnings("ignore", message="`schema_name` is deprecated", category=DeprecationWarning)
            asset = datasource.add_table_asset(name=f"{schema}.{table}", table_name=table, schema_name=schema)
        batch = asset.add_batch_definition_whole_table("whole_table").get_batch()
        validation = batch.validate(suite)
    finally:
        _release_connections(datasource)
    failed = [_failure(result) for result in validation.results if not result.success]
    return GateResult(success=bool(validation.success), evaluated=len(validation.results), failed=failed,
                      table=f"{schema}.{table}")


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


def _failure(result: Any) -> FailedExpectation:
    config = result.expectation_config
    kwargs = config.kwargs
    column = kwargs.get("column")
    if column is None and kwargs.get("column_list"):
        column = ", ".join(kwargs["column_list"])
    return FailedExpectation(name=config.type, column=column, details=_details(result))


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
