from __future__ import annotations

import pytest

from operational_api.db import schema
from tests.support.postgres import temporary_database

# Every test that must hold on both ops DB engines takes `ops_db` (migrated) or `empty_ops_db` (no schema yet).
ENGINES = ["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)]


@pytest.fixture
def postgres_url():
    """URL of a fresh, empty PostgreSQL database, dropped after the test."""
    with temporary_database() as url:
        yield url


@pytest.fixture(params=ENGINES)
def empty_ops_db(request, tmp_path) -> str:
    """An empty ops DB on each engine: a SQLite file, or a fresh PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'ops.sqlite3'}"
    return request.getfixturevalue("postgres_url")


@pytest.fixture
def ops_db(empty_ops_db) -> str:
    """The ops DB on each engine, migrated to head."""
    schema.upgrade(empty_ops_db)
    return empty_ops_db


# --- One demo universe per warehouse engine and session, ingested and built by dbt (warehouse issue 10).
# Build once, read in many tests: analytics, orchestration and dashboards tests may reuse these.
@pytest.fixture(scope="session")
def warehouse_world_duckdb(tmp_path_factory):
    from tests.support.warehouse_world import build_warehouse_world

    return build_warehouse_world(tmp_path_factory.mktemp("warehouse_world_duckdb"), "duckdb")


@pytest.fixture(scope="session")
def warehouse_world_postgres(tmp_path_factory):
    from tests.support.warehouse_world import build_warehouse_world

    with temporary_database("ez360_wh_world") as url:
        yield build_warehouse_world(tmp_path_factory.mktemp("warehouse_world_postgres"), "postgres", url)


@pytest.fixture(scope="session", params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse_world(request):
    """The demo world's warehouse on each engine (DuckDB, PostgreSQL), built once per session."""
    return request.getfixturevalue(f"warehouse_world_{request.param}")


# --- Parallel runs (bin/test runs pytest-xdist with `--dist loadgroup`, one worker per core).
# A worker builds its own copy of every session fixture it uses, and a module's fixtures on every worker that
# runs one of its tests. So each module runs whole on one worker, and all modules that read one expensive
# session world run on the same worker, which builds it once.
SHARED_WORLDS = {
    "warehouse_world": "warehouse_world", "warehouse_world_duckdb": "warehouse_world",
    "warehouse_world_postgres": "warehouse_world",
}


@pytest.hookimpl(tryfirst=True)  # before xdist reads the groups
def pytest_collection_modifyitems(config, items):
    for item in items:
        shared = sorted({SHARED_WORLDS[name] for name in item.fixturenames if name in SHARED_WORLDS})
        item.add_marker(pytest.mark.xdist_group(shared[0] if shared else item.module.__name__))
