"""Finance reconciliation workbench: counts and amounts by pair and status, a filtered queue, an item beside its
ranked candidates, decisions written through the operational API (append-only, audited) and shown at once as
pending, and the Stripe payout view (balance transactions by reporting category, net check, bank line)."""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pandas as pd
import streamlit as st

from apps import queries
from apps.exports import export_buttons
from apps.formatting import format_amount
from apps.ops_api import ApiRefusal, OpsApi
from apps.reconcile import (
    REASONS,
    QueueFilter,
    candidate_table,
    decisions_published_until,
    filter_queue,
    parse_amount,
    payout_check,
    pending_overlay,
    queue_table,
    summary,
)
from apps.session import context, session_cookie
from apps.tables import empty_state, loaded, money_column
from ez360.core.settings import get_settings

ITEMS, CANDIDATES = "fct_reconciliation_items", "fct_reconciliation_candidates"


def _api(ctx) -> OpsApi:
    settings = get_settings()
    return OpsApi(settings, session_cookie(settings) or "", ctx.viewer.csrf_token)


def show_summary(items: pd.DataFrame) -> None:
    counts, amounts = summary(items)
    st.dataframe(counts, width="stretch")
    with st.expander("Amounts by pair, status and currency"):
        st.dataframe(amounts, hide_index=True, width="stretch",
                     column_config={"Amount": money_column(), "Difference": money_column()})
        export_buttons(amounts, "reconciliation-summary", key="rec-summary")


def _decisions(ctx) -> tuple[list[dict], str | None]:
    if not ctx.company.may_resolve:
        return [], None
    try:
        return _api(ctx).resolutions(ctx.company_id), None
    except ApiRefusal as exc:
        return [], f"Recent decisions could not be read from the operational app: {exc}"


def queue(ctx) -> pd.DataFrame | None:
    items = queries.read_or_none(ITEMS, ctx.company_id, order_by=["event_date", "item_key"])
    if items is None:
        empty_state(ITEMS)
        return None
    if items.empty:
        st.info("No reconciliation items yet.")
        return None
    show_summary(items)
    st.subheader("Queue")
    decisions, problem = _decisions(ctx)
    if problem:
        st.warning(problem)
    since = decisions_published_until(queries.current_health(), queries.current_status().last_published_at)
    items = pending_overlay(items, decisions, since)
    with st.container(border=True):
        c1, c2, c3 = st.columns(3)
        pairs = c1.multiselect("Pair", sorted(items["pair"].unique()), key="q_pair")
        statuses = c2.multiselect("Status", sorted(items["effective_status"].unique()), key="q_status")
        sources = c3.multiselect("Source", sorted(set(items["left_source"]) | set(items["right_source"].dropna())),
                                 key="q_source")
        c4, c5, c6 = st.columns(3)
        age = c4.number_input("At least this many days old", min_value=0, max_value=3650, value=0, step=1,
                              key="q_age")
        amount_text = c5.text_input("Amount at least (in the item's currency)", value="", key="q_amount")
        open_only = c6.toggle("Open items only", value=True, key="q_open")
    minimum = Decimal(0)
    if amount_text.strip():
        try:
            minimum = parse_amount(amount_text)
        except ValueError as exc:
            st.warning(f"Amount filter ignored: {exc}")
    shown = filter_queue(items, QueueFilter(tuple(pairs), tuple(statuses), tuple(sources), int(age), minimum,
                                            open_only), datetime.now(UTC).date())
    with st.container(key="queue"):
        st.caption(f"{len(shown)} of {len(items)} items")
        table = queue_table(shown)
        st.dataframe(table, hide_index=True, width="stretch",
                     column_config={"Amount": money_column(), "Difference": money_column()})
        export_buttons(table, "reconciliation-queue", key="rec-queue")
    return shown


def item_detail(ctx, shown: pd.DataFrame) -> None:
    if shown is None or shown.empty:
        return
    st.subheader("Item and candidates")
    keys = list(shown["item_key"].astype(str))
    key = st.selectbox("Item", keys, key="q_item")
    item = shown[shown["item_key"] == key].iloc[0]
    left, right = st.columns(2)
    with left:
        st.markdown(f"**{item['pair']}** · status **{item['effective_status']}**"
                    + (f" · {item['pending']}" if item.get("pending") else ""))
        st.write(f"{item['left_source']} `{item['left_id']}` · {pd.Timestamp(item['event_date']).date()} · "
                 f"{format_amount(int(item['amount_minor']), str(item['currency']))}")
        if not pd.isna(item.get("right_id")):
            st.write(f"matched to {item['right_source']} `{item['right_id']}`"
                     + ("" if pd.isna(item.get("other_amount_minor")) else
                        f" · {format_amount(int(item['other_amount_minor']), str(item['currency']))}"))
        if not pd.isna(item.get("difference_minor")) and int(item["difference_minor"]):
            st.write(f"difference {format_amount(int(item['difference_minor']), str(item['currency']))}")
    candidates = queries.read_or_none(CANDIDATES, ctx.company_id, equals={"item_key": key},
                                      order_by=["candidate_rank"])
    with right:
        if candidates is None or candidates.empty:
            st.info("No candidates: nothing on the other side is close in amount, date, reference or customer.")
            cand_ids: list[str] = []
        else:
            st.dataframe(candidate_table(candidates), hide_index=True, width="stretch")
            cand_ids = [str(c) for c in candidates.sort_values("candidate_rank")["candidate_id"]]
    actions(ctx, item, cand_ids)


def actions(ctx, item, cand_ids: list[str]) -> None:
    if not ctx.company.may_resolve:
        st.caption("Your role reads the workbench; finance, admins and owners record decisions.")
        return
    choices = ["Resolve", "Reopen"]
    if cand_ids:
        choices = ["Accept match", "Choose another candidate"] + choices
    with st.form("decision", clear_on_submit=True, border=True):
        what = st.radio("Decision", choices, horizontal=True, key="d_what")
        other = st.selectbox("Candidate", cand_ids, key="d_candidate") if cand_ids else None
        reason = st.selectbox("Reason (for Resolve)", list(REASONS), format_func=REASONS.get, key="d_reason")
        note = st.text_area("Note (required: why)", max_chars=2000, key="d_note")
        sent = st.form_submit_button("Record decision", type="primary")
    if not sent:
        return
    if not note.strip():
        st.error("Write a note: every decision says why (it goes into the audit log).")
        return
    action, linked = {"Accept match": ("linked", cand_ids[0] if cand_ids else None),
                      "Choose another candidate": ("linked", other),
                      "Resolve": (reason, None), "Reopen": ("reopened", None)}[what]
    try:
        _api(ctx).record_resolution(ctx.company_id, pair=str(item["pair"]), item_key=str(item["item_key"]),
                                    action=action, note=note, linked_key=linked)
    except ApiRefusal as exc:
        st.error(f"The decision was not recorded: {exc}")
        return
    st.success(f"Recorded: {action.replace('_', ' ')} on {item['item_key']}. It shows as pending now and as "
               "resolved after the next pipeline run.")
    st.rerun()


def payouts(ctx) -> None:
    st.subheader("Stripe payouts")
    rows = loaded("fct_stripe_payouts", ctx.company_id, order_by=["arrival_date", "payout_id"],
                  empty="No Stripe payouts for this company.")
    if rows is None:
        return
    ids = list(rows["payout_id"].astype(str))
    labels = {str(p): f"{p} · {d} · {format_amount(int(a), str(c))} · {s}" for p, d, a, c, s in
              zip(rows["payout_id"], rows["arrival_date"], rows["amount_minor"], rows["currency"], rows["status"],
                  strict=True)}
    chosen = st.selectbox("Payout", list(reversed(ids)), format_func=labels.get, key="payout")
    payout = rows[rows["payout_id"].astype(str) == chosen].iloc[0]
    txs = queries.read_or_none("fct_stripe_balance_transactions", ctx.company_id, equals={"payout_id": chosen})
    if txs is None:
        empty_state("fct_stripe_balance_transactions")
        return
    check = payout_check(payout, txs)
    currency = str(payout["currency"])
    if check.matches:
        st.success(f"Net check passes: the balance transactions net to {format_amount(check.net_minor, currency)}"
                   f" = the payout amount.")
    else:
        st.error(f"Net check fails: the balance transactions net to {format_amount(check.net_minor, currency)}, "
                 f"the payout is {format_amount(check.payout_minor, currency)} (difference "
                 f"{format_amount(check.payout_minor - check.net_minor, currency)}).")
    st.dataframe(check.by_category, hide_index=True, width="stretch")
    export_buttons(check.by_category, f"payout-{chosen}", key="payout-export")
    bank = queries.read_or_none(ITEMS, ctx.company_id, equals={"pair": "stripe_payout~erp_bank_transaction",
                                                               "left_id": chosen})
    if bank is None or bank.empty:
        st.info("No bank line compared with this payout yet.")
    else:
        line = bank.iloc[0]
        where = "not found in the bank" if pd.isna(line["right_id"]) else f"bank line `{line['right_id']}`"
        st.write(f"Bank: {where} · status **{line['effective_status']}**")


def page() -> None:
    ctx = context()
    st.title("Reconciliation")
    shown = queue(ctx)
    item_detail(ctx, shown)
    payouts(ctx)


page()
