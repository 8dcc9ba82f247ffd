"""What one load did, as plain data: the orchestration turns it into asset metadata and a run status."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from ingest.http import HttpStats


@dataclass
class SourceRun:
    """Collected while a source extracts: counters its resources update, errors that make the load partial."""

    source: str
    http: HttpStats = field(default_factory=HttpStats)
    quarantined: dict[str, int] = field(default_factory=dict)  # reason -> records
    errors: dict[str, str] = field(default_factory=dict)  # what failed (doctype, object type, account) -> why
    notes: dict[str, int] = field(default_factory=dict)  # countable facts worth a look, e.g. manual payouts
    succeeded: set[str] = field(default_factory=set)  # parts that loaded whole (ERPNext doctypes)

    def quarantine(self, reason: str) -> None:
        self.quarantined[reason] = self.quarantined.get(reason, 0) + 1

    def fail(self, what: str, why: str) -> None:
        self.errors[what] = why

    def note(self, what: str, count: int = 1) -> None:
        self.notes[what] = self.notes.get(what, 0) + count


@dataclass
class LoadReport:
    """One source's load into its raw schema.

    `partial` is True when some part (an ERPNext doctype, a Stripe account or object type) failed while the
    rest loaded: such a load must never be shown as a plain success. A load that fails as a whole raises
    `IngestFailed` instead, carrying a report of what happened before the failure.
    """

    source: str
    schema: str
    row_counts: dict[str, int] = field(default_factory=dict)  # table -> rows landed by this load
    pages: int = 0
    requests: int = 0
    retries: int = 0
    retry_reasons: dict[str, int] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)  # step -> seconds (extract, normalize, load, total)
    quarantined: dict[str, int] = field(default_factory=dict)  # reason -> records
    errors: dict[str, str] = field(default_factory=dict)
    notes: dict[str, int] = field(default_factory=dict)
    load_ids: list[str] = field(default_factory=list)
    replayed: bool = False

    @property
    def partial(self) -> bool:
        return bool(self.errors)

    @property
    def rows(self) -> int:
        return sum(self.row_counts.values())

    @property
    def rows_per_second(self) -> float:
        seconds = self.timings.get("total", 0.0)
        return self.rows / seconds if seconds > 0 else 0.0

    def as_dict(self) -> dict[str, Any]:
        return {**asdict(self), "partial": self.partial, "rows": self.rows}

    def summary(self) -> str:
        state = "PARTIAL" if self.partial else "ok"
        text = (f"{self.source}: {state}, {self.rows} rows into {self.schema} "
                f"({self.pages} pages, {self.requests} requests, {self.retries} retries, "
                f"{self.timings.get('total', 0.0):.1f}s)")
        if self.quarantined:
            text += f"; quarantined {sum(self.quarantined.values())} ({', '.join(sorted(self.quarantined))})"
        for what, why in sorted(self.errors.items()):
            text += f"\n  failed {what}: {why}"
        return text


class IngestFailed(RuntimeError):
    """The load failed as a whole; nothing of this load was written. `report` says what was done before."""

    def __init__(self, message: str, report: LoadReport) -> None:
        super().__init__(message)
        self.report = report
