"""The sensor that starts a pipeline run when export files arrive in the inbox.

Each file is requested once: the cursor keeps the identity (path, size, modification time) of the files already
waiting at the last evaluation, so a file that stays in the inbox (its run failed, or is still queued) does not
start run after run; the hourly schedule picks it up again. A file replaced in place is new. The run key is
derived from the new files too, so the daemon would also refuse a repeat of the same request.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import dagster as dg

from ingest import files_source
from pipelines.resources import Ez360Resource

INBOX_SENSOR = "inbox_files_sensor"
INBOX_SUFFIXES = (".csv", ".xlsx", ".parquet")


def waiting_files(inbox: Path) -> list[Path]:
    """Files waiting in `<inbox>/<kind>/` (processed/ and rejected/ are the ingest's, not new)."""
    found = []
    for kind in files_source.KINDS:
        folder = Path(inbox) / kind
        if folder.is_dir():
            found += [p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in INBOX_SUFFIXES]
    return sorted(found)


def _identity(inbox: Path, path: Path) -> str:
    stat = path.stat()
    return f"{path.relative_to(inbox)}:{stat.st_size}:{stat.st_mtime_ns}"


def inbox_sensor(job_name: str) -> dg.SensorDefinition:
    @dg.sensor(name=INBOX_SENSOR, job_name=job_name, minimum_interval_seconds=60,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Starts a pipeline run when export files arrive in the inbox (once per file)")
    def _sensor(context: dg.SensorEvaluationContext, ez360: Ez360Resource) -> dg.SensorResult:
        inbox = Path(ez360.settings().inbox_dir)
        waiting = {_identity(inbox, p) for p in waiting_files(inbox)}
        requested = set(json.loads(context.cursor)) if context.cursor else set()
        new = sorted(waiting - requested)
        cursor = json.dumps(sorted(waiting))  # files that left the inbox are forgotten: the cursor stays small
        if not new:
            why = f"{len(waiting)} file(s) in the inbox already started a run" if waiting else "the inbox is empty"
            return dg.SensorResult(skip_reason=dg.SkipReason(why), cursor=cursor)
        digest = hashlib.sha256("\n".join(new).encode()).hexdigest()[:16]
        return dg.SensorResult(cursor=cursor, run_requests=[dg.RunRequest(
            run_key=f"inbox-{digest}", tags={"ez360/trigger": "inbox"})])

    return _sensor
