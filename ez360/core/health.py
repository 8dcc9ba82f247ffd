"""The data-health store: the publish log, per-source loads and gate results (shape: HEALTH_CONTRACT).

Written by the pipeline (its assets, checks and run-status sensors), read by `ez360 pipeline status` and the
dashboards. It never lives inside the published snapshot, so recording a failure never changes published
bytes:

* DuckDB warehouse: SQLite file `<published_dir>/health.sqlite` in WAL mode (readers never wait for the
  pipeline, which holds the DuckDB warehouse as its single writer).
* PostgreSQL warehouse: schema `pipeline_health` of the warehouse database.

A leaf of the shared core: imports no layer.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from ez360.core.warehouse import parse_warehouse_url

HEALTH_SCHEMA = "pipeline_health"
HEALTH_FILE = "health.sqlite"

# run statuses
RUNNING, PUBLISHED, PARTIAL, GATE_FAILED, FAILED, SUCCEEDED, CANCELED = (
    "running", "published", "partial", "gate_failed", "failed", "succeeded", "canceled")
FINAL_STATUSES = (PUBLISHED, PARTIAL, GATE_FAILED, FAILED, SUCCEEDED, CANCELED)

_JSON_COLUMNS = {"published_tables", "blocked_by", "failed_steps", "stage_seconds", "row_counts",
                 "quarantined_by_reason", "failures"}


def _tables(schema: str | None) -> tuple[sa.MetaData, sa.Table, sa.Table, sa.Table]:
    metadata = sa.MetaData(schema=schema)
    ts = sa.DateTime(timezone=True)
    runs = sa.Table(
        "pipeline_runs", metadata,
        sa.Column("run_id", sa.Text, primary_key=True),
        sa.Column("job_name", sa.Text),
        sa.Column("trigger", sa.Text),
        sa.Column("started_at", ts),
        sa.Column("finished_at", ts),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("published", sa.Boolean, nullable=False, default=False),
        sa.Column("published_at", ts),
        sa.Column("published_tables", sa.Text),
        sa.Column("blocked_by", sa.Text),
        sa.Column("failed_steps", sa.Text),
        sa.Column("stage_seconds", sa.Text),
        sa.Column("error", sa.Text),
    )
    loads = sa.Table(
        "source_loads", metadata,
        sa.Column("run_id", sa.Text, primary_key=True),
        sa.Column("source", sa.Text, primary_key=True),
        sa.Column("status", sa.Text, nullable=False),
        sa.Column("started_at", ts),
        sa.Column("finished_at", ts),
        sa.Column("rows_loaded", sa.BigInteger),
        sa.Column("row_counts", sa.Text),
        sa.Column("quarantined", sa.BigInteger),
        sa.Column("quarantined_by_reason", sa.Text),
        sa.Column("error", sa.Text),
    )
    gates = sa.Table(
        "gate_results", metadata,
        sa.Column("run_id", sa.Text, primary_key=True),
        sa.Column("check_name", sa.Text, primary_key=True),
        sa.Column("table_name", sa.Text, nullable=False),
        sa.Column("layer", sa.Text, nullable=False),
        sa.Column("passed", sa.Boolean, nullable=False),
        sa.Column("evaluated", sa.Integer),
        sa.Column("failed_count", sa.Integer),
        sa.Column("row_count", sa.BigInteger),
        sa.Column("failures", sa.Text),
        sa.Column("checked_at", ts),
    )
    return metadata, runs, loads, gates


def now() -> datetime:
    return datetime.now(UTC)


class HealthStore:
    def __init__(self, url: str, schema: str | None):
        self.url = url
        self.schema = schema
        self._metadata, self.runs, self.loads, self.gates = _tables(schema)
        if url.startswith("sqlite"):
            self.engine = sa.create_engine(url, connect_args={"timeout": 30})
            sa.event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = sa.create_engine(url, pool_pre_ping=True)
        self._ready = False

    @classmethod
    def for_warehouse(cls, warehouse_url: str, published_dir: Path) -> HealthStore:
        warehouse = parse_warehouse_url(warehouse_url)
        if warehouse.kind == "duckdb":
            Path(published_dir).mkdir(parents=True, exist_ok=True)
            return cls(f"sqlite:///{Path(published_dir) / HEALTH_FILE}", None)
        return cls(warehouse.sqlalchemy_url(), HEALTH_SCHEMA)

    @classmethod
    def from_settings(cls, settings: Any) -> HealthStore:
        return cls.for_warehouse(settings.warehouse_url, settings.published_dir)

    def close(self) -> None:
        self.engine.dispose()

    # ------------------------------------------------------------------------------------------- writing

    def ensure(self) -> None:
        if self._ready:
            return
        with self.engine.begin() as conn:
            if self.schema:
                conn.execute(sa.text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            self._metadata.create_all(conn)
        self._ready = True

    def upsert_run(self, run_id: str, **values: Any) -> None:
        """Create or update a run's row; only the given columns change."""
        self._upsert(self.runs, {"run_id": run_id}, values, insert_defaults={"status": RUNNING, "published": False})

    def record_source_load(self, run_id: str, source: str, **values: Any) -> None:
        self._upsert(self.loads, {"run_id": run_id, "source": source}, values)

    def record_gate(self, run_id: str, check_name: str, **values: Any) -> None:
        self._upsert(self.gates, {"run_id": run_id, "check_name": check_name}, values)

    def _upsert(self, table: sa.Table, key: dict, values: dict, insert_defaults: dict | None = None) -> None:
        """INSERT .. ON CONFLICT DO UPDATE (SQLite and PostgreSQL both have it): safe between processes."""
        self.ensure()
        encoded = {k: _encode(k, v) for k, v in values.items()}
        if self.schema is None:
            from sqlalchemy.dialects.sqlite import insert
        else:
            from sqlalchemy.dialects.postgresql import insert
        statement = insert(table).values(**{**(insert_defaults or {}), **key, **encoded})
        if encoded:
            statement = statement.on_conflict_do_update(index_elements=list(key), set_=encoded)
        else:
            statement = statement.on_conflict_do_nothing(index_elements=list(key))
        with self.engine.begin() as conn:
            conn.execute(statement)

    # ------------------------------------------------------------------------------------------- reading

    def _rows(self, query) -> list[dict]:
        try:
            with self.engine.connect() as conn:
                return [_decode(dict(row._mapping)) for row in conn.execute(query)]
        except sa.exc.OperationalError:
            return []
        except sa.exc.ProgrammingError:  # PostgreSQL: the schema does not exist yet
            return []

    def run(self, run_id: str) -> dict | None:
        rows = self._rows(sa.select(self.runs).where(self.runs.c.run_id == run_id))
        return rows[0] if rows else None

    def latest_runs(self, limit: int = 20) -> list[dict]:
        return self._rows(sa.select(self.runs).order_by(self.runs.c.started_at.desc().nulls_last()).limit(limit))

    def last_published(self) -> dict | None:
        rows = self._rows(sa.select(self.runs).where(self.runs.c.published.is_(True))
                          .order_by(self.runs.c.published_at.desc()).limit(1))
        return rows[0] if rows else None

    def source_loads(self, run_id: str) -> list[dict]:
        return self._rows(sa.select(self.loads).where(self.loads.c.run_id == run_id).order_by(self.loads.c.source))

    def source_status(self) -> list[dict]:
        """Per source: last successful load and last error (each source's freshness)."""
        loads = self._rows(sa.select(self.loads).order_by(self.loads.c.finished_at))
        out: dict[str, dict] = {}
        for load in loads:
            entry = out.setdefault(load["source"], {
                "source": load["source"], "last_success_at": None, "last_success_run_id": None,
                "last_rows_loaded": None, "last_quarantined": None, "last_error_at": None, "last_error": None})
            if load["status"] in ("success", "partial"):  # partial: loaded, but some part failed (named)
                entry.update(last_success_at=load["finished_at"], last_success_run_id=load["run_id"],
                             last_rows_loaded=load["rows_loaded"], last_quarantined=load["quarantined"])
                if load["status"] == "partial":
                    entry.update(last_error_at=load["finished_at"], last_error=load["error"])
            else:
                entry.update(last_error_at=load["finished_at"], last_error=load["error"])
        return [out[s] for s in sorted(out)]

    def gate_results(self, run_id: str | None = None) -> list[dict]:
        if run_id is None:
            latest = self._rows(sa.select(self.gates.c.run_id).order_by(self.gates.c.checked_at.desc()).limit(1))
            if not latest:
                return []
            run_id = latest[0]["run_id"]
        return self._rows(sa.select(self.gates).where(self.gates.c.run_id == run_id)
                          .order_by(self.gates.c.layer.desc(), self.gates.c.table_name))

    def failed_gates(self, run_id: str | None = None) -> list[dict]:
        return [g for g in self.gate_results(run_id) if not g["passed"]]

    def latest_gates(self) -> dict[str, dict]:
        """The latest result of every gate ever run, by check name."""
        rows = self._rows(sa.select(self.gates).order_by(self.gates.c.checked_at))
        return {row["check_name"]: row for row in rows}

    def publish_blockers(self, check_names: list[str], sources: list[str]) -> list[str]:
        """Why publishing now would show unaudited data: a gate whose latest result failed (or that never ran),
        a source whose latest load failed. Empty = clear to publish."""
        latest = self.latest_gates()
        blockers = []
        for name in check_names:
            row = latest.get(name)
            if row is None:
                blockers.append(f"gate {name} has never run")
            elif not row["passed"]:
                blockers.append(f"gate {name} on {row['table_name']} failed (run {row['run_id']})")
        for status in self.source_status():
            if status["source"] in sources and status["last_error_at"] and (
                    status["last_success_at"] is None or status["last_error_at"] > status["last_success_at"]):
                blockers.append(f"source {status['source']} failed: {status['last_error']}")
        return blockers

    def previous_row_count(self, table_name: str, before_run: str) -> int | None:
        """Row count of `table_name` at the last gate run that passed, other than `before_run`."""
        rows = self._rows(sa.select(self.gates.c.row_count).where(
            self.gates.c.table_name == table_name, self.gates.c.passed.is_(True),
            self.gates.c.run_id != before_run, self.gates.c.row_count.is_not(None),
        ).order_by(self.gates.c.checked_at.desc()).limit(1))
        return int(rows[0]["row_count"]) if rows else None


def _sqlite_pragmas(dbapi_connection, _record) -> None:
    cursor = dbapi_connection.cursor()
    try:
        cursor.execute("PRAGMA journal_mode=WAL")
        cursor.execute("PRAGMA busy_timeout=30000")
    finally:
        cursor.close()


def _encode(column: str, value: Any) -> Any:
    if column in _JSON_COLUMNS and value is not None:
        return json.dumps(value, default=str, sort_keys=True)
    return value


def _decode(row: dict) -> dict:
    for column, value in row.items():
        if column in _JSON_COLUMNS and isinstance(value, str):
            row[column] = json.loads(value)
        elif isinstance(value, datetime) and value.tzinfo is None:
            row[column] = value.replace(tzinfo=UTC)  # SQLite keeps no zone; everything is written in UTC
    return row
