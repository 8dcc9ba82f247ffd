"""The operational app's database -> raw_ops."""

import dagster as dg

from ingest.ops_source import OPS_TABLES
from pipelines.sources.common import ingest_asset


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=[ingest_asset("ops", list(OPS_TABLES), "Copy the ops DB's tables into raw_ops",
                                                 quarantines=False)])
