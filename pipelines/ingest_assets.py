"""Ingest assets: one multi-asset per source, one asset per raw table it lands."""


import dagster as dg

from ez360.core.warehouse import RAW_SCHEMAS
from ingest import erpnext_source, files_source, stripe_source
from ingest.ops_source import OPS_TABLES
from ingest.runner import run_source
from pipelines.settings_resource import Ez360Settings


def _specs(source: str, tables) -> list[dg.AssetSpec]:
    return [dg.AssetSpec([RAW_SCHEMAS[source], t], group_name=f"raw_{source}", kinds={"dlt"}) for t in tables]


def _materialize(context: dg.AssetExecutionContext, summary):
    context.log.info(f"{summary.source}: {summary.rows} rows loaded into {summary.schema}")
    for spec in context.assets_def.specs:
        table = spec.key.path[-1]
        yield dg.MaterializeResult(asset_key=spec.key,
                                   metadata={"rows_loaded": summary.row_counts.get(table, 0)})


@dg.multi_asset(specs=_specs("ops", OPS_TABLES), name="ingest_ops", can_subset=False)
def ingest_ops(context: dg.AssetExecutionContext, ez360: Ez360Settings):
    yield from _materialize(context, run_source("ops", ez360.settings()))


@dg.multi_asset(specs=_specs("stripe", stripe_source.TABLES), name="ingest_stripe", can_subset=False)
def ingest_stripe(context: dg.AssetExecutionContext, ez360: Ez360Settings):
    yield from _materialize(context, run_source("stripe", ez360.settings()))


_ERP_TABLES = [erpnext_source.table_name(d) for d in erpnext_source.DEFAULT_DOCTYPES] + sorted(
    erpnext_source.CHILD_TABLES)


@dg.multi_asset(specs=_specs("erpnext", _ERP_TABLES), name="ingest_erpnext", can_subset=False)
def ingest_erpnext(context: dg.AssetExecutionContext, ez360: Ez360Settings):
    yield from _materialize(context, run_source("erpnext", ez360.settings()))


@dg.multi_asset(specs=_specs("files", files_source.TABLES), name="ingest_files", can_subset=False)
def ingest_files(context: dg.AssetExecutionContext, ez360: Ez360Settings):
    yield from _materialize(context, run_source("files", ez360.settings()))
