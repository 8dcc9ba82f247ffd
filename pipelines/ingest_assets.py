"""Ingest assets: one multi-asset per source, one asset per raw table it lands."""


import dagster as dg

from ez360.core.warehouse import RAW_SCHEMAS
from ingest.erpnext_source import DEFAULT_DOCTYPES, erpnext_source
from ingest.load import load_source
from ingest.ops_source import OPS_TABLES, ops_source
from ingest.stripe_source import STRIPE_RESOURCES, stripe_source
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
    settings = ez360.settings()
    summary = load_source(ops_source(settings.database_url), "ops", ez360.warehouse(), settings.var_dir / "dlt",
                          settings.landing_dir)
    yield from _materialize(context, summary)


@dg.multi_asset(specs=_specs("stripe", STRIPE_RESOURCES), name="ingest_stripe", can_subset=False)
def ingest_stripe(context: dg.AssetExecutionContext, ez360: Ez360Settings):
    settings = ez360.settings()
    source = stripe_source(settings.stripe_api_key.get_secret_value(), settings.stripe_api_base or None)
    summary = load_source(source, "stripe", ez360.warehouse(), settings.var_dir / "dlt",
                          settings.landing_dir)
    yield from _materialize(context, summary)


def _erp_table(doctype: str) -> str:
    return doctype.lower().replace(" ", "_")


@dg.multi_asset(specs=_specs("erpnext", [_erp_table(d) for d in DEFAULT_DOCTYPES]), name="ingest_erpnext",
                can_subset=False)
def ingest_erpnext(context: dg.AssetExecutionContext, ez360: Ez360Settings):
    settings = ez360.settings()
    source = erpnext_source(settings.erpnext_url, settings.erpnext_api_key,
                            settings.erpnext_api_secret.get_secret_value())
    summary = load_source(source, "erpnext", ez360.warehouse(), settings.var_dir / "dlt",
                          settings.landing_dir)
    yield from _materialize(context, summary)
