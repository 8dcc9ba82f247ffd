"""A reader querying the published tables in a loop while publishes swap them never errors and never sees two
runs mixed: DuckDB (snapshot file renamed over the old one) and PostgreSQL (schemas swapped in one transaction).
On PostgreSQL a reader holding the old tables (a query in flight, an open transaction) makes the swap wait, not
fail, and is never made to fail itself."""

from __future__ import annotations

import threading
import time

import psycopg2
import pytest

from ez360.core.published import open_snapshot, snapshot_path
from ez360.core.warehouse import Warehouse, parse_warehouse_url
from pipelines.publish import PublishError, publish
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


def _swap_waiting(dsn: str, timeout: float = 30) -> bool:
    """True once a publisher is in its swap (locking the old tables, or backing off to let readers on)."""
    deadline = time.monotonic() + timeout
    conn = psycopg2.connect(dsn)
    conn.autocommit = True
    try:
        with conn.cursor() as cur:
            while time.monotonic() < deadline:
                cur.execute("select count(*) from pg_stat_activity where datname = current_database() and "
                            "(query like 'LOCK TABLE%%' or query = 'ROLLBACK TO SAVEPOINT swap')")
                if cur.fetchone()[0]:
                    return True
                time.sleep(0.02)  # poll interval while waiting for the state
    finally:
        conn.close()
    return False


def _runs(cur) -> set[str]:
    cur.execute("select distinct run from published.fct_left union select distinct run from published.rpt_right")
    return {r for (r,) in cur.fetchall()}


@pytest.fixture
def pg_warehouse(postgres_url, tmp_path):
    warehouse = parse_warehouse_url(postgres_url)
    write_run(warehouse, "run-0", 100)
    publish(warehouse, tmp_path, TABLES, "run-0")
    write_run(warehouse, "run-1", 101)
    return warehouse, tmp_path


@pytest.mark.postgres
def test_a_reader_holding_the_old_tables_makes_the_swap_wait_and_never_errors(pg_warehouse):
    warehouse, published_dir = pg_warehouse
    dsn = warehouse.postgres_dsn()
    # a dashboard mid-transaction, and one arriving: a reader stuck behind the swap errors after 10 s, not hangs
    holder, queued = psycopg2.connect(dsn), psycopg2.connect(dsn, options="-c statement_timeout=10000")
    queued.autocommit = True
    published: list = []
    publisher = threading.Thread(target=lambda: published.append(publish(warehouse, published_dir, TABLES, "run-1")))
    try:
        with holder.cursor() as cur:
            cur.execute("select distinct run from published.fct_left")  # holds the old fct_left until commit
            assert cur.fetchall() == [("run-0",)]
            publisher.start()
            assert _swap_waiting(dsn)
            # the same transaction reads on, and a new reader's statement arrives while the swap wants the locks:
            # both are at most held up for a moment, and both see the old run whole
            assert _runs(cur) == {"run-0"}
            with queued.cursor() as other:
                assert _runs(other) == {"run-0"}
            assert publisher.is_alive() and not published  # the swap waits for the open transaction
        holder.commit()
        publisher.join(timeout=60)
        assert published and published[0].run_id == "run-1"
        with queued.cursor() as other:
            assert _runs(other) == {"run-1"}
            other.execute("select count(*) from information_schema.schemata where schema_name like 'published_%%'")
            assert other.fetchone() == (0,)  # no staging or retired schema left behind
    finally:
        holder.close()
        queued.close()
        publisher.join(timeout=60)


@pytest.mark.postgres
def test_a_swap_that_readers_keep_waiting_too_long_fails_and_changes_nothing(pg_warehouse, monkeypatch):
    import pipelines.publish as publishing

    warehouse, published_dir = pg_warehouse
    monkeypatch.setattr(publishing, "SWAP_PATIENCE_SECONDS", 0.5)
    holder = psycopg2.connect(warehouse.postgres_dsn())
    try:
        with holder.cursor() as cur:
            cur.execute("select count(*) from published.rpt_right")  # and never commits
            with pytest.raises(PublishError, match="run-1 failed: readers kept the published tables busy"):
                publish(warehouse, published_dir, TABLES, "run-1")
            assert _runs(cur) == {"run-0"}  # the reader is untouched
        holder.commit()
        with holder.cursor() as cur:
            assert _runs(cur) == {"run-0"}
            cur.execute("select run_id from published.publish_log")
            assert cur.fetchall() == [("run-0",)]
    finally:
        holder.close()


# Runs inside a reader's statement, after the statement has locked the tables it names: waits (up to 30 s) until
# a publisher is in its swap, so the statement is certainly in flight while the swap wants those tables.
WAIT_FOR_SWAP = """
create function public.wait_for_swap() returns boolean language plpgsql as $$
begin
  for i in 1..3000 loop
    perform pg_stat_clear_snapshot();  -- pg_stat_activity is otherwise read once per transaction
    if exists (select 1 from pg_stat_activity where datname = current_database()
               and (query like 'LOCK TABLE%' or query = 'ROLLBACK TO SAVEPOINT swap')) then return true; end if;
    perform pg_sleep(0.01);
  end loop;
  return false;
end $$"""


@pytest.mark.postgres
def test_a_statement_in_flight_during_the_swap_finishes_on_the_old_tables(pg_warehouse):
    warehouse, published_dir = pg_warehouse
    dsn = warehouse.postgres_dsn()
    with cursor(warehouse) as cur:
        cur.execute(WAIT_FOR_SWAP)
    answers, errors = [], []

    def long_read():  # names resolved and locked when planned: it must finish on the tables it started on
        conn = psycopg2.connect(dsn)
        conn.autocommit = True
        try:
            with conn.cursor() as cur:
                cur.execute("select distinct l.run, r.run, s.seen from published.fct_left l, published.rpt_right r, "
                            "(select public.wait_for_swap() as seen) s")
                answers.extend(cur.fetchall())
        except Exception as exc:  # noqa: BLE001 - every error is the finding
            errors.append(repr(exc))
        finally:
            conn.close()

    reader = threading.Thread(target=long_read)
    reader.start()
    try:
        with cursor(warehouse) as cur:
            while reader.is_alive():  # the statement is planned once it holds its lock on the old tables
                cur.execute("select count(*) from pg_locks where relation = 'published.rpt_right'::regclass "
                            "and granted and mode = 'AccessShareLock'")
                if cur.fetchone()[0]:
                    break
                time.sleep(0.005)  # poll interval while the reader starts
        result = publish(warehouse, published_dir, TABLES, "run-1")
    finally:
        reader.join(timeout=60)
    assert errors == [] and answers == [("run-0", "run-0", True)]  # old run, whole, and the swap did meet it
    assert result.run_id == "run-1"
