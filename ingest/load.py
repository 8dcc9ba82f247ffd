"""Loads a dlt source into its raw schema of the warehouse (DuckDB or PostgreSQL), and replays the archive.

dlt writes each load as one package: the source is extracted whole before anything is loaded, so a source
that fails while extracting (a 429 that outlasts the retries, a dropped connection) loads nothing and moves
no cursor; a process killed while loading leaves the package pending, and the next run finishes it first.
Tables are merged on their primary keys, so whatever is read twice lands once.
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")  # dlt must never phone home from this platform

import dlt  # noqa: E402
from dlt.destinations.impl.postgres.configuration import PostgresCredentials  # noqa: E402
from dlt.extract import DltResource  # noqa: E402
from dlt.pipeline.exceptions import PipelineStepFailed  # noqa: E402

from ez360.core.warehouse import RAW_SCHEMAS, Warehouse  # noqa: E402
from ingest import archive  # noqa: E402
from ingest.report import IngestFailed, LoadReport, SourceRun  # noqa: E402
from ingest.tables import TableSpec, make_resource  # noqa: E402


def destination(warehouse: Warehouse) -> Any:
    if warehouse.kind == "duckdb":
        warehouse.path.parent.mkdir(parents=True, exist_ok=True)
        return dlt.destinations.duckdb(str(warehouse.path))
    credentials = PostgresCredentials()
    credentials.parse_native_representation(warehouse.postgres_dsn())
    # dlt insists on a password; trust or peer authentication legitimately has none
    credentials.password = credentials.password or ""
    return dlt.destinations.postgres(credentials=credentials)


def raw_pipeline(name: str, warehouse: Warehouse, state_dir: Path) -> dlt.Pipeline:
    return dlt.pipeline(pipeline_name=f"ez360_{name}_{warehouse.kind}", destination=destination(warehouse),
                        dataset_name=RAW_SCHEMAS[name], pipelines_dir=str(state_dir))


def _report(name: str, run: SourceRun, started: float, infos: list[Any]) -> LoadReport:
    counts: dict[str, int] = {}
    timings: dict[str, float] = {}
    load_ids: list[str] = []
    for info in infos:
        if info is None:
            continue
        step = type(info).__name__.removesuffix("Info").lower()  # extract | normalize | load
        began, ended = getattr(info, "started_at", None), getattr(info, "finished_at", None)
        if began and ended:
            timings[step] = timings.get(step, 0.0) + (ended - began).total_seconds()
        for table, rows in (getattr(info, "row_counts", None) or {}).items():
            if step == "normalize" and not table.startswith("_dlt") and rows:
                counts[table] = counts.get(table, 0) + rows
        if step == "load":
            load_ids += list(info.loads_ids)
    timings["total"] = time.monotonic() - started
    return LoadReport(
        source=name, schema=RAW_SCHEMAS[name], row_counts=counts,
        pages=run.http.pages, requests=run.http.requests, retries=run.http.retries,
        retry_reasons=dict(run.http.retry_reasons), timings=timings, quarantined=dict(run.quarantined),
        errors=dict(run.errors), notes=dict(run.notes), load_ids=load_ids)


def _forget_loaded_packages(pipeline: dlt.Pipeline, load_ids: list[str]) -> None:
    # dlt keeps every completed package on disk; the landing archive is the copy we keep
    for load_id in load_ids:
        shutil.rmtree(Path(pipeline.working_dir) / "load" / "loaded" / load_id, ignore_errors=True)


def drop_exact_duplicates(pipeline: dlt.Pipeline) -> None:
    """Remove rows a resumed load landed twice (same primary key AND same dlt row id).

    dlt resumes a package by re-running the jobs whose completion it had not recorded; a copy into the
    staging table that committed just before the process died is then copied again, and dlt's merge
    deduplicates such doubles for single tables and nested tables but not for a root table that has nested
    tables. Two rows with one row id are one record landed twice, never two records, so one goes.
    """
    schema = pipeline.default_schema
    row_id = "rowid" if "duckdb" in pipeline.destination.destination_type else "ctid"
    with pipeline.sql_client() as client:
        for table in schema.data_tables():
            keys = [c for c, col in table["columns"].items() if col.get("primary_key")]
            if not keys or table.get("parent") or "_dlt_id" not in table["columns"]:
                continue
            name = client.make_qualified_table_name(table["name"])
            partition = ", ".join(client.escape_column_name(c) for c in [*keys, "_dlt_id"])
            client.execute_sql(
                f"DELETE FROM {name} WHERE {row_id} IN (SELECT {row_id} FROM (SELECT {row_id}, ROW_NUMBER() OVER "
                f"(PARTITION BY {partition} ORDER BY {row_id}) AS copy FROM {name}) AS copies WHERE copy > 1)")


def _root_columns(pipeline: dlt.Pipeline) -> dict[str, Any]:
    """Column hints of every root table of the pipeline's schema (the types a replay must declare)."""
    keep = ("data_type", "precision", "scale", "timezone", "nullable")
    return {name: {c: {k: v for k, v in col.items() if k in keep} for c, col in table["columns"].items()
                   if not c.startswith("_dlt") and "data_type" in col}
            for name, table in pipeline.default_schema.tables.items()
            if not name.startswith("_dlt") and not table.get("parent")}


def load_source(source: Any, name: str, warehouse: Warehouse, state_dir: Path, landing_dir: Path,
                run: SourceRun | None = None, writer: archive.ArchiveWriter | None = None) -> LoadReport:
    """Run one source into `raw_<name>`; dlt keeps the incremental state under `state_dir`.

    Records the source wrote to the landing archive (`landing_dir/<name>/_pending/<load id>/`) move into
    `landing_dir/<name>/<load id>/` once dlt has loaded that package. Raises `IngestFailed` (nothing of this
    load written) when the load fails as a whole, including when every part of an ERPNext load failed.
    """
    run = run or SourceRun(name)
    pipeline = raw_pipeline(name, warehouse, state_dir)
    started = time.monotonic()
    infos: list[Any] = []
    try:
        if pipeline.has_pending_data:  # a load killed or failed while loading: finish it first
            infos += [pipeline.normalize(), pipeline.load()]
            drop_exact_duplicates(pipeline)
        infos.append(pipeline.extract(source))
        if writer is not None:
            writer.flush()
        infos += [pipeline.normalize(), pipeline.load()]
    except PipelineStepFailed as exc:
        report = _report(name, run, started, infos)
        cause = _root_cause(exc)
        report.errors.setdefault(name, cause)
        raise IngestFailed(f"{name}: load failed at the {exc.step} step, nothing of it was written: {cause}",
                           report) from exc
    report = _report(name, run, started, infos)
    completed = set(pipeline.list_completed_load_packages())
    pending = set(pipeline.list_extracted_load_packages()) | set(pipeline.list_normalized_load_packages())
    archive.settle(landing_dir / name, completed, pending, _root_columns(pipeline))
    _forget_loaded_packages(pipeline, sorted(completed))
    if run.errors and not run.succeeded and name == "erpnext":
        raise IngestFailed(f"{name}: every part failed: " + "; ".join(f"{k}: {v}" for k, v in run.errors.items()),
                           report)
    return report


def _root_cause(exc: BaseException) -> str:
    seen: list[BaseException] = []
    current: BaseException | None = exc
    while current is not None and current not in seen:
        seen.append(current)
        current = current.__cause__ or current.__context__
    from ingest.http import SourceHttpError

    named = [e for e in seen if isinstance(e, SourceHttpError)]
    return str(named[0] if named else seen[-1])


def replay_resources(folder: Path, spec_for: Callable[[str], TableSpec]) -> list[DltResource]:
    """One resource per archived table of one load, with the live table's keys and column types."""
    def reader(table: str) -> Callable[[], Iterator[list[Any]]]:
        def read() -> Iterator[list[Any]]:
            yield from archive.read_table(folder, table)
        return read

    archived = archive.columns_of(folder)
    resources = []
    for table in archive.tables_in(folder):
        spec = spec_for(table)
        spec = TableSpec(spec.name, spec.primary_key, {**archived.get(table, {}), **spec.columns}, spec.merge_key,
                         spec.write_disposition)
        resources.append(make_resource(spec, reader(table), name=table))
    return resources


def replay(name: str, warehouse: Warehouse, state_dir: Path, landing_dir: Path,
           source_for: Callable[[Path], Any]) -> LoadReport:
    """Drop `raw_<name>` and reload it from the landing archive, load by load, without calling the source.

    `source_for(folder)` builds the replay source of one archived load (same dlt source name and table hints
    as the live source). The incremental state is left as it was: the archive holds what that state covers.
    """
    loads = archive.archived_loads(landing_dir / name)
    if not loads:
        raise IngestFailed(f"{name}: nothing to replay, no archived load in {landing_dir / name}",
                           LoadReport(name, RAW_SCHEMAS[name]))
    pipeline = raw_pipeline(name, warehouse, state_dir)
    started = time.monotonic()
    _drop_dataset(pipeline)
    total = LoadReport(name, RAW_SCHEMAS[name], replayed=True)
    for folder in loads:
        run = SourceRun(name)
        try:
            infos = [pipeline.extract(source_for(folder)), pipeline.normalize(), pipeline.load()]
        except PipelineStepFailed as exc:
            raise IngestFailed(f"{name}: replay of load {folder.name} failed: {_root_cause(exc)}", total) from exc
        step = _report(name, run, started, infos)
        for table, rows in step.row_counts.items():
            total.row_counts[table] = total.row_counts.get(table, 0) + rows
        total.load_ids += step.load_ids
        _forget_loaded_packages(pipeline, list(pipeline.list_completed_load_packages()))
    total.timings["total"] = time.monotonic() - started
    return total


def _drop_dataset(pipeline: dlt.Pipeline) -> None:
    pipeline.sync_destination()  # a pipeline folder lost with the machine: learn the schema from the warehouse
    if not pipeline.default_schema_name:
        return  # nothing of this source was ever loaded here
    with pipeline.sql_client() as client:
        if client.has_dataset():
            client.drop_dataset()
        with client.with_staging_dataset():
            if client.has_dataset():
                client.drop_dataset()
