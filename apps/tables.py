"""Small display helpers shared by the pages: empty states that say what to do, money columns, ratios."""

from __future__ import annotations

from decimal import Decimal

import pandas as pd
import streamlit as st

from apps.data import HOW_TO_PUBLISH


def empty_state(table: str) -> None:
    from apps.queries import current_status

    if not current_status().has_published:
        st.info(f"Nothing has been published yet. {HOW_TO_PUBLISH} The dashboards show data once a run has passed "
                "its quality gates.")
        return
    st.info(f"This part needs the published table `{table}`, which the last published run does not have yet. "
            f"{HOW_TO_PUBLISH} If it still does not appear, the warehouse build does not produce it: tell the "
            "data team.")


def month_column(frame: pd.DataFrame) -> str:
    for name in ("kpi_month", "month", "revenue_month", "mrr_month"):
        if name in frame:
            return name
    for name in frame.columns:
        if str(name).endswith("_month"):
            return str(name)
    raise KeyError("no month column")


def money_column() -> st.column_config.Column:
    return st.column_config.TextColumn(alignment="right")


def percent(value) -> str:
    if value is None or pd.isna(value):
        return "n/a"
    return f"{(Decimal(str(value)) * 100).quantize(Decimal('0.1'))} %"


def originals_note(ctx) -> None:
    if ctx.show_originals:
        st.caption("Amounts in the currency each invoice was issued in (turn off 'Original currencies' for "
                   f"{ctx.company.base_currency}).")
    else:
        st.caption(f"Amounts in {ctx.company.base_currency}, converted at each invoice's date "
                   "(turn on 'Original currencies' to see them as invoiced).")


def loaded(table: str, company, *, empty: str, done: bool = False, **kwargs) -> pd.DataFrame | None:
    """A section's rows, or None after saying why there are none: nothing published / no such table yet (with
    what to run), or `empty` (as good news when `done`, e.g. nothing quarantined)."""
    from apps import queries

    rows = queries.read_or_none(table, company, **kwargs)
    if rows is None:
        empty_state(table)
        return None
    if rows.empty:
        (st.success if done else st.info)(empty)
        return None
    return rows
