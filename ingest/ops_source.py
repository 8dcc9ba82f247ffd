"""The ops DB as a dlt source: every business table, incremental where rows carry `updated_at`."""

from __future__ import annotations

import os

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")  # dlt must never phone home from this platform

import dlt  # noqa: E402
from dlt.sources.sql_database import sql_table  # noqa: E402

from ingest.archive import ArchiveWriter  # noqa: E402
from ingest.tables import QUARANTINE, TableSpec  # noqa: E402

# table -> incremental cursor; None = small or line tables that are re-read whole (replace)
OPS_TABLES: dict[str, str | None] = {
    "companies": "updated_at", "users": "updated_at", "memberships": "updated_at", "clients": "updated_at",
    "projects": "updated_at", "time_entries": "updated_at", "invoices": "updated_at", "invoice_lines": None,
    "payments": "updated_at", "payment_allocations": "id", "expenses": "updated_at", "accounts": None,
    "journal_entries": "updated_at", "journal_lines": "id", "usage_events": "id",
    "credit_notes": "id", "refunds": "id", "closed_periods": None,
    "reconciliation_resolutions": "created_at",  # append-only; finance's resolutions flow back (issue 10)
}
# Secrets never leave the ops DB.
EXCLUDED_COLUMNS = {"users": ["password_hash"]}


@dlt.source(name="ops", max_table_nesting=0)
def ops_source(database_url: str):
    for table, cursor in OPS_TABLES.items():
        yield sql_table(
            credentials=database_url, table=table, reflection_level="full_with_precision",
            excluded_columns=EXCLUDED_COLUMNS.get(table),
            incremental=dlt.sources.incremental(cursor) if cursor else None,
            write_disposition="merge" if cursor else "replace", primary_key="id",
        )


def table_spec(table: str) -> TableSpec:
    """Keys and write disposition of an ops table (its column types come from the archived schema)."""
    if table == QUARANTINE.name:
        return QUARANTINE
    return TableSpec(table, ("id",), write_disposition="merge" if OPS_TABLES.get(table) else "replace")


def archived(source, writer: ArchiveWriter):
    """`source` whose every row is also written to the landing archive, as read."""
    def keep(table: str):
        def add(row):
            writer.add(dlt.current.load_package_state()["load_id"], table, row)
            return row
        return add

    for name, resource in source.resources.items():
        resource.add_map(keep(name))
    return source
