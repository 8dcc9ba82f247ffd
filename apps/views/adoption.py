"""Product adoption: DAU/WAU/MAU and stickiness, feature adoption, the onboarding funnel, activation, a weekly
retention cohort heatmap and the user lifecycle; for the company, or platform-wide for platform admins."""

from __future__ import annotations

import altair as alt
import pandas as pd
import streamlit as st

from apps import queries
from apps.exports import export_buttons
from apps.session import context
from apps.tables import empty_state, loaded, month_column, percent


def _date_column(frame: pd.DataFrame, *names: str) -> str:
    for name in names:
        if name in frame:
            return name
    for name in frame.columns:
        if str(name).endswith(("_date", "_day", "_week", "_on")):
            return str(name)
    raise KeyError(f"no date column among {list(frame.columns)}")


def _scope(ctx, platform: bool):
    return queries.PLATFORM if platform else ctx.company_id


def active_users(ctx, platform: bool) -> None:
    st.subheader("Active users")
    rows = queries.read_or_none("rpt_active_users_daily", _scope(ctx, platform))
    if rows is None:
        empty_state("rpt_active_users_daily")
        return
    if platform:
        rows = rows[rows["company_id"].isna()] if rows["company_id"].isna().any() else rows
    if rows.empty:
        st.info("No sign-ins or actions recorded yet.")
        return
    day = _date_column(rows, "activity_date", "day", "date")
    rows = rows.assign(**{day: pd.to_datetime(rows[day])}).sort_values(day)
    inside = rows[(rows[day].dt.date >= ctx.period.start) & (rows[day].dt.date < ctx.period.end)]
    if inside.empty:
        st.info(f"No activity in {ctx.period.label}.")
        return
    last = inside.iloc[-1]
    cols = st.columns(4)
    cols[0].metric("DAU", f"{int(last['dau']):,}", help="Users active on the period's last day with activity")
    cols[1].metric("WAU", f"{int(last['wau']):,}", help="Users active in the 7 days to that day")
    cols[2].metric("MAU", f"{int(last['mau']):,}", help="Users active in the 30 days to that day")
    cols[3].metric("Stickiness", percent(last["stickiness_ratio"]), help="DAU / MAU")
    long = inside.melt(id_vars=[day], value_vars=["dau", "wau", "mau"], var_name="measure", value_name="users")
    st.altair_chart(alt.Chart(long).mark_line().encode(x=alt.X(f"{day}:T", title=None), y="users:Q",
                                                       color="measure:N"), width="stretch")


def feature_adoption(ctx, platform: bool) -> None:
    st.subheader("Feature adoption")
    rows = loaded("rpt_feature_adoption", _scope(ctx, platform), empty="No feature usage yet.")
    if rows is None:
        return
    mcol = month_column(rows)
    months = set(ctx.period.month_starts())
    inside = rows[[pd.Timestamp(m).date() in months for m in rows[mcol]]]
    if inside.empty:
        st.info(f"No feature usage in {ctx.period.label}.")
        return
    feature = "feature" if "feature" in inside else "event_name"
    table = (inside.groupby(feature, as_index=False).agg(users=("users", "max"),
                                                          adoption=("adoption_ratio", "max"))
             .sort_values("users", ascending=False))
    shown = pd.DataFrame({"Feature": table[feature].astype(str), "Users": table["users"].astype(int),
                          "Adoption": [percent(v) for v in table["adoption"]]})
    st.dataframe(shown, hide_index=True, width="stretch")
    export_buttons(shown, f"feature-adoption-{ctx.period.key}", key="features")


def funnel(ctx, platform: bool) -> None:
    st.subheader("Onboarding funnel and activation")
    rows = queries.read_or_none("rpt_onboarding_funnel", _scope(ctx, platform))
    if rows is None:
        empty_state("rpt_onboarding_funnel")
    elif rows.empty:
        st.info("No onboarding steps recorded yet.")
    else:
        step = "step_key" if "step_key" in rows else "step"
        reached = rows.assign(reached=rows["is_reached"].fillna(False).astype(bool).astype(int)
                              if "is_reached" in rows else rows["reached_on"].notna().astype(int))
        grouped = reached.groupby([step, "step_order"], as_index=False)["reached"].sum().sort_values("step_order")
        st.altair_chart(alt.Chart(grouped).mark_bar().encode(
            y=alt.Y(f"{step}:N", sort=list(grouped[step]), title=None),
            x=alt.X("reached:Q", title="companies that reached the step" if platform else "reached")),
            width="stretch")
        shown = pd.DataFrame({"Step": grouped[step].astype(str), "Reached": grouped["reached"].astype(int)})
        st.dataframe(shown, hide_index=True, width="stretch")
    act = queries.read_or_none("rpt_activation", _scope(ctx, platform))
    if act is None:
        empty_state("rpt_activation")
    elif not act.empty:
        days = [int(d) for d in act["days_to_activation"] if not pd.isna(d)]
        activated = int(act["is_activated"].fillna(False).astype(bool).sum()) if "is_activated" in act else len(days)
        c1, c2 = st.columns(2)
        c1.metric("Activated", f"{activated} of {len(act)}", help="companies that sent a first invoice")
        if days:
            ordered = sorted(days)
            c2.metric("Median days to activation", f"{ordered[len(ordered) // 2]}")


def cohorts(ctx, platform: bool) -> None:
    st.subheader("Weekly retention cohorts")
    rows = loaded("rpt_retention_cohorts_weekly", _scope(ctx, platform),
                  empty="No cohorts yet: they start with the first week of sign-ins.")
    if rows is None:
        return
    grouped = rows.groupby(["cohort_week", "week_offset"], as_index=False)[["cohort_users", "retained_users"]].sum()
    grouped["retention"] = [r / c if c else 0.0 for r, c in zip(grouped["retained_users"], grouped["cohort_users"],
                                                               strict=True)]
    grouped["cohort"] = pd.to_datetime(grouped["cohort_week"]).dt.strftime("%Y-%m-%d")
    grouped["label"] = [percent(v) for v in grouped["retention"]]
    heat = alt.Chart(grouped).mark_rect().encode(
        x=alt.X("week_offset:O", title="weeks since first activity"), y=alt.Y("cohort:O", title="cohort week"),
        color=alt.Color("retention:Q", scale=alt.Scale(domain=[0, 1]), legend=alt.Legend(format="%")),
        tooltip=["cohort", "week_offset", "cohort_users", "retained_users", "label"])
    st.altair_chart(heat, width="stretch")


def lifecycle(ctx, platform: bool) -> None:
    st.subheader("User lifecycle")
    rows = loaded("rpt_user_lifecycle_weekly", _scope(ctx, platform), empty="No users yet.")
    if rows is None:
        return
    week = _date_column(rows, "week", "week_start")
    measures = [c for c in ("new_users", "returning_users", "resurrected_users", "dormant_users") if c in rows]
    grouped = rows.groupby(week, as_index=False)[measures].sum()
    long = grouped.melt(id_vars=[week], value_vars=measures, var_name="state", value_name="users")
    st.altair_chart(alt.Chart(long).mark_bar().encode(x=alt.X(f"{week}:T", title=None), y="users:Q",
                                                      color="state:N"), width="stretch")
    export_buttons(grouped, "user-lifecycle", key="lifecycle")


def page() -> None:
    ctx = context()
    st.title("Product adoption")
    platform = False
    if ctx.viewer.platform_admin:
        platform = st.toggle("Platform-wide (every company)", key="adoption_platform",
                             value=st.query_params.get("scope") == "platform")
        if platform:
            st.query_params["scope"] = "platform"
        elif "scope" in st.query_params:
            del st.query_params["scope"]
    st.caption("Platform-wide" if platform else ctx.company.name)
    active_users(ctx, platform)
    feature_adoption(ctx, platform)
    funnel(ctx, platform)
    cohorts(ctx, platform)
    lifecycle(ctx, platform)


page()
