"""The freshness badge: how old the published data is, and a warning that names why when a source is stale, the
last run was partial, or a gate blocked the last publish. Pure functions over the health store's rows
(`ez360.core.health.HealthStore`, see HEALTH_CONTRACT) and the legacy publish status, so tests feed them rows."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from apps.formatting import format_timestamp

STALE_AFTER = timedelta(minutes=180)  # EZ360_SOURCE_STALE_AFTER_MINUTES / EZ360_PUBLISHED_STALE_AFTER_MINUTES


@dataclass(frozen=True)
class Badge:
    level: str  # "ok" | "warning" | "empty"
    text: str
    reasons: tuple[str, ...] = field(default=())


def _age(now: datetime, then: datetime | None) -> str:
    if then is None:
        return "never"
    minutes = int((now - then).total_seconds() // 60)
    if minutes < 60:
        return f"{max(minutes, 0)} min ago"
    if minutes < 48 * 60:
        return f"{minutes // 60} h ago"
    return f"{minutes // (24 * 60)} days ago"


def badge(now: datetime, *, published_at: datetime | None, published_run: str | None,
          latest_run: dict | None = None, sources: list[dict] | None = None,
          legacy_failed_checks: tuple[str, ...] = (), legacy_failed_run: str | None = None,
          source_stale_after: timedelta = STALE_AFTER, published_stale_after: timedelta = STALE_AFTER) -> Badge:
    if published_at is None:
        reasons = _run_reasons(latest_run) + _legacy(legacy_failed_checks, legacy_failed_run)
        return Badge("empty", "Nothing published yet", tuple(reasons))
    reasons: list[str] = []
    if latest_run is not None and latest_run.get("run_id") != published_run:
        reasons += _run_reasons(latest_run)
    reasons += _legacy(legacy_failed_checks, legacy_failed_run)
    for source in sources or []:
        last = source.get("last_success_at")
        if last is None:
            reasons.append(f"source {source['source']} has never loaded"
                           + (f" (last error: {source['last_error']})" if source.get("last_error") else ""))
        elif now - last > source_stale_after:
            reasons.append(f"source {source['source']} is stale: last loaded {format_timestamp(last)}"
                           + (f" (last error: {source['last_error']})" if source.get("last_error") else ""))
    if now - published_at > published_stale_after:
        reasons.append(f"the data was published {_age(now, published_at)}")
    text = f"Data as of {format_timestamp(published_at)} ({_age(now, published_at)})"
    if reasons:
        text += f", from the last good run {published_run}"
    return Badge("warning" if reasons else "ok", text, tuple(dict.fromkeys(reasons)))


def _run_reasons(run: dict | None) -> list[str]:
    if not run:
        return []
    status, run_id = run.get("status"), run.get("run_id")
    blocked = [str(b) for b in (run.get("blocked_by") or [])]
    named = ": " + ", ".join(blocked) if blocked else ""
    if status == "gate_failed":
        return [f"a gate blocked the last publish (run {run_id}){named}"]
    if status == "partial":
        return [f"the last run {run_id} was partial{named}"]
    if status == "failed":
        return [f"the last run {run_id} failed{named or (': ' + run['error'] if run.get('error') else '')}"]
    if status == "canceled":
        return [f"the last run {run_id} was canceled"]
    return []


def _legacy(checks: tuple[str, ...], run_id: str | None) -> list[str]:
    if not run_id:
        return []
    return [f"a gate blocked the last publish (run {run_id}): {', '.join(checks) or 'unknown checks'}"]
