"""Write-audit-publish, the publish half: copy gated warehouse tables to where dashboards read them.

Dashboards never read the tables dbt writes. After the quality gate passes, `publish()` copies the named
tables into a *published snapshot*:

* DuckDB: a separate file `published_dir/reporting.duckdb`, built under a temporary name and swapped in
  with `os.replace`, so a reader sees either the old snapshot or the new one, never a half-written file
  (a reader that already holds the old file keeps reading it). `published_dir/status.json` records the
  latest attempt, so a gate failure can be reported without touching the last good snapshot.
* PostgreSQL: schema `published` in the warehouse database. The new tables are built in a staging schema
  (from one REPEATABLE READ view of the warehouse), given the readers' grants and row-level-security policies
  (ez360.core.published_access), then swapped in by renaming the schemas, all in ONE transaction: readers see
  the old schema or the new one, never a mix and never a table without its policies.

Both keep `published.publish_log(run_id, published_at, status, tables, row_counts, detail)`:
`status` is "published" or "gate_failed"; `tables` and `row_counts` are JSON text; `detail` is JSON text.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import psycopg2
from psycopg2 import sql

from ez360.core import published_access as access
from ez360.core.published import (
    LOG_TABLE,
    SNAPSHOT_NAME,
    STATUS_GATE_FAILED,
    STATUS_NAME,
    STATUS_PUBLISHED,
    read_status_file,
    snapshot_path,
    status_path,
)
from ez360.core.warehouse import PUBLISHED_SCHEMA, Warehouse

LOCK_NAME = ".publish.lock"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")


class PublishError(RuntimeError):
    """Publishing failed; the previously published snapshot/tables are unchanged."""


@dataclass(frozen=True)
class PublishResult:
    run_id: str
    published_at: datetime
    row_counts: dict[str, int] = field(default_factory=dict)
    location: str = ""


def publish(warehouse: Warehouse, published_dir: Path, tables: list[str], run_id: str) -> PublishResult:
    """Copy `tables` ("schema.table" in the warehouse) into the published snapshot, all or nothing."""
    if not run_id:
        raise ValueError("run_id must not be empty")
    parsed = _parse_tables(tables)
    if warehouse.kind == "duckdb":
        return _publish_duckdb(warehouse, Path(published_dir), parsed, run_id)
    if warehouse.kind == "postgres":
        return _publish_postgres(warehouse, parsed, run_id)
    raise ValueError(f"unsupported warehouse kind {warehouse.kind!r}")


def record_gate_failure(warehouse: Warehouse, published_dir: Path, run_id: str, failed_checks: list[str]) -> None:
    """Record that `run_id` failed its quality gate; the last published data stays as it is."""
    if not run_id:
        raise ValueError("run_id must not be empty")
    checks = [str(c) for c in failed_checks]
    now = datetime.now(UTC)
    if warehouse.kind == "duckdb":
        published_dir = Path(published_dir)
        published_dir.mkdir(parents=True, exist_ok=True)
        with _dir_lock(published_dir):
            _write_status(published_dir, run_id, now, STATUS_GATE_FAILED, checks)
        return
    if warehouse.kind == "postgres":
        with _pg_transaction(warehouse) as cur:
            _pg_prepare_schema(cur)
            cur.execute(
                sql.SQL(
                    "INSERT INTO {}.{} (run_id, published_at, status, tables, row_counts, detail)"
                    " VALUES (%s, %s, %s, NULL, NULL, %s)"
                ).format(sql.Identifier(PUBLISHED_SCHEMA), sql.Identifier(LOG_TABLE)),
                (run_id, now, STATUS_GATE_FAILED, json.dumps({"failed_checks": checks})),
            )
        return
    raise ValueError(f"unsupported warehouse kind {warehouse.kind!r}")


# --------------------------------------------------------------------------------------------- helpers


def _parse_tables(tables: list[str]) -> list[tuple[str, str]]:
    if isinstance(tables, str) or not tables:
        raise ValueError("tables must be a non-empty list of 'schema.table' names")
    parsed: list[tuple[str, str]] = []
    seen: dict[str, str] = {}
    for name in tables:
        parts = name.split(".")
        if len(parts) != 2 or not all(_IDENTIFIER.match(p) for p in parts):
            raise ValueError(f"table {name!r} must be a plain 'schema.table' name")
        schema, table = parts
        if table == LOG_TABLE or table.endswith("__new"):
            raise ValueError(f"table name {table!r} is reserved in the published schema")
        if table in seen:
            raise ValueError(f"{seen[table]!r} and {name!r} would both be published as {PUBLISHED_SCHEMA}.{table}")
        seen[table] = name
        parsed.append((schema, table))
    return parsed


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _sql_string(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0].rstrip(".") if text else type(exc).__name__


def _safe_for_filename(run_id: str) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)[:80]


@contextmanager
def _dir_lock(published_dir: Path) -> Iterator[None]:
    """Serialise publishers and gate-failure writers on one published_dir (readers never lock)."""
    with open(published_dir / LOCK_NAME, "a+") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _write_status(published_dir: Path, run_id: str, at: datetime, status: str, failed_checks: list[str]) -> None:
    payload = {
        "last_attempt_run_id": run_id,
        "last_attempt_at": at.isoformat(),
        "last_attempt_status": status,
        "failed_checks": failed_checks,
    }
    target = status_path(published_dir)
    tmp = published_dir / f"{STATUS_NAME}.tmp-{os.getpid()}-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "w", encoding="utf-8") as handle:
            json.dump(payload, handle, indent=2)
            handle.write("\n")
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, target)
    finally:
        tmp.unlink(missing_ok=True)
    _fsync_dir(published_dir)


# --------------------------------------------------------------------------------------------- DuckDB


def _publish_duckdb(warehouse: Warehouse, published_dir: Path, tables: list[tuple[str, str]], run_id: str):
    if warehouse.path is None:
        raise ValueError("a DuckDB warehouse needs a file path")
    if not warehouse.path.exists():
        raise PublishError(f"publish of run {run_id} failed: the warehouse file {warehouse.path} does not exist")
    published_dir.mkdir(parents=True, exist_ok=True)
    final = snapshot_path(published_dir)
    tmp = published_dir / f"{SNAPSHOT_NAME}.tmp-{_safe_for_filename(run_id)}"
    tmp_wal = tmp.with_name(tmp.name + ".wal")

    with _dir_lock(published_dir):
        published_at = datetime.now(UTC)  # taken under the lock, so log order is publish order
        for leftover in (tmp, tmp_wal):
            leftover.unlink(missing_ok=True)
        try:
            row_counts = _build_duckdb_snapshot(warehouse.path, final, tmp, tables, run_id, published_at,
                                                read_status_file(published_dir))
            if tmp_wal.exists():  # DETACH checkpoints; a WAL left beside the file would not follow the rename
                raise PublishError(f"publish of run {run_id} failed: {tmp_wal} was not checkpointed")
            with open(tmp, "rb+") as handle:
                os.fsync(handle.fileno())
            os.replace(tmp, final)
            _fsync_dir(published_dir)
        except duckdb.Error as exc:
            raise PublishError(
                f"publish of run {run_id} failed: {_first_line(exc)}. The previous snapshot {final} is unchanged."
            ) from exc
        finally:
            for leftover in (tmp, tmp_wal):
                leftover.unlink(missing_ok=True)
        _write_status(published_dir, run_id, published_at, STATUS_PUBLISHED, [])
    return PublishResult(run_id=run_id, published_at=published_at, row_counts=row_counts, location=str(final))


def _build_duckdb_snapshot(
    warehouse_path: Path, previous: Path, tmp: Path, tables: list[tuple[str, str]], run_id: str,
    published_at: datetime, status: dict | None,
) -> dict[str, int]:
    pub = f"snap.{_quote(PUBLISHED_SCHEMA)}"
    log = f"{pub}.{_quote(LOG_TABLE)}"
    con = duckdb.connect()  # in-memory; the files are attached, the warehouse read-only
    try:
        con.execute(f"ATTACH {_sql_string(warehouse_path)} AS wh (READ_ONLY)")
        con.execute(f"ATTACH {_sql_string(tmp)} AS snap")
        if previous.exists():
            con.execute(f"ATTACH {_sql_string(previous)} AS prev (READ_ONLY)")
        con.execute("BEGIN")
        con.execute(f"CREATE SCHEMA {pub}")
        row_counts: dict[str, int] = {}
        for schema, table in tables:
            source = f"wh.{_quote(schema)}.{_quote(table)}"
            target = f"{pub}.{_quote(table)}"
            try:
                con.execute(f"CREATE TABLE {target} AS SELECT * FROM {source}")
            except duckdb.CatalogException as exc:
                raise PublishError(
                    f"publish of run {run_id} failed: table {schema}.{table} is not in the warehouse "
                    f"{warehouse_path} ({_first_line(exc)}). The previous snapshot {previous} is unchanged."
                ) from exc
            row_counts[f"{schema}.{table}"] = con.execute(f"SELECT count(*) FROM {target}").fetchone()[0]
        con.execute(
            f"CREATE TABLE {log} (run_id VARCHAR NOT NULL, published_at TIMESTAMPTZ NOT NULL,"
            " status VARCHAR NOT NULL, tables VARCHAR, row_counts VARCHAR, detail VARCHAR)"
        )
        known_runs: set[tuple[str, str]] = set()
        if previous.exists():
            has_log = con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE database_name = 'prev' AND schema_name = ?"
                " AND table_name = ?", [PUBLISHED_SCHEMA, LOG_TABLE],
            ).fetchone()[0]
            if has_log:
                con.execute(
                    f"INSERT INTO {log} SELECT run_id, published_at, status, tables, row_counts, detail"
                    f" FROM prev.{_quote(PUBLISHED_SCHEMA)}.{_quote(LOG_TABLE)}"
                )
                known_runs = {(r, s) for r, s in con.execute(f"SELECT run_id, status FROM {log}").fetchall()}
        if status and status.get("last_attempt_status") == STATUS_GATE_FAILED:
            # Keep gate failures recorded in status.json in the snapshot's history too.
            failed_run = str(status.get("last_attempt_run_id", ""))
            if failed_run and (failed_run, STATUS_GATE_FAILED) not in known_runs:
                try:
                    failed_at = datetime.fromisoformat(str(status.get("last_attempt_at")))
                except ValueError:
                    failed_at = published_at
                con.execute(
                    f"INSERT INTO {log} VALUES (?, ?, ?, NULL, NULL, ?)",
                    [failed_run, failed_at, STATUS_GATE_FAILED,
                     json.dumps({"failed_checks": list(status.get("failed_checks") or [])})],
                )
        con.execute(
            f"INSERT INTO {log} VALUES (?, ?, ?, ?, ?, ?)",
            [run_id, published_at, STATUS_PUBLISHED, json.dumps([f"{s}.{t}" for s, t in tables]),
             json.dumps(row_counts), json.dumps({"source": str(warehouse_path)})],
        )
        con.execute("COMMIT")
        con.execute("DETACH snap")
        return row_counts
    finally:
        con.close()


# --------------------------------------------------------------------------------------------- PostgreSQL

STAGING_SCHEMA = f"{PUBLISHED_SCHEMA}__next"  # the new tables, built and secured before the swap
RETIRED_SCHEMA = f"{PUBLISHED_SCHEMA}__retired"  # the old schema between the renames and its drop
# The swap takes ACCESS EXCLUSIVE locks on the old tables. A reader holding one of them (a query in flight, or
# an open transaction) makes the swap wait; the wait is kept under PostgreSQL's deadlock_timeout (1 s), so when
# a reader and the swap wait on each other it is always the swap that gives way (rolled back to its savepoint
# and retried), never the reader that gets a deadlock error. Readers arriving meanwhile wait at most this long.
SWAP_LOCK_TIMEOUT_MS = 200
SWAP_PATIENCE_SECONDS = 300.0  # then the publish fails (nothing changed) rather than wait for readers forever


@contextmanager
def _pg_session(warehouse: Warehouse) -> Iterator[psycopg2.extensions.connection]:
    """A connection holding the publishers' advisory lock (session level, so taken BEFORE any transaction:
    a transaction's snapshot of the warehouse is then taken after any earlier publish has committed)."""
    conn = psycopg2.connect(warehouse.postgres_dsn(), connect_timeout=10)
    try:
        conn.autocommit = True
        with conn.cursor() as cur:
            cur.execute("SELECT pg_advisory_lock(hashtext('ez360.publish'))")
        yield conn
    finally:
        conn.close()  # also releases the advisory lock


@contextmanager
def _pg_transaction(warehouse: Warehouse) -> Iterator[psycopg2.extensions.cursor]:
    """One REPEATABLE READ transaction under the publishers' lock, committed on success, else rolled back."""
    with _pg_session(warehouse) as conn:
        conn.set_session(isolation_level="REPEATABLE READ", autocommit=False)
        with conn:
            with conn.cursor() as cur:
                yield cur


def _pg_prepare_schema(cur) -> None:
    cur.execute(sql.SQL("CREATE SCHEMA IF NOT EXISTS {}").format(sql.Identifier(PUBLISHED_SCHEMA)))
    cur.execute(
        sql.SQL(
            "CREATE TABLE IF NOT EXISTS {}.{} (run_id text NOT NULL, published_at timestamptz NOT NULL,"
            " status text NOT NULL, tables text, row_counts text, detail text)"
        ).format(sql.Identifier(PUBLISHED_SCHEMA), sql.Identifier(LOG_TABLE))
    )


def _publish_postgres(warehouse: Warehouse, tables: list[tuple[str, str]], run_id: str) -> PublishResult:
    """Build every table in a staging schema, secure it (grants, RLS), then swap the schemas; all in ONE
    transaction, so a failure or a kill at any point leaves the published schema as it was and no staging
    schema behind. The publish log moves into the new schema with the swap."""
    row_counts: dict[str, int] = {}
    staging = sql.Identifier(STAGING_SCHEMA)
    names = [table for _, table in tables]
    location = f"postgresql://{warehouse.host}:{warehouse.port}/{warehouse.database} (schema {PUBLISHED_SCHEMA})"
    try:
        with _pg_session(warehouse) as conn:
            with conn.cursor() as cur:  # autocommit: idempotent, short, and cluster-wide for the roles
                _pg_prepare_schema(cur)
                access.prepare_readers(cur, names)
                if not access.is_secured(cur, LOG_TABLE):  # the log moves with every swap: granted once
                    access.secure_schema(cur, PUBLISHED_SCHEMA, [LOG_TABLE])
            conn.set_session(isolation_level="REPEATABLE READ", autocommit=False)
            with conn, conn.cursor() as cur:
                cur.execute(sql.SQL("DROP SCHEMA IF EXISTS {} CASCADE").format(staging))
                cur.execute(sql.SQL("CREATE SCHEMA {}").format(staging))
                for schema, table in tables:
                    cur.execute(sql.SQL("CREATE TABLE {}.{} AS SELECT * FROM {}.{}").format(
                        staging, sql.Identifier(table), sql.Identifier(schema), sql.Identifier(table)))
                    cur.execute(sql.SQL("SELECT count(*) FROM {}.{}").format(staging, sql.Identifier(table)))
                    row_counts[f"{schema}.{table}"] = cur.fetchone()[0]
                access.secure_schema(cur, STAGING_SCHEMA, names)
                published_at = _pg_swap(cur, run_id, tables, row_counts, SWAP_PATIENCE_SECONDS)
    except psycopg2.Error as exc:
        raise PublishError(
            f"publish of run {run_id} failed: {_first_line(exc)}. Nothing was changed in {location}."
        ) from exc
    return PublishResult(run_id=run_id, published_at=published_at, row_counts=row_counts, location=location)


def _pg_swap(cur, run_id: str, tables: list[tuple[str, str]], row_counts: dict[str, int],
             patience: float) -> datetime:
    """Inside the publish transaction: lock the old tables, move the log over, rename the schemas, drop the old
    one. Retried from a savepoint while readers hold the old tables (see SWAP_LOCK_TIMEOUT_MS)."""
    pub, staging, retired = (sql.Identifier(s) for s in (PUBLISHED_SCHEMA, STAGING_SCHEMA, RETIRED_SCHEMA))
    deadline = time.monotonic() + patience
    pause = 0.05
    cur.execute("SAVEPOINT swap")
    while True:
        try:
            cur.execute(f"SET LOCAL lock_timeout = '{SWAP_LOCK_TIMEOUT_MS}ms'")
            cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s ORDER BY tablename",
                        (PUBLISHED_SCHEMA,))
            old = [sql.SQL("{}.{}").format(pub, sql.Identifier(t)) for (t,) in cur.fetchall()]
            # all at once, before anything changes: from here no reader can start on an old table
            cur.execute(sql.SQL("LOCK TABLE {} IN ACCESS EXCLUSIVE MODE").format(sql.SQL(", ").join(old)))
            published_at = datetime.now(UTC)  # under the locks, so log order is publish order
            cur.execute(sql.SQL("ALTER TABLE {}.{} SET SCHEMA {}").format(pub, sql.Identifier(LOG_TABLE), staging))
            cur.execute(
                sql.SQL("INSERT INTO {}.{} (run_id, published_at, status, tables, row_counts, detail)"
                        " VALUES (%s, %s, %s, %s, %s, NULL)").format(staging, sql.Identifier(LOG_TABLE)),
                (run_id, published_at, STATUS_PUBLISHED, json.dumps([f"{s}.{t}" for s, t in tables]),
                 json.dumps(row_counts)))
            cur.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(pub, retired))
            cur.execute(sql.SQL("ALTER SCHEMA {} RENAME TO {}").format(staging, pub))
            # No CASCADE: a view elsewhere built on a published table makes publishing fail loudly, not vanish.
            cur.execute("SELECT tablename FROM pg_tables WHERE schemaname = %s", (RETIRED_SCHEMA,))
            leftovers = [sql.SQL("{}.{}").format(retired, sql.Identifier(t)) for (t,) in cur.fetchall()]
            if leftovers:
                cur.execute(sql.SQL("DROP TABLE {}").format(sql.SQL(", ").join(leftovers)))
            cur.execute(sql.SQL("DROP SCHEMA {}").format(retired))
            cur.execute("RELEASE SAVEPOINT swap")
            return published_at
        except psycopg2.errors.LockNotAvailable:
            cur.execute("ROLLBACK TO SAVEPOINT swap")  # releases every lock taken since: readers go on
            if time.monotonic() + pause > deadline:
                raise PublishError(
                    f"publish of run {run_id} failed: readers kept the published tables busy for {patience:.0f} s "
                    "(a long query or an open transaction on them). Nothing was changed.") from None
            time.sleep(pause)  # give the readers that queued behind the swap their turn, then try again
            pause = min(pause * 2, 1.0)
