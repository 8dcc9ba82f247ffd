"""dbt in the test's own process (dbtRunner), closing the DuckDB warehouse when it is done.

The DuckDB profile keeps the database open for a whole dbt invocation (`keep_open: true`: opening the file once
per node made a full build 2.4x slower). A dbt process, as the pipeline runs it, closes the file at exit; in this
process dbt-duckdb would keep holding it, and the test's own readers (and the next writer) could not open it.
"""

from __future__ import annotations

from dbt.cli.main import dbtRunner, dbtRunnerResult


def run_dbt(args: list[str]) -> dbtRunnerResult:
    result = dbtRunner().invoke(args)
    from dbt.adapters.duckdb.connections import DuckDBConnectionManager

    environment = DuckDBConnectionManager._ENV  # dbt-duckdb's one environment per process; reopens on demand
    if environment is not None:
        environment.close()
    return result
