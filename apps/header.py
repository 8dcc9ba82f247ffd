"""The header on every page: company, period and comparison (kept in the URL), base currency with the original
currencies on demand, and the freshness badge."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta

import streamlit as st

from apps import queries
from apps.freshness import Badge, badge
from apps.periods import parse_period, recent_months
from apps.session import COMPARISONS, RunContext
from ez360.core.settings import get_settings


def current_badge(now: datetime) -> Badge:
    settings = get_settings()
    limits = {"source_stale_after": timedelta(minutes=settings.source_stale_after_minutes),
              "published_stale_after": timedelta(minutes=settings.published_stale_after_minutes)}
    status = queries.current_status()
    health = queries.current_health()
    legacy_checks = status.failed_checks if status.latest_attempt_failed else ()
    legacy_run = status.last_attempt_run_id if status.latest_attempt_failed else None
    if health and health.get("last_published"):
        last = health["last_published"]
        runs = health.get("runs") or []
        return badge(now, published_at=last.get("published_at"), published_run=last.get("run_id"),
                     latest_run=runs[0] if runs else None, sources=health.get("sources"), **limits)
    runs = (health or {}).get("runs") or []
    return badge(now, published_at=status.last_published_at, published_run=status.last_published_run_id,
                 latest_run=runs[0] if runs else None, sources=(health or {}).get("sources"),
                 legacy_failed_checks=legacy_checks, legacy_failed_run=legacy_run, **limits)


def period_controls(ctx: RunContext, today: date) -> None:
    """Period, comparison and the originals toggle; each change is written back to the URL."""
    choices = recent_months(today, 24)
    quarters = sorted({f"{m[:4]}-Q{(int(m[5:7]) - 1) // 3 + 1}" for m in choices})
    years = sorted({m[:4] for m in choices})
    options = list(reversed(choices)) + list(reversed(quarters)) + list(reversed(years))
    if ctx.period.key not in options:
        options.insert(0, ctx.period.key)
    cols = st.columns([2, 2, 2])
    period = cols[0].selectbox("Period", options, index=options.index(ctx.period.key),
                               format_func=lambda k: parse_period(k, today).label, key="hdr_period")
    compare_keys = list(COMPARISONS)
    comparison = cols[1].selectbox("Compare with", compare_keys, index=compare_keys.index(ctx.comparison),
                                   format_func=COMPARISONS.get, key="hdr_compare")
    originals = cols[2].toggle("Original currencies", value=ctx.show_originals, key="hdr_originals",
                               help=f"Amounts are in {ctx.company.base_currency}, the company's base currency. "
                                    "Turn on to see each amount in the currency it was invoiced or paid in.")
    changed = (period != ctx.period.key or comparison != ctx.comparison or originals != ctx.show_originals)
    st.query_params["period"] = period
    st.query_params["compare"] = comparison
    if originals:
        st.query_params["originals"] = "1"
    elif "originals" in st.query_params:
        del st.query_params["originals"]
    if changed:
        st.rerun()


def render(ctx: RunContext, now: datetime | None = None) -> None:
    now = now or datetime.now(UTC)
    top = st.columns([3, 2])
    with top[0]:
        st.markdown(f"**{ctx.company.name}** · {ctx.period.label} vs "
                    f"{ctx.compared_period.label} ({COMPARISONS[ctx.comparison]}) · base currency "
                    f"**{ctx.company.base_currency}**")
    with top[1]:
        current = current_badge(now)
        if current.level == "ok":
            st.success(current.text)
        elif current.level == "empty":
            st.info(current.text + ("; " + "; ".join(current.reasons) if current.reasons else ""))
        else:
            st.warning(current.text + ". Check: " + "; ".join(current.reasons))
    period_controls(ctx, now.date())
