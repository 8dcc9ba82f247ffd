from __future__ import annotations

import pytest

from tests.support.migrated import migrate
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
    """The ops DB on each engine at the latest schema (a copy of this process's one migration: support/migrated.py)."""
    return migrate(empty_ops_db)


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


# --- The demo world on the embedded defaults after its first pipeline run (tests/support/embedded_world.py).
@pytest.fixture(scope="session")
def embedded_world(tmp_path_factory):
    from tests.support.embedded_world import embedded_world

    with embedded_world(tmp_path_factory.mktemp("embedded_world")) as world:
        yield world


# --- Parallel runs (bin/test runs pytest-xdist, one worker per core; the scheduler below hands out work).
# A worker builds its own copy of every session fixture it uses, and a module's fixtures on every worker that
# runs one of its tests. So each module runs whole on one worker; the modules that read the session-wide demo
# warehouse run on one worker, which builds it once, as do the tests that go on from the embedded world's first
# run; the other tests of PER_TEST share nothing (each runs a whole pipeline) and go out one by one. The longest
# work starts first: the run ends when the last worker does.
WAREHOUSE_WORLD_MODULES = frozenset({
    "tests/test_dashboard_demo.py", "tests/test_warehouse_analytics_catalog.py",
    "tests/test_warehouse_analytics_tieout.py", "tests/test_warehouse_reconciliation.py",
    "tests/test_warehouse_tieouts.py",
})
WAREHOUSE_WORLD_FIXTURES = frozenset({"warehouse_world", "warehouse_world_duckdb", "warehouse_world_postgres"})
PER_TEST = frozenset({"tests/test_pipeline_end_to_end.py"})
# the tests that go on from the embedded world's first run, in this order (the slice's failing gates come last)
EMBEDDED_WORLD_TESTS = ("tests/test_orchestration_incremental.py",
                        "tests/test_pipeline_end_to_end.py::test_whole_slice_on_embedded_defaults")
LONGEST_FIRST = ("embedded_world", "tests/test_pipeline_end_to_end.py", "tests/test_demo_command.py",
                 "warehouse_world", "tests/test_supervision.py", "tests/test_orchestration_failures.py",
                 "tests/test_orchestration_definitions.py", "tests/test_web_browser.py",
                 "tests/test_dashboard_browser.py", "tests/test_ingest_")


def work_unit(nodeid: str) -> str:
    """Which tests must run on the same worker: the scheduler's unit of work."""
    module = nodeid.split("::", 1)[0]
    if nodeid.startswith(EMBEDDED_WORLD_TESTS):
        return "embedded_world"
    if module in WAREHOUSE_WORLD_MODULES:
        return "warehouse_world"
    return nodeid if module in PER_TEST else module


def _rank(unit: str) -> int:
    return next((rank for rank, prefix in enumerate(LONGEST_FIRST) if unit.startswith(prefix)), len(LONGEST_FIRST))


@pytest.hookimpl(tryfirst=True)  # before xdist's own schedulers
def pytest_xdist_make_scheduler(config, log):
    from xdist.scheduler import LoadScopeScheduling

    class WorkUnits(LoadScopeScheduling):
        def _split_scope(self, nodeid: str) -> str:
            return work_unit(nodeid)

    # xdist re-sorts loadscope's units by test count unless told not to (--loadscope-reorder is on by default),
    # which put the long single-test units (the end-to-end runs, bin/demo) last: keep our longest-first order.
    config.option.loadscopereorder = False
    return WorkUnits(config, log)


def pytest_collection_modifyitems(config, items):
    strays = sorted({item.nodeid.split("::", 1)[0] for item in items
                     if WAREHOUSE_WORLD_FIXTURES & set(item.fixturenames)} - WAREHOUSE_WORLD_MODULES)
    if strays:
        raise pytest.UsageError(f"add {strays} to WAREHOUSE_WORLD_MODULES in tests/conftest.py (they read the "
                                "shared warehouse world, which one worker builds once)")
    items.sort(key=lambda item: (_rank(work_unit(item.nodeid)), _embedded_order(item.nodeid)))  # stable


def _embedded_order(nodeid: str) -> int:
    return next((order for order, prefix in enumerate(EMBEDDED_WORLD_TESTS) if nodeid.startswith(prefix)), 0)
