"""Jobs, schedules, the inbox sensor and freshness checks.

* `ez360_full_pipeline`: every asset (ingest -> raw gates -> dbt -> mart gates -> publish), in one process
  (DuckDB takes one writer, so the steps go one after another). Ingest is incremental by itself.
* `hourly_refresh`: that job every hour; dbt rebuilds only what changed (pipelines/warehouse/incremental.py).
  `nightly_full_refresh`: the same at 02:30 with dbt `--full-refresh`, rebuilding everything.
* the inbox sensor (inbox.py) starts it when export files arrive, once per file.
* freshness checks: one per source (its first raw table), one on the published snapshot and one per published
  mart.
* the publish asset's automation condition (`eager` and `all_deps_blocking_checks_passed`) lets declarative
  automation publish only after every blocking gate of its inputs passed.
"""

from __future__ import annotations

from datetime import timedelta

import dagster as dg

from pipelines.automation.inbox import inbox_sensor
from pipelines.publishing import PUBLISH_KEY
from pipelines.sources.common import raw_key
from pipelines.warehouse.dbt import FULL_REFRESH_TAG

FULL_PIPELINE = "ez360_full_pipeline"
FRESHNESS_SENSOR = "freshness_checks_sensor"

def published_keys(published: list[str]) -> list[dg.AssetKey]:
    return [dg.AssetKey(table.split(".")) for table in published]


full_pipeline = dg.define_asset_job(
    FULL_PIPELINE, selection=dg.AssetSelection.all(), executor_def=dg.in_process_executor,
    description="Ingest every source, gate the raw data, build the warehouse, gate the marts and publish")


def definitions(first_table: dict[str, str], stale_minutes: int, published_stale_minutes: int,
                published: list[str]) -> dg.Definitions:
    source_checks = dg.build_last_update_freshness_checks(
        assets=[raw_key(source, table) for source, table in first_table.items()],
        lower_bound_delta=timedelta(minutes=stale_minutes))
    # the snapshot as a whole, and each published mart: a mart an incremental run left unchanged is still
    # reported (as an unchanged output), so a stale mart means its model really stopped being built
    published_checks = dg.build_last_update_freshness_checks(
        assets=[PUBLISH_KEY, *published_keys(published)], lower_bound_delta=timedelta(minutes=published_stale_minutes))
    checks = [*source_checks, *published_checks]
    return dg.Definitions(
        jobs=[full_pipeline],
        schedules=[
            dg.ScheduleDefinition(name="hourly_refresh", job=full_pipeline, cron_schedule="0 * * * *",
                                  tags={"ez360/trigger": "schedule:hourly_refresh"},
                                  description="Incremental refresh: ingest what changed, rebuild, gate, publish"),
            dg.ScheduleDefinition(name="nightly_full_refresh", job=full_pipeline, cron_schedule="30 2 * * *",
                                  tags={FULL_REFRESH_TAG: "true", "ez360/trigger": "schedule:nightly_full_refresh"},
                                  description="Nightly: the same with dbt --full-refresh"),
        ],
        sensors=[inbox_sensor(FULL_PIPELINE),
                 dg.build_sensor_for_freshness_checks(freshness_checks=checks, name=FRESHNESS_SENSOR)],
        asset_checks=checks,
    )
