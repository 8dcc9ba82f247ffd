"""One ingest multi-asset per source, one asset per raw table it lands; each load is written to the health store."""


import dagster as dg

from ez360.core.health import now
from ez360.core.warehouse import RAW_SCHEMAS
from ingest.report import IngestFailed, LoadReport
from ingest.runner import run_source
from pipelines.resources import Ez360Resource

INGEST_POOL = "ez360_warehouse_writer"  # one DuckDB writer: ingest, checks, dbt and publish share the pool


def raw_key(source: str, table: str) -> dg.AssetKey:
    return dg.AssetKey([RAW_SCHEMAS[source], table])


QUARANTINE_TABLE = "_quarantine"


def ingest_asset(source: str, tables: list[str] | tuple[str, ...], description: str,
                 quarantines: bool = True) -> dg.AssetsDefinition:
    """`quarantines`: the source sends records it cannot land to `raw_<source>._quarantine` (an asset too)."""
    tables = [*tables, *([QUARANTINE_TABLE] if quarantines else [])]
    specs = [dg.AssetSpec(raw_key(source, t), group_name=f"raw_{source}", kinds={"dlt"}) for t in tables]

    @dg.multi_asset(specs=specs, name=f"ingest_{source}", can_subset=False, pool=INGEST_POOL,
                    description=description)
    def _ingest(context: dg.AssetExecutionContext, ez360: Ez360Resource):
        store = ez360.health()
        run_id = context.run.run_id
        started = now()
        store.upsert_run(run_id, job_name=context.run.job_name, started_at=started)
        try:
            report = run_source(source, ez360.settings())
        except Exception as exc:
            report = exc.report if isinstance(exc, IngestFailed) else None
            store.record_source_load(run_id, source, status="failed", started_at=started, finished_at=now(),
                                     rows_loaded=report.rows if report else 0, error=_first_line(exc))
            store.close()
            raise
        record_load(store, run_id, source, report, started)
        store.close()
        context.log.info(report.summary())
        for spec in context.assets_def.specs:
            table = spec.key.path[-1]
            rows = (sum(report.quarantined.values()) if table == QUARANTINE_TABLE
                    else report.row_counts.get(table, 0))
            yield dg.MaterializeResult(asset_key=spec.key, metadata={
                "rows_loaded": rows,
                "load_partial": report.partial,
                "quarantined": sum(report.quarantined.values()),
                # the whole source's load, the same on each of its tables: what a data engineer compares run to run
                "quarantined_by_reason": dict(report.quarantined),
                "source_pages": report.pages,
                "source_requests": report.requests,
                "source_retries": report.retries,
                "source_seconds": {step: round(seconds, 3) for step, seconds in report.timings.items()},
                "source_errors": dict(report.errors),
            })

    return _ingest


def record_load(store, run_id: str, source: str, report: LoadReport, started) -> None:
    store.record_source_load(
        run_id, source, status="partial" if report.partial else "success", started_at=started, finished_at=now(),
        rows_loaded=report.rows, row_counts=report.row_counts, quarantined=sum(report.quarantined.values()),
        quarantined_by_reason=report.quarantined,
        error="; ".join(f"{what}: {why}" for what, why in report.errors.items()) or None)


def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return f"{type(exc).__name__}: {text.splitlines()[0] if text else ''}".rstrip(": ")
