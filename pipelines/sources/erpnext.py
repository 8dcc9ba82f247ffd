"""ERPNext's REST API -> raw_erpnext."""

import dagster as dg

from ingest import erpnext_source
from pipelines.sources.common import ingest_asset

# the default doctypes, their child tables, and the doctypes a deployment may add (EZ360_ERPNEXT_DOCTYPES)
OPTIONAL_DOCTYPES = ("Currency Exchange",)
TABLES = [erpnext_source.table_name(d) for d in (*erpnext_source.DEFAULT_DOCTYPES, *OPTIONAL_DOCTYPES)] + sorted(
    erpnext_source.CHILD_TABLES)


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=[ingest_asset("erpnext", TABLES, "Read ERPNext into raw_erpnext")])
