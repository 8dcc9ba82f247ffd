"""Dagster's SQLite event log (the embedded default), keeping a connection per database file between events.

Dagster's own `SqliteEventLogStorage` creates an SQLAlchemy engine, connects, and disposes of both for every event
it stores, twice for an asset or check event (the run's file, then the index file). A full run stores thousands
(a planned and a result event per model and per dbt test, step and log events), and a profile of `ez360 pipeline
run` put a third of the run process's CPU in storing events, half of that in creating and closing connections.
This subclass keeps one small pool per file (the index and the last few runs' files): same files, same schema,
same transactions, so the webserver, the daemon and an instance configured without it read them as before.
PostgreSQL storage (production) pools its connections already and is not affected.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Iterator
from contextlib import contextmanager

import sqlalchemy as sa
from dagster._core.storage.event_log import SqliteEventLogStorage
from dagster._serdes import ConfigurableClassData

BUSY_TIMEOUT_SECONDS = 30  # as Dagster's: wait for another process's write rather than fail
OPEN_FILES = 8  # the index and the files of the runs written last


class PooledSqliteEventLogStorage(SqliteEventLogStorage):
    def __init__(self, base_dir: str, inst_data: ConfigurableClassData | None = None):
        self._engines: OrderedDict[str, sa.Engine] = OrderedDict()  # before Dagster's init, which connects
        self._pid = os.getpid()
        super().__init__(base_dir, inst_data)

    @classmethod
    def from_config_value(cls, inst_data: ConfigurableClassData, config_value) -> PooledSqliteEventLogStorage:
        return cls(inst_data=inst_data, **config_value)

    def _engine(self, shard: str) -> sa.Engine:
        """The pooled engine of one file (called under `_db_lock`). A forked child starts its own pools: a SQLite
        connection must not cross a fork."""
        if self._pid != os.getpid():
            self._engines, self._pid = OrderedDict(), os.getpid()
        engine = self._engines.pop(shard, None)
        if engine is None:  # overflow: creating a file's tables nests a second connection
            engine = sa.create_engine(self.conn_string_for_shard(shard), pool_size=1, max_overflow=2,
                                      connect_args={"timeout": BUSY_TIMEOUT_SECONDS})
        self._engines[shard] = engine  # most recently used last
        while len(self._engines) > OPEN_FILES:
            _shard, oldest = self._engines.popitem(last=False)
            oldest.dispose()
        return engine

    @contextmanager
    def _connect(self, shard: str) -> Iterator[sa.Connection]:
        with self._db_lock:  # as Dagster's: one connection at a time across this storage's threads
            engine = self._engine(shard)
            if shard not in self._initialized_dbs:
                self._initdb(engine)
                self._initialized_dbs.add(shard)
            with engine.connect() as conn, conn.begin():
                yield conn

    def _dispose_engines(self) -> None:
        with self._db_lock:
            for engine in self._engines.values():
                engine.dispose()
            self._engines.clear()

    def wipe(self) -> None:
        self._dispose_engines()  # before the run files are deleted
        super().wipe()

    def dispose(self) -> None:
        self._dispose_engines()
        super().dispose()
