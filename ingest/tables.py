"""Table declarations and the one way records leave a source: archived, counted, quarantined when unfit.

Each raw table is a `TableSpec` (keys, declared columns, write disposition). A source's resource lands its
own table and may land others from the same loop (a parent's child rows, `_quarantine`): those are dlt
"table variants" of the resource, declared here with their own hints. Replay builds plain resources from
the same specs, so a replayed table has exactly the live table's shape.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import dlt
from dlt.extract import DltResource

from ingest.archive import ArchiveWriter, dumps
from ingest.report import SourceRun

Columns = dict[str, dict[str, Any]]


def text(*names: str) -> Columns:
    return {n: {"data_type": "text", "nullable": True} for n in names}


def bigint(*names: str) -> Columns:
    return {n: {"data_type": "bigint", "nullable": True} for n in names}


def boolean(*names: str) -> Columns:
    return {n: {"data_type": "bool", "nullable": True} for n in names}


def decimal(*names: str, scale: int = 9) -> Columns:
    return {n: {"data_type": "decimal", "precision": 38, "scale": scale, "nullable": True} for n in names}


def required_text(*names: str) -> Columns:
    return {n: {"data_type": "text", "nullable": False} for n in names}


@dataclass(frozen=True)
class TableSpec:
    name: str
    primary_key: tuple[str, ...]
    columns: Columns = field(default_factory=dict)
    merge_key: tuple[str, ...] = ()  # rows sharing a merge key value are replaced as a group
    write_disposition: str = "merge"

    def hints(self) -> dict[str, Any]:
        return {"primary_key": list(self.primary_key), "merge_key": list(self.merge_key) or "",
                "write_disposition": self.write_disposition, "columns": self.columns}


QUARANTINE = TableSpec(
    "_quarantine", ("table_name", "record_key", "reason"),
    columns={**required_text("source", "table_name", "record_key", "reason"), **text("payload", "load_id"),
             "quarantined_at": {"data_type": "timestamp", "nullable": True}},
)


def make_resource(spec: TableSpec, generator: Callable[..., Any], variants: Iterable[TableSpec] = (),
                  name: str | None = None) -> DltResource:
    """A merge/replace resource for `spec`, able to also land the `variants` tables (and always `_quarantine`)."""
    resource = dlt.resource(generator, name=name or spec.name, table_name=spec.name,
                            primary_key=list(spec.primary_key), merge_key=list(spec.merge_key) or None,
                            write_disposition=spec.write_disposition)
    for variant in (*variants, QUARANTINE):
        # a variant starts as a copy of the resource's hints: empty its columns first, then declare its own
        resource.apply_hints(table_name=variant.name, create_table_variant=True, columns={})
        resource.apply_hints(table_name=variant.name, create_table_variant=True, **variant.hints())
    if spec.columns:
        resource.apply_hints(columns=spec.columns)
    return resource


class Landing:
    """Marks records for their table, writes them to the landing archive, quarantines the unfit ones."""

    def __init__(self, run: SourceRun, archive: ArchiveWriter | None) -> None:
        self.run = run
        self.archive = archive

    @staticmethod
    def load_id() -> str:
        return dlt.current.load_package_state()["load_id"]

    def rows(self, table: str, rows: list[dict[str, Any]], own_table: bool = True) -> Any:
        """`rows` ready to yield: to the resource's own table, or (own_table=False) to the variant `table`."""
        if self.archive is not None and rows:
            self.archive.write(self.load_id(), table, rows)
        return rows if own_table else dlt.mark.with_table_name(rows, table)

    def quarantine(self, table: str, record: Any, key: str, reasons: list[str]) -> Any:
        """One `_quarantine` row per reason, ready to yield; counted per reason into the run."""
        payload = record if isinstance(record, str) else dumps(record)
        now = datetime.now(UTC)
        rows = [{"source": self.run.source, "table_name": table, "record_key": key, "reason": why,
                 "payload": payload, "load_id": self.load_id(), "quarantined_at": now} for why in reasons]
        for why in reasons:
            self.run.quarantine(why)
        return self.rows(QUARANTINE.name, rows, own_table=False)


def json_text(value: Mapping[str, Any] | list[Any]) -> str:
    return json.dumps(value, sort_keys=True, default=str)
