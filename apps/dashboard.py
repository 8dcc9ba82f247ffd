"""EZ360 dashboards (Streamlit): revenue by company and month, read from the PUBLISHED snapshot only.

Run: streamlit run apps/dashboard.py --server.address 127.0.0.1 --server.headless true \
         --browser.gatherUsageStats false        (settings come from EZ360_* variables / .env)
"""

from __future__ import annotations

import streamlit as st

from apps.data import HOW_TO_PUBLISH, NothingPublishedYet, PublishedData
from apps.formatting import (
    format_amount,
    format_timestamp,
    gross_totals_by_currency,
    monthly_chart_data,
    monthly_table,
)
from ez360.core.observability import init_sentry
from ez360.core.settings import get_settings

PAGE_TITLE = "Revenue by company and month"
init_sentry(get_settings(), "dashboards")


@st.cache_resource
def _published_data() -> PublishedData:
    # Holds no DuckDB file open (each read opens and closes the snapshot); for PostgreSQL, one engine.
    return PublishedData.from_settings(get_settings())


def _gate_warning(status) -> None:
    checks = ", ".join(status.failed_checks) or "unknown checks"
    if status.has_published:
        st.warning(
            f"The latest pipeline run `{status.last_attempt_run_id}` "
            f"({format_timestamp(status.last_attempt_at)}) did not pass: {checks}. "
            f"The figures below are from the last good run `{status.last_published_run_id}` "
            f"published {format_timestamp(status.last_published_at)}.",
            icon="⚠️",
        )
    else:
        st.warning(
            f"The latest pipeline run `{status.last_attempt_run_id}` did not pass: {checks}. "
            "Nothing has been published.",
            icon="⚠️",
        )


def _company_section(name: str, rows) -> None:
    with st.container(border=True):
        st.subheader(name)
        totals = gross_totals_by_currency(rows)
        for column, (currency, exp, total) in zip(st.columns(max(len(totals), 1)), totals, strict=False):
            with column:
                st.metric(f"Gross revenue ({currency})", format_amount(total, currency, exp))
                series = f"Gross revenue ({currency})"
                st.bar_chart(monthly_chart_data(rows, currency), x="Month", y=series, x_label="",
                             y_label=currency, height=200)
        money = st.column_config.TextColumn(alignment="right")
        st.dataframe(monthly_table(rows), hide_index=True, width="stretch",
                     column_config={"Net revenue": money, "Tax": money, "Gross revenue": money})


def main() -> None:
    st.set_page_config(page_title=f"EZ360 · {PAGE_TITLE}", layout="wide")
    st.title(PAGE_TITLE)
    data = _published_data()
    try:
        status = data.status()
    except Exception as exc:  # e.g. the PostgreSQL warehouse is unreachable
        st.error(f"Cannot read the published data at {data.location}: {exc}")
        return
    if status.latest_attempt_failed:
        _gate_warning(status)
    if not status.has_published:
        st.info(f"Nothing has been published yet. {HOW_TO_PUBLISH} "
                "The dashboard shows data once a run has passed its quality gate.")
        return
    st.caption(f"Last published {format_timestamp(status.last_published_at)} · "
               f"run `{status.last_published_run_id}`")
    try:
        companies = data.companies()
    except NothingPublishedYet as exc:
        st.info(str(exc))
        return
    if companies.empty:
        st.info("The last published run contains no revenue yet: no company has an invoice.")
        return
    names = {int(i): str(n) for i, n in zip(companies["company_id"], companies["company_name"], strict=True)}
    selected = st.multiselect("Companies", options=list(names), default=list(names), format_func=names.get)
    if not selected:
        st.info("Select at least one company to see its revenue.")
        return
    revenue = data.revenue_by_company_month(selected)
    for company_id in selected:
        rows = revenue[revenue["company_id"] == company_id]
        if rows.empty:
            continue
        _company_section(names[company_id], rows)


main()
