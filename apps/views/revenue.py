"""Revenue by company and month, per currency (the published revenue mart), for the companies the viewer may
open: their company, or every published company for a platform admin."""

from __future__ import annotations

import streamlit as st

from apps import queries
from apps.data import HOW_TO_PUBLISH, revenue_decimals
from apps.exports import export_buttons
from apps.formatting import format_amount, gross_totals_by_currency, monthly_chart_data, monthly_table
from apps.session import context

PAGE_TITLE = "Revenue by company and month"
TABLE = "rpt_revenue_by_company_month"
MANY = 6  # more companies than this start with one section (each section draws a chart per currency)


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
        table = monthly_table(rows)
        st.dataframe(table, hide_index=True, width="stretch",
                     column_config={"Net revenue": money, "Tax": money, "Gross revenue": money})
        export_buttons(table, f"revenue-{name}", key=f"rev-{name}")


def page() -> None:
    ctx = context()
    st.title(PAGE_TITLE)
    scope = queries.PLATFORM if ctx.viewer.platform_admin else ctx.company_id
    revenue = queries.read_or_none(TABLE, scope, order_by=["company_name", "company_id", "revenue_month",
                                                           "currency"])
    if revenue is None:
        st.info(f"Nothing has been published yet. {HOW_TO_PUBLISH} "
                "The dashboard shows data once a run has passed its quality gate.")
        return
    if revenue.empty:
        st.info("The last published run contains no revenue for this company yet: no invoice has been sent.")
        return
    revenue = revenue_decimals(revenue)
    names = dict(zip(revenue["company_id"].astype(int), revenue["company_name"].astype(str), strict=False))
    selected = list(names)
    if len(names) > 1:  # platform admins: every company up to MANY, else the company chosen in the switcher
        default = list(names) if len(names) <= MANY else [i for i in names if i == ctx.company_id][:1]
        selected = st.multiselect("Companies", options=list(names), default=default, format_func=names.get)
        if not selected:
            st.info("Select at least one company to see its revenue.")
            return
    for company_id in selected:
        _company_section(names[company_id], revenue[revenue["company_id"] == company_id])


page()
