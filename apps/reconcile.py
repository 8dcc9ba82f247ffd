"""Workbench logic without Streamlit: queue filters, the pending overlay (decisions made since the published
run, not yet joined back by the warehouse), candidate flags, and the payout net check."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal, InvalidOperation

import pandas as pd

from apps.formatting import format_amount, money_decimal

REASONS = {"resolved": "Explained: the two records agree after all",
           "accepted_difference": "Accept the difference (fees, rounding, FX)",
           "written_off": "Write off the difference"}
CRITERIA = [("amount_ok", "amount"), ("date_ok", "date"), ("reference_ok", "reference"), ("customer_ok", "customer")]


@dataclass(frozen=True)
class QueueFilter:
    pairs: tuple[str, ...] = ()
    statuses: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    min_age_days: int = 0
    min_amount: Decimal = Decimal(0)  # on |amount|, in each item's own currency (major units)
    open_only: bool = True


def parse_amount(text: str) -> Decimal:
    """The amount filter as typed ('1,234.50' or '1234.5'); ValueError when it is not an amount."""
    try:
        value = Decimal(text.strip().replace(",", ""))
    except InvalidOperation:
        raise ValueError(f"{text!r} is not an amount: type digits, e.g. 250 or 1,234.50") from None
    if not value.is_finite() or value < 0:
        raise ValueError(f"{text!r} is not an amount of zero or more")
    return value


def filter_queue(items: pd.DataFrame, f: QueueFilter, today: date) -> pd.DataFrame:
    rows = items
    if f.pairs:
        rows = rows[rows["pair"].isin(f.pairs)]
    if f.statuses:
        rows = rows[rows["effective_status"].isin(f.statuses)]
    if f.open_only:
        rows = rows[~rows["effective_status"].isin(["matched", "resolved"])]
    if f.sources:
        rows = rows[rows["left_source"].isin(f.sources) | rows["right_source"].isin(f.sources)]
    if f.min_age_days:
        ages = [(today - pd.Timestamp(d).date()).days if not pd.isna(d) else 0 for d in rows["event_date"]]
        rows = rows[[a >= f.min_age_days for a in ages]]
    if f.min_amount:
        rows = rows[[False if pd.isna(a) else abs(money_decimal(int(a), str(c))) >= f.min_amount
                     for a, c in zip(rows["amount_minor"], rows["currency"], strict=True)]]
    return rows


def summary(items: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Counts by pair x status, and items / amount / difference by pair, status and currency (exact text)."""
    counts = items.pivot_table(index="pair", columns="effective_status", values="item_key", aggfunc="count",
                               fill_value=0)
    rows = []
    for (pair, status, currency), group in items.groupby(["pair", "effective_status", "currency"], sort=True):
        rows.append({"Pair": pair, "Status": status, "Currency": str(currency), "Items": len(group),
                     "Amount": format_amount(int(group["amount_minor"].fillna(0).sum()), str(currency)),
                     "Difference": format_amount(int(group["difference_minor"].fillna(0).sum()), str(currency))})
    return counts, pd.DataFrame(rows)


def latest_decisions(decisions: list[dict]) -> dict[tuple[str, str], dict]:
    """Latest decision per (pair, item_key) (the API answers newest first; ids order ties)."""
    latest: dict[tuple[str, str], dict] = {}
    for d in sorted(decisions, key=lambda d: (str(d["created_at"]), int(d["id"]))):
        latest[(d["pair"], d["item_key"])] = d
    return latest


def decisions_published_until(health: dict | None, legacy_published_at: datetime | None) -> datetime | None:
    """Decisions recorded before this instant are in the published data: when the last published run (health
    store) began loading the ops DB, else when that run began. The legacy publish status knows only when the
    snapshot was written, later than the ops load: a decision recorded while the run was loading would count as
    applied though the data lacks it, so it is the fallback only when the store knows no published run."""
    last = (health or {}).get("last_published")
    if not last:
        return legacy_published_at
    for load in (health or {}).get("published_loads") or []:
        if load.get("source") == "ops" and load.get("run_id") == last.get("run_id") and load.get("started_at"):
            return load["started_at"]
    return last.get("started_at") or last.get("published_at") or legacy_published_at


def pending_overlay(items: pd.DataFrame, decisions: list[dict], since: datetime | None) -> pd.DataFrame:
    """Add `pending`: the decision made after the published run started (shown at once, applied next run)."""
    latest = latest_decisions(decisions)
    pending = []
    for pair, key in zip(items["pair"], items["item_key"], strict=True):
        d = latest.get((pair, key))
        if d is None or (since is not None and _at(d["created_at"]) <= since):
            pending.append("")
        else:
            pending.append(f"pending: {d['action'].replace('_', ' ')}")
    out = items.copy()
    out["pending"] = pending
    return out


def _at(value) -> datetime:
    return value if isinstance(value, datetime) else datetime.fromisoformat(str(value).replace("Z", "+00:00"))


def queue_table(rows: pd.DataFrame) -> pd.DataFrame:
    """What the queue shows (and exports)."""
    def amount(v, c):
        return "" if pd.isna(v) else format_amount(int(v), str(c))
    return pd.DataFrame({
        "Item": rows["item_key"].astype(str), "Pair": rows["pair"].astype(str),
        "Status": rows["effective_status"].astype(str),
        "Pending": rows["pending"] if "pending" in rows else "",
        "Date": [("" if pd.isna(d) else pd.Timestamp(d).strftime("%Y-%m-%d")) for d in rows["event_date"]],
        "Amount": [amount(v, c) for v, c in zip(rows["amount_minor"], rows["currency"], strict=True)],
        "Difference": [amount(v, c) for v, c in zip(rows["difference_minor"], rows["currency"], strict=True)],
        "Left": [f"{s} {i}" for s, i in zip(rows["left_source"], rows["left_id"], strict=True)],
        "Right": [("" if pd.isna(i) else f"{s} {i}") for s, i in zip(rows["right_source"], rows["right_id"],
                                                                     strict=True)],
    })


def candidate_table(candidates: pd.DataFrame) -> pd.DataFrame:
    side = "candidate_side" if "candidate_side" in candidates else "candidate_source"
    out = pd.DataFrame({"Rank": candidates["candidate_rank"].astype(int),
                        "Candidate": [f"{s} {i}" for s, i in zip(candidates[side], candidates["candidate_id"],
                                                                 strict=True)]})
    for col, label in CRITERIA:
        out[label] = ["✓" if bool(v) else "✗" for v in candidates[col]] if col in candidates else "?"
    out["Score"] = [str(s) for s in candidates["score"]] if "score" in candidates else ""
    return out.sort_values("Rank").reset_index(drop=True)


@dataclass(frozen=True)
class PayoutCheck:
    by_category: pd.DataFrame  # reporting_category, transactions, net (text)
    net_minor: int  # sum of the payout's balance transactions' net, recomputed here
    payout_minor: int
    matches: bool


def payout_check(payout: pd.Series, transactions: pd.DataFrame) -> PayoutCheck:
    """A payout's balance transactions by reporting category; their net must equal the payout amount."""
    currency = str(payout["currency"])
    payout_bt = str(payout.get("balance_transaction_id") or "")
    own = transactions[transactions["balance_transaction_id"].astype(str) != payout_bt] \
        if "balance_transaction_id" in transactions else transactions
    own = own[own["reporting_category"] != "payout"]
    groups = []
    for category, group in own.groupby("reporting_category", sort=True):
        groups.append({"Category": str(category), "Transactions": len(group),
                       "Gross": format_amount(int(group["amount_minor"].sum()), currency),
                       "Fees": format_amount(int(group["fee_minor"].sum()), currency),
                       "Net": format_amount(int(group["net_minor"].sum()), currency)})
    net = int(own["net_minor"].sum()) if not own.empty else 0
    amount = int(payout["amount_minor"])
    return PayoutCheck(pd.DataFrame(groups), net, amount, net == amount)
