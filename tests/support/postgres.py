"""Throw-away PostgreSQL databases for tests.

The server comes from EZ360_TEST_POSTGRES_URL (default: the local trust-auth server). Under CI
(`CI=true`) an unreachable server is a failure; elsewhere the test skips with a loud reason.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import psycopg2
import pytest
from psycopg2 import sql

SERVER_URL = os.environ.get("EZ360_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres")


def database_url(database: str) -> str:
    """The URL of `database` on the test server."""
    return SERVER_URL.rsplit("/", 1)[0] + f"/{database}"


def require_server() -> None:
    try:
        psycopg2.connect(SERVER_URL, connect_timeout=3).close()
    except psycopg2.OperationalError as exc:
        reason = f"PostgreSQL not reachable at {SERVER_URL} (set EZ360_TEST_POSTGRES_URL): {exc}".strip()
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail("CI requires PostgreSQL. " + reason)
        pytest.skip("SKIPPING POSTGRES TEST: " + reason)


@contextmanager
def temporary_database(prefix: str = "ez360_test") -> Iterator[str]:
    """Create a uniquely named database, yield its URL, drop it afterwards."""
    require_server()
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = psycopg2.connect(SERVER_URL)
    admin.autocommit = True
    try:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name)))
        yield database_url(name)
    finally:
        with admin.cursor() as cur:
            cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))
        admin.close()
