"""Migration 0004 (accounts security tables) upgrades and downgrades on SQLite and PostgreSQL."""

from __future__ import annotations

from sqlalchemy import inspect

from operational_api.db import schema
from operational_api.db.engine import make_engine

TABLES = {"user_security", "recovery_codes", "user_sessions", "login_throttles", "security_events", "email_tokens",
          "email_outbox", "company_security_policies"}


def test_security_migration_upgrades_and_downgrades(empty_ops_db):
    url = empty_ops_db

    def tables():
        engine = make_engine(url)
        try:
            return set(inspect(engine).get_table_names())
        finally:
            engine.dispose()

    schema.upgrade(url)
    assert TABLES <= tables()
    schema.downgrade(url, "0002")
    assert not TABLES & tables() and {"users", "api_tokens"} <= tables()
    schema.upgrade(url)
    assert TABLES <= tables()
