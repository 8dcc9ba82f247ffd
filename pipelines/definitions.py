"""The Dagster code location: `dagster-webserver -m pipelines.definitions` and `ez360 pipeline run`.

Built from small modules, each returning its own definitions:
  pipelines/sources/<source>.py   ingest assets (raw tables) per source
  pipelines/warehouse/            dbt models (sources keyed to the ingest assets), the published-mart list
  pipelines/gates/                blocking quality gates from quality/gates.py (raw tables, published marts)
  pipelines/publishing/           the one publish step that swaps every published mart together
  pipelines/monitoring/           run-status sensors -> publish log, alerts, stale-data sensor
  pipelines/automation/           job, schedules, the inbox sensor, freshness checks
"""

from __future__ import annotations

import dagster as dg

from ez360.core.observability import init_sentry
from ez360.core.settings import Settings, get_settings
from pipelines import automation, gates, monitoring, publishing, sources, warehouse
from pipelines.resources import Ez360Resource

FIRST_TABLE = {"ops": "companies", "stripe": "charges", "erpnext": "gl_entry", "files": "loaded_files"}


def build_definitions(settings: Settings) -> dg.Definitions:
    published = warehouse.published_marts()
    return dg.Definitions.merge(
        sources.definitions(),
        warehouse.definitions(),
        gates.definitions(published),
        publishing.definitions(published),
        monitoring.definitions(sources.SOURCES),
        automation.definitions(FIRST_TABLE, settings.source_stale_after_minutes,
                               settings.published_stale_after_minutes, published),
        dg.Definitions(resources={"ez360": Ez360Resource.from_settings(settings)}),
    )


_settings = get_settings()
init_sentry(_settings, "pipelines")
defs = build_definitions(_settings)
