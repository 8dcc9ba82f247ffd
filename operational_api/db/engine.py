"""Engine and session factory for the ops DB (SQLite by default, PostgreSQL in production)."""

from __future__ import annotations

import time

from sqlalchemy import Engine, create_engine, event, exc
from sqlalchemy.orm import Session, sessionmaker

POOL_SIZE = 10  # connections kept open per process: a worker's concurrent requests never reconnect
PING_AFTER_IDLE = 10.0  # seconds: a connection idle longer is checked before use (a restart may have cut it)


def make_engine(url: str) -> Engine:
    if url.startswith("sqlite"):
        engine = create_engine(url, connect_args={"check_same_thread": False})

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn, _record):  # SQLite leaves foreign keys off unless asked
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA journal_mode=WAL")
            cur.close()

        return engine
    # Not pool_pre_ping (a round trip before every checkout: 1 of ~20 statements of a request); a connection that
    # sat idle is pinged instead, and one that fails mid-request invalidates the pool (SQLAlchemy's disconnect
    # handling), so a database restart costs at most the requests in flight.
    engine = create_engine(url, pool_size=POOL_SIZE, max_overflow=20, pool_recycle=1800)
    _ping_when_idle(engine)
    return engine


def _ping_when_idle(engine: Engine) -> None:
    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_conn, record) -> None:
        record.info["ez360_idle_since"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _check(dbapi_conn, record, _proxy) -> None:
        since = record.info.get("ez360_idle_since")
        if since is None or time.monotonic() - since < PING_AFTER_IDLE:
            return
        try:
            with dbapi_conn.cursor() as cur:
                cur.execute("SELECT 1")
            dbapi_conn.rollback()
        except Exception as error:  # noqa: BLE001 - any failure: the pool replaces the connection and retries
            raise exc.DisconnectionError(str(error)) from error


def make_sessionmaker(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)
