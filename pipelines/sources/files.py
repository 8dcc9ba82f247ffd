"""Export files dropped in the inbox -> raw_files (the sensor that starts a run for them: pipelines/automation)."""


import dagster as dg

from ingest import files_source
from pipelines.sources.common import ingest_asset


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=[ingest_asset("files", files_source.TABLES, "Load inbox export files into raw_files")])
