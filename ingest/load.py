"""Loads a dlt source into its raw schema of the warehouse (DuckDB or PostgreSQL)."""

from __future__ import annotations

import os
import shutil
from dataclasses import dataclass
from pathlib import Path

import dlt
from dlt.destinations.impl.postgres.configuration import PostgresCredentials

from ez360.core.warehouse import RAW_SCHEMAS, Warehouse

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")


@dataclass(frozen=True)
class LoadSummary:
    source: str
    schema: str
    row_counts: dict[str, int]

    @property
    def rows(self) -> int:
        return sum(self.row_counts.values())


def destination(warehouse: Warehouse):
    if warehouse.kind == "duckdb":
        warehouse.path.parent.mkdir(parents=True, exist_ok=True)
        return dlt.destinations.duckdb(str(warehouse.path))
    credentials = PostgresCredentials()
    credentials.parse_native_representation(warehouse.postgres_dsn())
    # dlt insists on a password; trust or peer authentication legitimately has none
    credentials.password = credentials.password or ""
    return dlt.destinations.postgres(credentials=credentials)


def load_source(source, name: str, warehouse: Warehouse, state_dir: Path, landing_dir: Path) -> LoadSummary:
    """Run one source into `raw_<name>`; dlt keeps the incremental state under `state_dir`.

    Each completed load package (what was landed, table by table) moves to `landing_dir/<name>/<load id>/`:
    the landing archive from which a raw table can be audited or rebuilt.
    """
    pipeline = dlt.pipeline(
        pipeline_name=f"ez360_{name}_{warehouse.kind}", destination=destination(warehouse),
        dataset_name=RAW_SCHEMAS[name], pipelines_dir=str(state_dir),
    )
    pipeline.run(source)
    archive_loaded_packages(Path(pipeline.working_dir), landing_dir / name)
    counts = pipeline.last_trace.last_normalize_info.row_counts if pipeline.last_trace.last_normalize_info else {}
    return LoadSummary(name, RAW_SCHEMAS[name], {t: n for t, n in counts.items() if not t.startswith("_dlt")})


def archive_loaded_packages(working_dir: Path, archive: Path) -> list[Path]:
    moved = []
    for package in sorted((working_dir / "load" / "loaded").glob("*")):
        archive.mkdir(parents=True, exist_ok=True)
        target = archive / package.name
        if not target.exists():
            shutil.move(str(package), target)
            moved.append(target)
    return moved
