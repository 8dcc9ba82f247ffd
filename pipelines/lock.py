"""One pipeline run at a time per deployment: DuckDB takes a single writer, and two publishes must not race.

The lock is an flock on `<published_dir>/.pipeline.lock`, held by the run's process for the whole run (the
Ez360Resource takes it when a run initialises it), whoever started the run: the schedule, a sensor, the UI
or `ez360 pipeline run`. A second run is refused at once with a message naming the run that holds it.
"""

from __future__ import annotations

import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

LOCK_NAME = ".pipeline.lock"


class PipelineBusy(RuntimeError):
    """Another pipeline run holds the warehouse."""


def lock_path(published_dir: Path) -> Path:
    return Path(published_dir) / LOCK_NAME


def holder(published_dir: Path) -> dict | None:
    """Who holds the lock (pid, run_id, since), or None when it is free."""
    path = lock_path(published_dir)
    if not path.exists():
        return None
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            try:
                return json.loads(handle.read() or "{}")
            except ValueError:
                return {}
        fcntl.flock(handle, fcntl.LOCK_UN)
        return None


def busy_message(info: dict, what: str = "pipeline run") -> str:
    if what != "pipeline run":
        return (f"another {what} is running (process {info.get('pid', '?')}, since {info.get('since', '?')}): its "
                "data and ports are already in use, so nothing was changed. Stop it first.")
    return (f"another pipeline run is in progress (run {info.get('run_id', '?')}, process {info.get('pid', '?')}, "
            f"since {info.get('since', '?')}); it holds the warehouse, so this run was refused. "
            "Wait for it to finish (`ez360 pipeline status`) and run again.")


@contextmanager
def run_lock(directory: Path, run_id: str, name: str = LOCK_NAME, what: str = "pipeline run") -> Iterator[None]:
    """Hold `<directory>/<name>` exclusively, or raise PipelineBusy at once naming the holder."""
    path = Path(directory) / name
    path.parent.mkdir(parents=True, exist_ok=True)
    handle = open(path, "a+")
    try:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            handle.seek(0)
            try:
                info = json.loads(handle.read() or "{}")
            except ValueError:
                info = {}
            raise PipelineBusy(busy_message(info, what)) from None
        handle.seek(0)
        handle.truncate()
        handle.write(json.dumps({"pid": os.getpid(), "run_id": run_id, "since": datetime.now(UTC).isoformat()}))
        handle.flush()
        try:
            yield
        finally:
            handle.seek(0)
            handle.truncate()
            handle.flush()
            fcntl.flock(handle, fcntl.LOCK_UN)
    finally:
        handle.close()
