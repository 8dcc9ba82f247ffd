"""Executive overview: KPI tiles with deltas and sparklines, the MRR bridge, AR aging, and revenue by client and
project with drill-down from a chart to its rows; every table exports as CSV and XLSX."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from apps import queries
from apps.exports import export_buttons
from apps.formatting import format_amount
from apps.kpis import KPI_TABLE, tiles
from apps.session import context
from apps.tables import empty_state, loaded, money_column, month_column, originals_note, percent

MRR_STEPS = [("opening_mrr_minor", "Opening"), ("new_mrr_minor", "New"), ("expansion_mrr_minor", "Expansion"),
             ("reactivation_mrr_minor", "Reactivation"), ("contraction_mrr_minor", "Contraction"),
             ("churned_mrr_minor", "Churned"), ("closing_mrr_minor", "Closing")]
FX_STEP = "Exchange rates"
BUCKETS = ["current", "1-30", "31-60", "61-90", "90+"]


def kpi_tiles(ctx) -> None:
    rows = queries.read_or_none(KPI_TABLE, ctx.company_id)
    if rows is None:
        empty_state(KPI_TABLE)
        return
    rows = rows.rename(columns={month_column(rows): "kpi_month"}) if not rows.empty else rows
    if rows.empty:
        st.info(f"No KPIs for {ctx.company.name} yet: they appear once the company has invoices or "
                "subscriptions and the pipeline has run.")
        return
    shown = tiles(rows, ctx.period, ctx.compared_period, ctx.company.base_currency)
    columns = st.columns(5)
    for i, tile in enumerate(shown):
        with columns[i % 5]:
            st.metric(tile.kpi.label, tile.value, tile.delta, delta_color=tile.delta_color, help=tile.help,
                      chart_data=tile.spark or None, chart_type="line", border=True)
    st.caption(f"Deltas compare {ctx.period.label} with {ctx.compared_period.label}. Amounts in "
               f"{ctx.company.base_currency}; ratios and stocks are those of the period's last month.")


def in_base_currency(ctx, rows: pd.DataFrame, columns: list[str], what: str) -> pd.DataFrame:
    """The rows in the company's base currency (the warehouse's `_base_minor` twin of each column), unless the
    header's 'Original currencies' is on; amounts the warehouse had no rate for are named, not silently zero."""
    base_columns = {col: col.replace("_minor", "_base_minor") for col in columns}
    if ctx.show_originals or not set(base_columns.values()) <= set(rows.columns):
        return rows
    converted = rows.copy()
    missing = converted[list(base_columns.values())].isna().any(axis=1)
    if missing.any():
        st.warning(f"{what} in {', '.join(sorted(set(converted.loc[missing, 'currency'])))} has no exchange rate "
                   f"to {ctx.company.base_currency} for this period and is left out; turn on 'Original currencies'.")
    for col, base_col in base_columns.items():
        converted[col] = converted[base_col].fillna(0).astype("int64")
    converted["currency"] = ctx.company.base_currency
    return converted[~missing]


def mrr_bridge(ctx) -> None:
    st.subheader("MRR bridge")
    rows = loaded("rpt_mrr_by_month", ctx.company_id,
                  empty="No recurring revenue yet: the bridge appears once a client has a subscription.")
    if rows is None:
        return
    mcol = month_column(rows)
    months = {pd.Timestamp(m).date() for m in rows[mcol]}
    inside = rows[[pd.Timestamp(m).date() in set(ctx.period.month_starts()) for m in rows[mcol]]]
    if inside.empty:
        st.info(f"No MRR movements in {ctx.period.label} (months with data: "
                f"{', '.join(sorted(m.strftime('%Y-%m') for m in months)[-3:])}).")
        return
    converted = in_base_currency(ctx, inside, [col for col, _ in MRR_STEPS], "MRR")
    in_base, inside = converted is not inside, converted
    # one row per currency and month (a company may bill through several Stripe accounts)
    inside = inside.groupby(["currency", mcol], as_index=False)[[col for col, _ in MRR_STEPS]].sum()
    for currency, group in inside.groupby("currency", sort=True):
        group = group.sort_values(mcol)
        steps = []
        for col, label in MRR_STEPS:
            if col == "opening_mrr_minor":
                value = int(group.iloc[0][col])
            elif col == "closing_mrr_minor":
                value = int(group.iloc[-1][col])
            else:
                value = int(group[col].sum())
            steps.append({"Step": label, "minor": value, "Amount": format_amount(value, str(currency))})
        # in the base currency each month is converted at its own rate: what moved with the rates shows as a step
        fx = steps[-1]["minor"] - sum(step["minor"] for step in steps[:-1])
        if in_base and fx:
            steps.insert(-1, {"Step": FX_STEP, "minor": fx, "Amount": format_amount(fx, str(currency))})
        table = pd.DataFrame(steps)
        running, bars = 0, []
        for step in steps:
            if step["Step"] in ("Opening", "Closing"):
                start, end = 0, step["minor"]
                running = step["minor"]
            else:
                start, end = running, running + step["minor"]
                running = end
            bars.append({"Step": step["Step"], "start": start, "end": end, "Amount": step["Amount"],
                         "kind": "total" if step["Step"] in ("Opening", "Closing")
                         else ("up" if step["minor"] >= 0 else "down")})
        chart = alt.Chart(pd.DataFrame(bars)).mark_bar().encode(
            x=alt.X("Step:N", sort=[step["Step"] for step in steps], title=None),
            y=alt.Y("start:Q", title=f"MRR ({currency}, minor units)"), y2="end:Q",
            color=alt.Color("kind:N", legend=None,
                            scale=alt.Scale(domain=["total", "up", "down"], range=["#4c78a8", "#54a24b", "#e45756"])),
            tooltip=["Step", "Amount"])
        st.altair_chart(chart, width="stretch")
        st.dataframe(table[["Step", "Amount"]], hide_index=True, width="stretch",
                     column_config={"Amount": money_column()})
        export_buttons(table[["Step", "Amount"]], f"mrr-bridge-{currency}-{ctx.period.key}", key=f"mrr-{currency}")


def ar_aging(ctx) -> None:
    st.subheader("AR aging")
    rows = loaded("rpt_ar_aging", ctx.company_id, empty="No open receivables.")
    if rows is None:
        return
    as_of = pd.to_datetime(rows["as_of_date"]).dt.date
    candidates = sorted({d for d in as_of if d <= ctx.period.last_day})
    if not candidates:
        st.info(f"No AR snapshot on or before {ctx.period.last_day}.")
        return
    day = candidates[-1]
    at = in_base_currency(ctx, rows[as_of == day], ["open_minor"], "AR")
    bucket = "aging_bucket" if "aging_bucket" in at else "bucket"
    cells = []
    for cur in sorted(at["currency"].unique()):
        for b in BUCKETS:
            part = at[(at["currency"] == cur) & (at[bucket] == b)]
            minor = int(part["open_minor"].sum())
            cells.append({"Currency": str(cur), "Bucket": b, "Open": format_amount(minor, str(cur)),
                          "Invoices": int(part["invoice_count"].sum()), "minor": minor})
    table = pd.DataFrame(cells)
    chart = alt.Chart(table).mark_bar().encode(
        x=alt.X("Bucket:N", sort=BUCKETS, title="days overdue"), y=alt.Y("minor:Q", title="open (minor units)"),
        color="Currency:N", xOffset="Currency:N", tooltip=["Currency", "Bucket", "Open", "Invoices"])
    st.caption(f"As of {day}")
    st.altair_chart(chart, width="stretch")
    shown = table.drop(columns=["minor"])
    st.dataframe(shown, hide_index=True, width="stretch", column_config={"Open": money_column()})
    export_buttons(shown, f"ar-aging-{day}", key="ar")


ALL = "(all)"


def _labels(ctx, invoices: pd.DataFrame, by: str) -> list[str]:
    if by == "Client":
        if "client_name" in invoices:
            return [str(n) for n in invoices["client_name"]]
        return [f"client {int(c)}" for c in invoices["client_id"]]
    names: dict[int, str] = {}
    catalog = queries.read_or_none("rpt_project_profitability", ctx.company_id, columns=["project_id", "project_name"])
    if catalog is not None:
        names = {int(i): str(n) for i, n in zip(catalog["project_id"], catalog["project_name"], strict=True)}
    return ["(no project)" if pd.isna(p) else names.get(int(p), f"project {int(p)}") for p in invoices["project_id"]]


def _picked_from_chart(event, by: str, options: list[str], key: str) -> None:
    """A click on a bar selects that group in the drill-down box (which also works without a pointer)."""
    chosen = [p.get(by) for p in (event.selection.get("group") or [])] if event else []
    now = chosen[0] if chosen else None
    if now != st.session_state.get(f"{key}_chart"):
        st.session_state[f"{key}_chart"] = now
        st.session_state[key] = now if now in options else ALL


def revenue_drilldown(ctx) -> None:
    st.subheader("Revenue by client and project")
    invoices = queries.read_or_none("fct_invoices", ctx.company_id,
                                    between={"issue_date": (ctx.period.start, ctx.period.end)})
    if invoices is None:
        empty_state("fct_invoices")
        return
    if "is_revenue" in invoices:
        invoices = invoices[invoices["is_revenue"].astype(bool)]
    if invoices.empty:
        st.info(f"No invoices issued in {ctx.period.label}.")
        return
    by = st.radio("Group by", ["Client", "Project"], horizontal=True, key="drill_by")
    base = ctx.company.base_currency
    invoices = invoices.assign(**{"Client": _labels(ctx, invoices, "Client")})
    if "project_id" in invoices:
        invoices = invoices.assign(**{"Project": _labels(ctx, invoices, "Project")})
    elif by == "Project":
        st.info("The published invoices carry no project yet.")
        return
    in_base = "net_base_minor" in invoices and not ctx.show_originals
    value_col = "net_base_minor" if in_base else "net_minor"
    groups = (invoices.groupby([by] + ([] if in_base else ["currency"]), as_index=False)[value_col].sum()
              .rename(columns={value_col: "minor"}))
    groups["Revenue"] = [format_amount(int(m), base if in_base else str(c))
                         for m, c in zip(groups["minor"], groups["currency"] if not in_base else [base] * len(groups),
                                         strict=True)]
    groups = groups.sort_values("minor", ascending=False, kind="stable")
    pick = alt.selection_point(fields=[by], name="group")
    chart = alt.Chart(groups).mark_bar().encode(
        y=alt.Y(f"{by}:N", sort="-x", title=None), x=alt.X("minor:Q", title="net revenue (minor units)"),
        tooltip=[by, "Revenue"],
        opacity=alt.condition(pick, alt.value(1.0), alt.value(0.4))).add_params(pick)
    event = st.altair_chart(chart, width="stretch", on_select="rerun", key=f"chart_{by}", selection_mode="group")
    options = sorted(set(groups[by]))
    key = f"drill_{by.lower()}"
    _picked_from_chart(event, by, options, key)
    if st.session_state.get(key) not in [ALL, *options]:
        st.session_state[key] = ALL
    picked = st.selectbox(f"Drill into a {by.lower()}", [ALL, *options], key=key)
    originals_note(ctx)
    rows = invoices if picked == ALL else invoices[invoices[by] == picked]
    shown = pd.DataFrame({
        "Invoice": rows["invoice_number"].astype(str), "Client": rows["Client"],
        "Project": rows["Project"] if "Project" in rows else "",
        "Issued": pd.to_datetime(rows["issue_date"]).dt.strftime("%Y-%m-%d"), "Status": rows["status"].astype(str),
        "Net": ([format_amount(int(v), base) for v in rows["net_base_minor"]] if in_base else
                [format_amount(int(v), str(c)) for v, c in zip(rows["net_minor"], rows["currency"], strict=True)]),
        "Due (as invoiced)": [format_amount(int(v), str(c)) for v, c in zip(rows["due_minor"], rows["currency"],
                                                                             strict=True)],
    })
    st.dataframe(shown, hide_index=True, width="stretch", column_config={"Net": money_column(),
                                                                         "Due (as invoiced)": money_column()})
    export_buttons(shown, f"invoices-{ctx.period.key}-{picked}", key="invoices")
    projects(ctx)


def projects(ctx) -> None:
    st.subheader("Projects")
    rows = loaded("rpt_project_profitability", ctx.company_id, empty="No projects with billed work yet.")
    if rows is None:
        return
    label = rows["project_name"].astype(str) if "project_name" in rows else [f"project {int(p)}"
                                                                              for p in rows["project_id"]]
    base = "billed_base_minor" in rows and not ctx.show_originals
    currency = [ctx.company.base_currency] * len(rows) if base else [str(c) for c in rows["currency"]]

    def money(column: str) -> list[str]:
        return [format_amount(int(v), c) for v, c in zip(rows[column], currency, strict=True)]

    billed, cost, expense = ((rows["billed_base_minor"], rows["time_cost_base_minor"], rows["expense_base_minor"])
                             if base else (rows["billed_minor"], rows["time_cost_minor"], rows["expense_minor"]))
    shown = pd.DataFrame({
        "Project": label,
        "Billed": money("billed_base_minor" if base else "billed_minor"),
        "Time cost": money("time_cost_base_minor" if base else "time_cost_minor"),
        "Expenses": money("expense_base_minor" if base else "expense_minor"),
        "Profit": [format_amount(int(b) - int(t) - int(e), c)
                   for b, t, e, c in zip(billed, cost, expense, currency, strict=True)],
        "Margin": [percent(m) for m in rows["margin_ratio"]],
    })
    st.dataframe(shown, hide_index=True, width="stretch",
                 column_config={c: money_column() for c in ("Billed", "Time cost", "Expenses", "Profit")})
    export_buttons(shown, "project-profitability", key="projects")


def page() -> None:
    ctx = context()
    st.title("Executive overview")
    kpi_tiles(ctx)
    left, right = st.columns(2)
    with left:
        mrr_bridge(ctx)
    with right:
        ar_aging(ctx)
    revenue_drilldown(ctx)


page()
