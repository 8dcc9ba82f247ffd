"""A reader querying the published tables in a loop while publishes swap them never errors and never sees two
runs mixed: DuckDB (snapshot file renamed over the old one) and PostgreSQL (one transaction)."""

from __future__ import annotations

import threading

import psycopg2
import pytest

from ez360.core.published import open_snapshot, snapshot_path
from ez360.core.warehouse import Warehouse, parse_warehouse_url
from pipelines.publish import publish
from tests.support.raw_ops_fixture import cursor

TABLES = ["marts.fct_left", "marts.rpt_right"]
PUBLISHES = 12


def write_run(warehouse: Warehouse, run: str, rows: int) -> None:
    """Both marts as one dbt run leaves them: every row carries the run's name."""
    with cursor(warehouse) as cur:
        cur.execute("create schema if not exists marts")
        for table in TABLES:
            cur.execute(f"drop table if exists {table}")
            cur.execute(f"create table {table} as select '{run}' as run, n from "
                        + (f"range({rows}) r(n)" if warehouse.kind == "duckdb" else f"generate_series(1, {rows}) n"))


def read_duckdb(published_dir) -> set[str]:
    con = open_snapshot(snapshot_path(published_dir))
    try:  # one connection, one attached file: both tables from the same snapshot
        return {r for (r,) in con.execute("select distinct run from published.fct_left union "
                                          "select distinct run from published.rpt_right").fetchall()}
    finally:
        con.close()


def read_postgres(dsn: str):
    conn = psycopg2.connect(dsn)
    conn.autocommit = True

    def read() -> set[str]:
        with conn.cursor() as cur:  # one statement: one snapshot
            cur.execute("select distinct run from published.fct_left union "
                        "select distinct run from published.rpt_right")
            return {r for (r,) in cur.fetchall()}

    return read, conn.close


def hammer(read, stop: threading.Event, seen: list, errors: list) -> None:
    while not stop.is_set():
        try:
            seen.append(read())
        except Exception as exc:  # noqa: BLE001 - every error is the finding
            errors.append(repr(exc))


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_a_reader_in_a_loop_never_errors_and_never_sees_two_runs_mixed(engine, tmp_path, request):
    if engine == "duckdb":
        warehouse = parse_warehouse_url(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    else:
        warehouse = parse_warehouse_url(request.getfixturevalue("postgres_url"))
    published_dir = tmp_path / "published"
    write_run(warehouse, "run-0", 2000)
    publish(warehouse, published_dir, TABLES, "run-0")
    if engine == "duckdb":
        read, close = (lambda: read_duckdb(published_dir)), (lambda: None)
    else:
        read, close = read_postgres(warehouse.postgres_dsn())

    stop, seen, errors = threading.Event(), [], []
    reader = threading.Thread(target=hammer, args=(read, stop, seen, errors))
    reader.start()
    try:
        for n in range(1, PUBLISHES + 1):
            write_run(warehouse, f"run-{n}", 2000 + n)
            publish(warehouse, published_dir, TABLES, f"run-{n}")
    finally:
        stop.set()
        reader.join(timeout=60)
        close()

    assert errors == []
    assert all(len(runs) == 1 for runs in seen), [r for r in seen if len(r) != 1][:3]
    assert len({next(iter(r)) for r in seen}) > 1  # the reader saw publishes happen while it read
