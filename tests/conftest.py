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
