"""One demo universe, ingested and built by dbt, per warehouse engine and test session.

    world = build_warehouse_world(base_dir, "duckdb")           # or "postgres" with a database URL
    world.query("select * from marts.fct_reconciliation_items")  # -> list of dicts
    world.ground_truth / world.stripe / world.erpnext           # the sandbox files as JSON
    world.ops_query("select ... from invoices")                  # the ops DB (SQLite), as the demo wrote it

Real at every step: `ez360 seed` (seed 42, scale 1) writes the ops DB and the sandbox files, the sandboxes
serve them over HTTP, the ingest lands raw_ops / raw_stripe / raw_erpnext / raw_files, and `dbt build` runs
every model and test. The session fixtures in tests/conftest.py (`warehouse_world_duckdb`,
`warehouse_world_postgres`, `warehouse_world`) build each engine's world once; tests only read it.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from ez360.core.settings import Settings
from ez360.core.warehouse import parse_warehouse_url

PROJECT_DIR = Path(__file__).resolve().parents[2] / "dbt_project"
SEED, SCALE = 42, 1


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@contextmanager
def _environment(values: dict[str, str]) -> Iterator[None]:
    """Set environment variables for the duration (session fixtures cannot use monkeypatch), then restore."""
    saved = {name: os.environ.get(name) for name in values}
    os.environ.update(values)
    try:
        yield
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value


@dataclass
class WarehouseWorld:
    engine: str
    settings: Settings
    warehouse_url: str
    dbt_statuses: dict[str, str]
    ground_truth: dict
    stripe: dict
    erpnext: dict
    dbt_env: dict[str, str] = field(default_factory=dict)

    def query(self, sql: str, params: dict | None = None) -> list[dict[str, Any]]:
        engine = create_engine(parse_warehouse_url(self.warehouse_url).sqlalchemy_url(), poolclass=NullPool)
        try:
            with engine.connect() as conn:
                return [dict(row) for row in conn.execute(text(sql), params or {}).mappings()]
        finally:
            engine.dispose()

    def ops_query(self, sql: str, params: dict | None = None) -> list[dict[str, Any]]:
        engine = create_engine(self.settings.database_url, poolclass=NullPool)
        try:
            with engine.connect() as conn:
                return [dict(row) for row in conn.execute(text(sql), params or {}).mappings()]
        finally:
            engine.dispose()

    def dbt(self, *args: str):
        """Run a dbt command in-process against this world's warehouse (e.g. a full refresh)."""
        from tests.support.dbt_inprocess import run_dbt

        with _environment(self.dbt_env):
            return run_dbt([*args, "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
                            "--target-path", str(self.settings.var_dir / "dbt_target"), "--quiet"])


def build_warehouse_world(base_dir: Path, engine: str, warehouse_url: str = "") -> WarehouseWorld:
    """Seed, serve, ingest and `dbt build` one demo world under base_dir (warehouse: DuckDB file, or the
    given PostgreSQL URL)."""
    from ez360.cli.app import sandboxes_running
    from ez360.demo.generate import generate
    from ingest.runner import run_source
    from tests.support.dbt_inprocess import run_dbt

    var_dir = base_dir / "var"
    var_dir.mkdir(parents=True, exist_ok=True)
    stripe_port, erp_port = _free_port(), _free_port()
    env = {
        "EZ360_VAR_DIR": str(var_dir), "EZ360_STRIPE_SANDBOX_PORT": str(stripe_port),
        "EZ360_STRIPE_API_BASE": f"http://127.0.0.1:{stripe_port}", "EZ360_ERPNEXT_SANDBOX_PORT": str(erp_port),
        "EZ360_ERPNEXT_URL": f"http://127.0.0.1:{erp_port}", "EZ360_DATABASE_URL": "",
        "EZ360_WAREHOUSE_URL": warehouse_url, "EZ360_DAGSTER_STORAGE_URL": "",
    }
    with _environment(env):
        settings = Settings(_env_file=None)
        result = generate(settings, SEED, SCALE)
        with sandboxes_running(settings):
            for source in ("ops", "stripe", "erpnext", "files"):
                run_source(source, settings)
        dbt_env = {**parse_warehouse_url(settings.warehouse_url).dbt_env(),
                   "DBT_LOG_PATH": str(var_dir / "dbt_logs"), "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    world = WarehouseWorld(
        engine=engine, settings=settings, warehouse_url=settings.warehouse_url, dbt_statuses={},
        ground_truth=json.loads(result.files["ground_truth"].read_text(), parse_float=Decimal),
        stripe=json.loads(result.files["stripe"].read_text(), parse_float=Decimal),
        erpnext=json.loads(result.files["erpnext"].read_text(), parse_float=Decimal), dbt_env=dbt_env,
    )
    with _environment(dbt_env):
        run = run_dbt(["build", "--project-dir", str(PROJECT_DIR), "--profiles-dir", str(PROJECT_DIR),
                       "--target-path", str(var_dir / "dbt_target"), "--quiet"])
    if run.exception is not None:
        raise RuntimeError(f"dbt crashed building the {engine} warehouse world: {run.exception}")
    world.dbt_statuses = {r.node.name: str(r.status) for r in run.result.results}
    return world


def as_date(value) -> date:
    """A date column as the engine returns it (DuckDB: date or datetime; PostgreSQL through text: a string)."""
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, str):
        return date.fromisoformat(value[:10])
    return value
