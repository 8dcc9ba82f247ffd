"""`ez360 pipeline status`: last runs, each source's freshness, gate results, what is published and when."""

from __future__ import annotations

from datetime import UTC, datetime

from rich.console import Console
from rich.table import Table

from ez360.core.health import HealthStore


def _when(value: datetime | None) -> str:
    if value is None:
        return "never"
    age = datetime.now(UTC) - value
    minutes = int(age.total_seconds() // 60)
    ago = f"{minutes} min ago" if minutes < 120 else f"{minutes // 60} h ago"
    return f"{value.strftime('%Y-%m-%d %H:%M:%S')} UTC ({ago})"


def _seconds(stages: dict | None) -> str:
    return ", ".join(f"{k} {v:.1f}s" for k, v in sorted((stages or {}).items())) or "-"


def render_status(store: HealthStore, console: Console, runs: int = 10) -> None:
    published = store.last_published()
    if published:
        tables = ", ".join(f"{t} ({n} rows)" for t, n in sorted((published["published_tables"] or {}).items()))
        console.print(f"[bold]published:[/bold] run {published['run_id']} at {_when(published['published_at'])}: "
                      f"{tables}")
    else:
        console.print("[bold]published:[/bold] nothing yet")

    recent = store.latest_runs(runs)
    table = Table("run", "trigger", "started", "status", "blocked by / error", "stages", title="last runs")
    for run in recent:
        colour = {"published": "green", "succeeded": "green", "running": "cyan"}.get(run["status"], "red")
        why = "; ".join(run["blocked_by"] or []) or (run["error"] or "")
        table.add_row(run["run_id"][:8], run["trigger"] or "", _when(run["started_at"]),
                      f"[{colour}]{run['status']}[/{colour}]", why, _seconds(run["stage_seconds"]))
    console.print(table)

    sources = Table("source", "last successful load", "rows", "quarantined", "last error", title="sources")
    errors = []
    for source in store.source_status():
        failed_at = _when(source["last_error_at"]) if source["last_error_at"] else ""
        sources.add_row(source["source"], _when(source["last_success_at"]), str(source["last_rows_loaded"] or 0),
                        str(source["last_quarantined"] or 0), failed_at)
        if source["last_error_at"]:
            errors.append(f"[red]{source['source']}[/red] last error: {source['last_error']}")
    console.print(sources)
    for line in errors:  # whole, not cropped to a table cell
        console.print(line)

    gates = store.gate_results(recent[0]["run_id"]) if recent else []
    if not gates:
        gates = store.gate_results()
    failed = [g for g in gates if not g["passed"]]
    console.print(f"[bold]gates[/bold] (run {gates[0]['run_id'][:8] if gates else '-'}): "
                  f"{len(gates) - len(failed)} passed, {len(failed)} failed")
    for gate in failed:
        console.print(f"[red]FAILED[/red] {gate['check_name']} on {gate['table_name']} "
                      f"({gate['row_count']} rows)")
        for failure in gate["failures"] or []:
            column = f" [{failure['column']}]" if failure.get("column") else ""
            count = f"{failure['unexpected_count']} failing rows, " if failure.get("unexpected_count") else ""
            keys = ", ".join(failure.get("sample_keys") or []) or "-"
            console.print(f"  - {failure['expectation']}{column}: {count}sample keys {keys}")
