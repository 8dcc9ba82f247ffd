"""The Dagster code location: `dagster-webserver -m pipelines.definitions` and `ez360 pipeline run`."""

from __future__ import annotations

import dagster as dg

from ez360.core.observability import init_sentry
from ez360.core.settings import get_settings
from pipelines.dbt_assets import dbt_resource, warehouse_models
from pipelines.gate_and_publish import published_revenue, revenue_mart_gate
from pipelines.ingest_assets import ingest_erpnext, ingest_files, ingest_ops, ingest_stripe
from pipelines.settings_resource import Ez360Settings

init_sentry(get_settings(), "pipelines")

# DuckDB takes one writer at a time, so the steps of a run go one after another.
full_refresh = dg.define_asset_job("ez360_full_pipeline", selection=dg.AssetSelection.all(),
                                   executor_def=dg.in_process_executor,
                                   description="Ingest every source, build the warehouse, gate and publish")

defs = dg.Definitions(
    assets=[ingest_ops, ingest_stripe, ingest_erpnext, ingest_files, warehouse_models, published_revenue],
    asset_checks=[revenue_mart_gate],
    jobs=[full_refresh],
    schedules=[dg.ScheduleDefinition(job=full_refresh, cron_schedule="0 * * * *", name="hourly_refresh")],
    resources={"dbt": dbt_resource(), "ez360": Ez360Settings()},
)
