"""Where published (audited) reporting data lives, shared by the publisher (pipelines) and readers (apps).

DuckDB: a snapshot file `reporting.duckdb` plus `status.json` (the latest attempt) in the published
directory. PostgreSQL: schema `published` of the warehouse with a `publish_log` table.
"""

from __future__ import annotations

import json
from pathlib import Path

import duckdb

SNAPSHOT_NAME = "reporting.duckdb"
STATUS_NAME = "status.json"
LOG_TABLE = "publish_log"
STATUS_PUBLISHED = "published"
STATUS_GATE_FAILED = "gate_failed"


def snapshot_path(published_dir: Path) -> Path:
    return Path(published_dir) / SNAPSHOT_NAME


def status_path(published_dir: Path) -> Path:
    return Path(published_dir) / STATUS_NAME


def open_snapshot(path: Path) -> duckdb.DuckDBPyConnection:
    """A read-only connection to a published snapshot, to be closed after use.

    The file is ATTACHed to a fresh in-memory database rather than opened with duckdb.connect(path):
    duckdb.connect shares one cached instance per path inside a process, so while any connection to the
    old file is still open, a new one would keep seeing the snapshot that was already replaced.
    """
    con = duckdb.connect()
    try:
        con.execute(f"ATTACH {_sql_string(path)} AS snapshot (READ_ONLY)")
        con.execute("USE snapshot")
    except BaseException:
        con.close()
        raise
    return con


def read_status_file(published_dir: Path) -> dict | None:
    """The latest attempt recorded in status.json, or None if there is none (or it is unreadable)."""
    try:
        data = json.loads(status_path(published_dir).read_text(encoding="utf-8"))
    except (FileNotFoundError, ValueError):
        return None
    return data if isinstance(data, dict) else None


def _sql_string(value: object) -> str:
    return "'" + str(value).replace("'", "''") + "'"
