"""Export files dropped in the inbox -> raw_files, and the sensor that starts a run when one arrives."""


import hashlib
from pathlib import Path

import dagster as dg

from ingest import files_source
from pipelines.resources import Ez360Resource
from pipelines.sources.common import ingest_asset

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


def inbox_sensor(job_name: str) -> dg.SensorDefinition:
    @dg.sensor(name=INBOX_SENSOR, job_name=job_name, minimum_interval_seconds=60,
               default_status=dg.DefaultSensorStatus.RUNNING,
               description="Starts a pipeline run when export files arrive in the inbox")
    def _sensor(context: dg.SensorEvaluationContext, ez360: Ez360Resource):
        files = waiting_files(ez360.settings().inbox_dir)
        if not files:
            return dg.SkipReason("no new files in the inbox")
        digest = hashlib.sha256("\n".join(f"{p}:{p.stat().st_size}:{p.stat().st_mtime_ns}" for p in files)
                                .encode()).hexdigest()[:16]
        return dg.RunRequest(run_key=f"inbox-{digest}", tags={"ez360/trigger": "inbox"})

    return _sensor


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=[ingest_asset("files", files_source.TABLES, "Load inbox export files into raw_files")])
