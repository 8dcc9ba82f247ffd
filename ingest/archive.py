"""The landing archive: every record a load landed, as received, one gzipped JSON-lines file per table.

Layout: `<landing_dir>/<source>/<load_id>/<table>.jsonl.gz` (+ `manifest.json`). Records are written while
the source extracts, into `<source>/_pending/<load_id>/`, and move into place only once dlt reports that load
package as loaded; a load that failed or was killed before loading leaves a pending folder that the next run
either completes (dlt finishes the package first) or removes. So the archive holds exactly the loads that are
in the warehouse, and `replay` can rebuild a raw schema from it without calling the source.
"""

from __future__ import annotations

import gzip
import json
import shutil
from collections.abc import Iterable, Iterator
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import simplejson

PENDING = "_pending"


def _default(value: Any) -> Any:
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    if isinstance(value, bytes):
        return value.hex()
    return str(value)  # UUID, time, ...: their text form, which the declared column type reads back


def dumps(record: Any) -> str:
    # Decimal as a JSON number, digit for digit (simplejson), never through float.
    return simplejson.dumps(record, use_decimal=True, default=_default, separators=(",", ":"))


class ArchiveWriter:
    """Appends records per table to the pending folder of the load being extracted."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self._buffer: dict[tuple[str, str], list[Any]] = {}

    def add(self, load_id: str, table: str, record: Any) -> None:
        """Buffered `write` for record-at-a-time callers; `flush()` must follow the extraction."""
        rows = self._buffer.setdefault((load_id, table), [])
        rows.append(record)
        if len(rows) >= 5000:
            self.flush()

    def flush(self) -> None:
        buffered, self._buffer = self._buffer, {}
        for (load_id, table), rows in buffered.items():
            self.write(load_id, table, rows)

    def write(self, load_id: str, table: str, records: Iterable[Any]) -> None:
        folder = self.root / PENDING / load_id
        folder.mkdir(parents=True, exist_ok=True)
        lines = "".join(dumps(r) + "\n" for r in records)
        if lines:
            # one gzip member per call; readers see one stream (gzip concatenates members)
            with gzip.open(folder / f"{table}.jsonl.gz", "at", encoding="utf-8") as fh:
                fh.write(lines)


def settle(root: Path, loaded: set[str], still_pending: set[str], columns: dict[str, Any]) -> list[str]:
    """Move the pending folders of `loaded` load ids into the archive; drop those dlt no longer holds.

    `columns` (table -> dlt column hints) is written beside the records, so a replay declares the same types
    even without the pipeline's own schema. Returns the load ids archived now.
    """
    archived = []
    pending_root = root / PENDING
    for folder in sorted(pending_root.glob("*")) if pending_root.exists() else []:
        load_id = folder.name
        if load_id in loaded:
            target = root / load_id
            if target.exists():  # archived by an earlier settle that died before removing the pending copy
                shutil.rmtree(folder)
                continue
            tables = {p.name.removesuffix(".jsonl.gz"): _count(p) for p in folder.glob("*.jsonl.gz")}
            (folder / "columns.json").write_text(json.dumps({t: columns.get(t, {}) for t in tables}, indent=1))
            (folder / "manifest.json").write_text(json.dumps(
                {"load_id": load_id, "archived_at": datetime.now(UTC).isoformat(), "records": tables}, indent=1))
            folder.rename(target)
            archived.append(load_id)
        elif load_id not in still_pending:
            shutil.rmtree(folder)  # extracted by a run that failed or died before dlt kept a package
    return archived


def _count(path: Path) -> int:
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        return sum(1 for _ in fh)


def archived_loads(root: Path) -> list[Path]:
    """Archived load folders, oldest first (dlt load ids are unix timestamps)."""
    folders = [p for p in root.glob("*") if p.is_dir() and p.name != PENDING and (p / "manifest.json").exists()]
    return sorted(folders, key=lambda p: Decimal(p.name))


def read_table(folder: Path, table: str) -> Iterator[list[Any]]:
    """The records of `table` in one archived load, in pages, numbers as Decimal/int as they were landed."""
    path = folder / f"{table}.jsonl.gz"
    page: list[Any] = []
    with gzip.open(path, "rt", encoding="utf-8") as fh:
        for line in fh:
            page.append(simplejson.loads(line, use_decimal=True))
            if len(page) == 1000:
                yield page
                page = []
    if page:
        yield page


def columns_of(folder: Path) -> dict[str, Any]:
    path = folder / "columns.json"
    return json.loads(path.read_text()) if path.exists() else {}


def tables_in(folder: Path) -> list[str]:
    return sorted(p.name.removesuffix(".jsonl.gz") for p in folder.glob("*.jsonl.gz"))
