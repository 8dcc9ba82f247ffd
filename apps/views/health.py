"""Data health: per source freshness and last error, the last runs, gate results with failing samples,
quarantine counts by reason, and unmapped source companies. Read from the pipeline's health store
(HEALTH_CONTRACT) and the published health marts. Sample keys of failing rows and unmapped source companies
may name other tenants' records, so they are shown to platform admins only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import streamlit as st

from apps import queries
from apps.exports import export_buttons
from apps.formatting import format_timestamp
from apps.session import context
from apps.tables import loaded
from ez360.core.settings import get_settings


def sources(health: dict, now: datetime) -> None:
    st.subheader("Sources")
    rows = health.get("sources") or []
    if not rows:
        st.info("No source has been loaded yet. Run `ez360 pipeline run`.")
        return
    stale_after = timedelta(minutes=get_settings().source_stale_after_minutes)
    table = pd.DataFrame([{
        "Source": r["source"],
        "Last loaded": format_timestamp(r.get("last_success_at")),
        "Fresh": ("stale" if r.get("last_success_at") is None or now - r["last_success_at"] > stale_after
                  else "fresh"),
        "Rows (last load)": r.get("last_rows_loaded"),
        "Quarantined (last load)": r.get("last_quarantined"),
        "Last error": (f"{format_timestamp(r.get('last_error_at'))}: {r['last_error']}" if r.get("last_error")
                       else ""),
    } for r in rows])
    st.dataframe(table, hide_index=True, width="stretch")


def runs(health: dict) -> None:
    st.subheader("Last runs")
    rows = health.get("runs") or []
    if not rows:
        st.info("No pipeline run recorded yet.")
        return
    table = pd.DataFrame([{
        "Run": r["run_id"], "Trigger": r.get("trigger") or "", "Started": format_timestamp(r.get("started_at")),
        "Finished": format_timestamp(r.get("finished_at")) if r.get("finished_at") else "running",
        "Status": r.get("status") or "", "Published": "yes" if r.get("published") else "no",
        "Blocked by": ", ".join(r.get("blocked_by") or []), "Error": r.get("error") or "",
    } for r in rows])
    st.dataframe(table, hide_index=True, width="stretch")
    export_buttons(table, "pipeline-runs", key="runs")


def gates(health: dict, platform_admin: bool) -> None:
    st.subheader("Gate results")
    rows = health.get("gates") or []
    if not rows:
        st.info("No gate has run yet.")
        return
    table = pd.DataFrame([{
        "Gate": g["check_name"], "Table": g.get("table_name") or "", "Layer": g.get("layer") or "",
        "Passed": "yes" if g.get("passed") else "NO", "Failed expectations": g.get("failed_count") or 0,
        "Rows": g.get("row_count"), "Checked": format_timestamp(g.get("checked_at")),
    } for g in rows])
    st.dataframe(table, hide_index=True, width="stretch")
    for g in rows:
        if g.get("passed"):
            continue
        with st.expander(f"Failing: {g['check_name']} on {g.get('table_name')}", expanded=True):
            for failure in g.get("failures") or []:
                line = f"- `{failure.get('expectation')}`"
                if failure.get("column"):
                    line += f" on `{failure['column']}`"
                if failure.get("unexpected_count") is not None:
                    line += f": {failure['unexpected_count']} unexpected"
                if failure.get("details"):
                    line += f" ({failure['details']})"
                st.markdown(line)
                if platform_admin and failure.get("sample_keys"):
                    st.caption("Sample keys: " + ", ".join(str(k) for k in failure["sample_keys"][:20]))
            if not platform_admin:
                st.caption("Sample rows are shown to platform admins (they may belong to other companies).")


def quarantine(ctx) -> None:
    st.subheader("Quarantine")
    if not ctx.viewer.platform_admin:
        health = queries.current_health() or {}
        total = sum(int(r.get("last_quarantined") or 0) for r in health.get("sources") or [])
        st.write(f"{total} records quarantined in the last loads. Platform admins see them by reason.")
        return
    rows = loaded("rpt_quarantine_counts", queries.PLATFORM, empty="Nothing quarantined.", done=True)
    if rows is None:
        return
    st.dataframe(rows, hide_index=True, width="stretch")
    export_buttons(rows, "quarantine-counts", key="quarantine")


def unmapped(ctx) -> None:
    st.subheader("Unmapped source companies")
    if not ctx.viewer.platform_admin:
        st.caption("Source accounts that map to no EZ360 company are listed for platform admins.")
        return
    rows = loaded("rpt_unmapped_source_companies", queries.PLATFORM,
                  empty="Every Stripe account and ERPNext company maps to an EZ360 company.", done=True)
    if rows is None:
        return
    st.warning(f"{len(rows)} source companies map to no EZ360 company: their rows are kept out of every "
               "company's figures. Map them with EZ360_STRIPE_COMPANY_MAP / EZ360_ERPNEXT_COMPANY_MAP.")
    st.dataframe(rows, hide_index=True, width="stretch")


def page() -> None:
    ctx = context()
    st.title("Data health")
    health = queries.current_health()
    if health is None:
        st.info("The pipeline's health store is not installed in this build; the badge above uses the publish "
                "log only.")
    elif health.get("error"):
        st.error(f"The pipeline's health store could not be read: {health['error']}")
    else:
        now = datetime.now(UTC)
        sources(health, now)
        runs(health)
        gates(health, ctx.viewer.platform_admin)
    quarantine(ctx)
    unmapped(ctx)


page()
