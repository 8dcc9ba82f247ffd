"""`ez360 serve api --workers N`: the API server's processes (issue 8). By default one per core on PostgreSQL
(a Python process uses one core at a time) and one on the embedded SQLite database (a single writer)."""

from __future__ import annotations

import os

from ez360.cli.processes import services
from ez360.core.settings import Settings


def _workers(settings: Settings, workers: int | None = None) -> int:
    argv = services(settings, workers=workers)["api"].argv
    return int(argv[argv.index("--workers") + 1]) if "--workers" in argv else 1


def test_the_api_serves_with_one_process_per_core_on_postgresql_one_on_sqlite_or_as_asked(tmp_path):
    postgres = Settings(_env_file=None, database_url="postgresql://ez360@db.example.com/ops", var_dir=tmp_path)
    sqlite = Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'ops.sqlite3'}", var_dir=tmp_path)
    assert _workers(postgres) == len(os.sched_getaffinity(0))
    assert _workers(sqlite) == 1
    assert _workers(postgres, 3) == 3 and _workers(sqlite, 2) == 2
