"""Revenue, AR and cash in the marts tie out, to the minor unit, with figures recomputed here independently:
from the ops general ledger (journal lines, not invoices), from the Stripe and ERPNext sandbox files, and from
ground_truth.json. None of them re-applies a mart's own rule."""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import date, timedelta
from decimal import ROUND_HALF_UP, Decimal
from pathlib import Path

from ez360.core.money import exponent, to_minor
from tests.support.warehouse_world import as_date


def ledger_movement(world, codes: tuple[str, ...], source_type: str | None = None) -> dict[tuple[str, str], int]:
    """Debit - credit per (company slug, currency) on the ops ledger accounts `codes`, posted entries only."""
    placeholders = ", ".join(f"'{code}'" for code in codes)
    where = f" and e.source_type = '{source_type}'" if source_type else ""
    rows = world.ops_query(f"""
        select c.slug, e.currency, l.debit_minor, l.credit_minor
        from journal_lines l join journal_entries e on e.id = l.journal_entry_id
        join accounts a on a.id = l.account_id join companies c on c.id = e.company_id
        where e.status = 'posted' and a.code in ({placeholders}){where}""")
    totals: dict[tuple[str, str], int] = defaultdict(int)
    for row in rows:
        totals[(row["slug"], row["currency"])] += int(row["debit_minor"]) - int(row["credit_minor"])
    return {key: value for key, value in totals.items() if value}


def mart_totals(world, sql: str) -> dict[tuple[str, str], int]:
    return {(r["slug"], r["currency"]): int(r["total"]) for r in world.query(sql) if int(r["total"])}


def test_revenue_net_of_credit_notes_ties_out_to_the_ops_ledger_and_the_erp(warehouse_world):
    mart = mart_totals(warehouse_world, """
        select company_slug as slug, currency, sum(net_revenue_minor) as total
        from marts.rpt_revenue_by_company_month group by company_slug, currency""")
    # the ledger credits revenue (4000) on each invoice and debits it on each credit note
    revenue = {key: -value for key, value in ledger_movement(warehouse_world, ("4000",)).items()}
    assert mart == revenue and len(mart) >= 5

    # ERPNext's Sales account (sandbox file), less the one invoice the ground truth says it overstates
    erp_companies = {c["name"]: c["abbr"] for c in warehouse_world.erpnext["doctypes"]["Company"]}
    slugs = {"NWS": "northwind", "AUR": "aurora", "SKR": "sakura"}
    erp_sales: dict[tuple[str, str], int] = defaultdict(int)
    for gl in warehouse_world.erpnext["doctypes"]["GL Entry"]:
        if gl["account"].startswith("Sales - ") and not gl["is_cancelled"]:
            key = (slugs[erp_companies[gl["company"]]], gl["account_currency"])
            currency = gl["account_currency"]
            erp_sales[key] += to_minor(gl["credit"], currency) - to_minor(gl["debit"], currency)
    for item in warehouse_world.ground_truth["discrepancies"]:
        if item["kind"] == "invoice_total_mismatch":
            erp_sales[(item["company"], item["currency"])] -= item["amount_minor"]
    assert mart == {key: value for key, value in erp_sales.items() if value}


def test_every_credit_note_of_the_ground_truth_reduces_its_invoice(warehouse_world):
    notes = warehouse_world.ground_truth["credit_notes"]
    assert notes
    invoices = {r["invoice_number"]: r for r in warehouse_world.query(
        "select invoice_number, invoiced_minor, credited_minor, net_minor, due_minor, status from marts.fct_invoices")}
    ops_totals = {r["number"]: int(r["total_minor"]) for r in warehouse_world.ops_query(
        "select number, total_minor from invoices")}
    for note in notes:
        row = invoices[note["invoice_number"]]
        assert row["credited_minor"] == note["total_minor"]
        assert row["net_minor"] == ops_totals[note["invoice_number"]] - note["total_minor"]
        assert row["due_minor"] == row["net_minor"]  # the demo leaves credited invoices unpaid: still owed
        assert row["status"] == "sent"


def test_open_receivables_tie_out_to_the_ops_ledger(warehouse_world):
    latest = warehouse_world.query("select max(as_of_date) as d from marts.rpt_ar_aging")[0]["d"]
    assert latest >= date(2026, 10, 31)
    aging = mart_totals(warehouse_world, f"""
        select c.company_slug as slug, a.currency, sum(a.open_minor) as total
        from marts.rpt_ar_aging a join marts.dim_companies c on c.company_id = a.company_id
        where a.as_of_date = cast('{latest.isoformat()}' as date) group by c.company_slug, a.currency""")
    receivables = ledger_movement(warehouse_world, ("1100",))
    assert aging == receivables and aging
    due = mart_totals(warehouse_world, """
        select c.company_slug as slug, i.currency, sum(i.due_minor) as total
        from marts.fct_invoices i join marts.dim_companies c on c.company_id = i.company_id
        group by c.company_slug, i.currency""")
    assert due == receivables
    buckets = {r["aging_bucket"] for r in warehouse_world.query(
        "select distinct aging_bucket from marts.rpt_ar_aging where as_of_date = cast(:d as date)",
        {"d": latest.isoformat()})}
    assert buckets <= {"current", "1-30", "31-60", "61-90", "90+"} and len(buckets) >= 2


def test_open_receivables_in_base_currency_agree_with_the_executive_kpis(warehouse_world):
    """The dashboards' AR aging in base currency (each bucket converted at its as-of day's rate) adds up, per
    company and past month end, to the open AR the executive KPIs convert per currency at the month's close: two
    conversion paths, one figure, within a minor unit per bucket of rounding. Base-currency amounts stay as they are."""
    rows = warehouse_world.query(
        "select company_id, as_of_date, currency, base_currency, open_minor, open_base_minor from marts.rpt_ar_aging")
    assert all(int(r["open_base_minor"]) == int(r["open_minor"]) for r in rows if r["currency"] == r["base_currency"])
    assert any(r["currency"] != r["base_currency"] for r in rows)  # the demo bills in other currencies too
    latest = max(as_date(r["as_of_date"]) for r in rows)
    totals: dict[tuple[int, date], int] = defaultdict(int)
    buckets: dict[tuple[int, date], int] = defaultdict(int)
    for r in rows:
        day = as_date(r["as_of_date"])
        if (day + timedelta(days=1)).day == 1 and day < latest.replace(day=1):  # past month ends only
            month = (r["company_id"], day.replace(day=1))
            totals[month] += int(r["open_base_minor"])
            buckets[month] += 1
    kpis = {(r["company_id"], as_date(r["kpi_month"])): int(r["open_ar_base_minor"] or 0)
            for r in warehouse_world.query(
                "select company_id, kpi_month, open_ar_base_minor from marts.rpt_executive_kpis_month")}
    assert len(totals) >= 6
    for key, total in totals.items():
        assert abs(total - kpis[key]) <= buckets[key], (key, total, kpis[key])


EXCHANGE_RATES = Path(__file__).resolve().parents[1] / "dbt_project" / "seeds" / "exchange_rates.csv"


def rate_on(day: date, currency: str, base: str) -> Decimal:
    """1 `currency` in `base` on `day`, read from the rate file itself: its latest row dated on or before the day."""
    with EXCHANGE_RATES.open() as f:
        dated = sorted((date.fromisoformat(r["rate_date"]), Decimal(r["rate"])) for r in csv.DictReader(f)
                       if r["currency"] == currency and r["base_currency"] == base)
    return [rate for valid_from, rate in dated if valid_from <= day][-1]


def test_open_receivables_in_base_currency_tie_out_to_the_ops_ledger_at_the_rate_file(warehouse_world):
    """The dashboards' base-currency AR on the latest as-of day equals the ops ledger's receivables (account 1100,
    per company and currency) converted here with the rate read from the rate file for that day, half away from
    zero at the base currency's decimals: within one minor unit per aging bucket (the mart converts each bucket)."""
    latest = max(as_date(r["d"]) for r in warehouse_world.query("select max(as_of_date) as d from marts.rpt_ar_aging"))
    rows = warehouse_world.query(f"""
        select c.company_slug as slug, c.base_currency, a.open_base_minor
        from marts.rpt_ar_aging a join marts.dim_companies c on c.company_id = a.company_id
        where a.as_of_date = cast('{latest.isoformat()}' as date)""")
    mart: dict[str, int] = defaultdict(int)
    buckets: dict[str, int] = defaultdict(int)
    for r in rows:
        mart[r["slug"]] += int(r["open_base_minor"])
        buckets[r["slug"]] += 1
    companies = warehouse_world.ops_query("select slug, base_currency from companies")
    bases = {r["slug"]: r["base_currency"] for r in companies}
    expected: dict[str, int] = defaultdict(int)
    converted = 0
    for (slug, currency), owed in ledger_movement(warehouse_world, ("1100",)).items():
        base = bases[slug]
        if currency != base:
            converted += 1
            amount = Decimal(owed).scaleb(-exponent(currency)) * rate_on(latest, currency, base)
            owed = int(amount.scaleb(exponent(base)).quantize(Decimal(1), rounding=ROUND_HALF_UP))
        expected[slug] += owed
    assert converted >= 1 and set(mart) == set(expected)  # the demo's companies bill in foreign currencies too
    for slug, total in expected.items():
        assert abs(mart[slug] - total) <= buckets[slug], (slug, mart[slug], total)


def test_cash_collected_ties_out_to_the_ops_ledger(warehouse_world):
    collected = mart_totals(warehouse_world, """
        select c.company_slug as slug, r.currency, sum(r.collected_minor) as total
        from marts.rpt_revenue_by_month r join marts.dim_companies c on c.company_id = r.company_id
        group by c.company_slug, r.currency""")
    # money in: debits to bank, cash and Stripe clearing from payment entries (refunds credit them back)
    cash = ledger_movement(warehouse_world, ("1000", "1010", "1150"), "payment")
    refunds = ledger_movement(warehouse_world, ("1000", "1010", "1150"), "refund")
    for key, value in refunds.items():
        cash[key] = cash.get(key, 0) + value
    assert collected == {k: v for k, v in cash.items() if v} and collected


def test_stripe_gross_fees_refunds_disputes_net_and_payouts_tie_out_to_the_sandbox(warehouse_world):
    by_category: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0, 0])
    fee_details: dict[tuple[str, str], int] = defaultdict(int)
    payouts: dict[tuple[str, str], int] = defaultdict(int)
    for account_id, account in warehouse_world.stripe["accounts"].items():
        for txn in account["balance_transactions"]:
            key = (account_id, txn["currency"].upper(), txn["reporting_category"])
            by_category[key][0] += txn["amount"]
            by_category[key][1] += txn["net"]
            by_category[key][2] += 1
            for detail in txn["fee_details"]:
                fee_details[(account_id, txn["currency"].upper())] += detail["amount"]
        for payout in account["payouts"]:
            payouts[(account_id, payout["currency"].upper())] += payout["amount"]
    rows = warehouse_world.query("""
        select account_id, currency, reporting_category, sum(gross_minor) as gross, sum(net_minor) as net,
               sum(transaction_count) as n, sum(fee_details_minor) as fees
        from marts.rpt_stripe_balance_by_month group by account_id, currency, reporting_category""")
    mart = {(r["account_id"], r["currency"], r["reporting_category"]): [int(r["gross"]), int(r["net"]), int(r["n"])]
            for r in rows}
    assert mart == dict(by_category)
    assert {"charge", "refund", "payout", "payout_reversal"} <= {key[2] for key in mart}
    mart_fees: dict[tuple[str, str], int] = defaultdict(int)
    for r in rows:
        mart_fees[(r["account_id"], r["currency"])] += int(r["fees"])
    assert {k: v for k, v in mart_fees.items() if v} == dict(fee_details)
    # every payout, failed or not, left the balance once: its `payout` transactions sum to minus the payouts
    paid_out = {(a, c): -gross for (a, c, category), (gross, _, _) in mart.items() if category == "payout"}
    assert paid_out == dict(payouts)


def test_incremental_marts_give_the_same_rows_incrementally_and_after_a_full_refresh(warehouse_world_duckdb):
    world = warehouse_world_duckdb
    models = {"fct_stripe_balance_transactions": "balance_transaction_id", "fct_gl_entries": "gl_entry_id"}

    def snapshot():
        return {model: [repr(row) for row in world.query(f"select * from marts.{model} order by {key}")]
                for model, key in models.items()}

    before = snapshot()
    assert all(before.values())
    incremental = world.dbt("run", "--select", *models)
    assert incremental.success, incremental.exception
    assert snapshot() == before
    full = world.dbt("run", "--select", *models, "--full-refresh")
    assert full.success, full.exception
    assert snapshot() == before
