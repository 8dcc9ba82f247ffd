"""MRR movements on Stripe subscriptions that move: new, expansion, contraction, churn, reactivation.

The demo world keeps one flat subscription, so this builds its own small raw layer (raw_ops sample companies +
raw_stripe accounts, subscriptions and items as the ingest lands them), runs `dbt build` of the revenue marts on
DuckDB, and checks them against the subscriptions recomputed in Python (month-end MRR per customer) and
against NRR/GRR computed per customer (sum of closing or of min(closing, opening) over the customers paying at
the opening), not with the marts' movement rules.
"""

from __future__ import annotations

from collections import defaultdict
from datetime import UTC, date, datetime
from decimal import Decimal
from pathlib import Path

import pytest

from ez360.core.warehouse import parse_warehouse_url
from tests.support.dbt_inprocess import run_dbt
from tests.support.raw_ops_fixture import create_raw_ops, execute
from tests.test_warehouse_analytics_tieout import (
    expected_customer_mrr,
    expected_mrr,
    next_month,
    ratio,
)

PROJECT_DIR = Path(__file__).resolve().parents[1] / "dbt_project"
AS_OF = date(2025, 8, 15)


def epoch(day: str) -> int:
    return int(datetime.fromisoformat(day).replace(tzinfo=UTC).timestamp())


def subscription(sub_id, customer, start, items, status="active", ended=None, canceled=None) -> dict:
    return {
        "id": sub_id, "object": "subscription", "customer": customer, "status": status, "currency": "usd",
        "created": epoch(start), "start_date": epoch(start),
        "ended_at": epoch(ended) if ended else None, "canceled_at": epoch(canceled) if canceled else None,
        "items": {"data": [
            {"id": f"si_{sub_id}_{n}", "quantity": quantity,
             "price": {"id": f"price_{sub_id}_{n}", "currency": currency, "unit_amount": amount,
                       "recurring": {"interval": interval, "interval_count": 1}}}
            for n, (amount, quantity, interval, currency) in enumerate(items)]},
    }


STRIPE = {"accounts": {
    "acct_acme": {"subscriptions": [
        subscription("s1", "cus_1", "2025-01-10", [(1000, 1, "month", "usd")]),
        subscription("s2", "cus_1", "2025-03-05", [(500, 1, "month", "usd")]),                     # expansion
        subscription("s3", "cus_2", "2025-02-01", [(120006, 1, "year", "usd")], status="canceled",
                     canceled="2025-05-20"),  # churn: canceled, no ended_at
        subscription("s4", "cus_2", "2025-07-01", [(3000, 1, "month", "usd")]),                     # reactivation
        subscription("s5", "cus_3", "2025-01-31", [(700, 3, "month", "usd")], status="canceled",
                     ended="2025-06-30", canceled="2025-06-01"),
        subscription("s6", "cus_3", "2025-06-30", [(700, 1, "month", "usd")]),                      # contraction
        subscription("s7", "cus_4", "2025-02-01", [(9999, 1, "month", "usd")], status="incomplete"),  # never counts
    ]},
    "acct_unmapped": {"subscriptions": [
        subscription("s8", "cus_9", "2025-04-02", [(1200, 2, "week", "jpy")]),
    ]},
}}


def land_raw_stripe(url: str) -> None:
    """raw_stripe.accounts / subscriptions / subscriptions__items__data as the dlt ingest lands them."""
    execute(url, "create schema raw_stripe")
    execute(url, "create table raw_stripe.accounts (id varchar, account_id varchar, created bigint, "
                 "metadata__ez360_company varchar, _dlt_load_id varchar, _dlt_id varchar)")
    execute(url, "insert into raw_stripe.accounts values ('acct_acme', 'acct_acme', 0, 'acme', '1', 'a1'), "
                 "('acct_unmapped', 'acct_unmapped', 0, null, '1', 'a2')")
    execute(url, "create table raw_stripe.subscriptions (id varchar, account_id varchar, created bigint, "
                 "customer varchar, status varchar, currency varchar, start_date bigint, canceled_at bigint, "
                 "ended_at bigint, _dlt_load_id varchar, _dlt_id varchar)")
    execute(url, "create table raw_stripe.subscriptions__items__data (id varchar, quantity bigint, "
                 "price__id varchar, price__currency varchar, price__unit_amount bigint, "
                 "price__recurring__interval varchar, price__recurring__interval_count bigint, "
                 "_dlt_parent_id varchar, _dlt_id varchar)")

    def literal(value) -> str:
        return "null" if value is None else (str(value) if isinstance(value, int) else f"'{value}'")

    for account_id, account in STRIPE["accounts"].items():
        for sub in account["subscriptions"]:
            values = [sub["id"], account_id, sub["created"], sub["customer"], sub["status"], sub["currency"],
                      sub["start_date"], sub["canceled_at"], sub["ended_at"], "1", f"dlt_{sub['id']}"]
            execute(url, f"insert into raw_stripe.subscriptions values ({', '.join(map(literal, values))})")
            for item in sub["items"]["data"]:
                price = item["price"]
                values = [item["id"], item["quantity"], price["id"], price["currency"], price["unit_amount"],
                          price["recurring"]["interval"], price["recurring"]["interval_count"],
                          f"dlt_{sub['id']}", f"dlt_{item['id']}"]
                execute(url, f"insert into raw_stripe.subscriptions__items__data "
                             f"values ({', '.join(map(literal, values))})")


@pytest.fixture(scope="module")
def revenue_marts(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("analytics_mrr")
    url = f"duckdb:///{tmp / 'warehouse.duckdb'}"
    warehouse = create_raw_ops(url)
    land_raw_stripe(url)
    env = {**parse_warehouse_url(url).dbt_env(), "DBT_LOG_PATH": str(tmp / "logs"),
           "DBT_SEND_ANONYMOUS_USAGE_STATS": "false"}
    common = ["--vars", f"analytics_as_of_date: '{AS_OF}'", "--project-dir", str(PROJECT_DIR),
              "--profiles-dir", str(PROJECT_DIR), "--target-path", str(tmp / "target"), "--quiet"]
    with pytest.MonkeyPatch.context() as mp:
        for key, value in env.items():
            mp.setenv(key, value)
        # every model upstream, and the tests of the revenue layer only (bridge identities, keys, unit tests)
        result = run_dbt(["build", "--select", "+rpt_revenue_retention_by_month",
                          "--exclude", "resource_type:test,path:models/staging",
                          "resource_type:test,path:models/intermediate/core",
                          "--indirect-selection", "cautious", *common])
    assert result.exception is None, result.exception
    failing = {r.node.name: str(r.status) for r in result.result.results if str(r.status) not in ("pass", "success")}
    assert result.success and not failing, failing
    assert sum(1 for r in result.result.results if r.node.resource_type == "unit_test") >= 4
    import duckdb

    con = duckdb.connect(str(warehouse.path), read_only=True)
    try:
        def rows(sql: str) -> list[dict]:
            cur = con.execute(sql)
            names = [d[0] for d in cur.description]
            return [dict(zip(names, row, strict=True)) for row in cur.fetchall()]
        yield {name: rows(f"select * from marts.{name}")
               for name in ("fct_mrr_customer_month", "rpt_mrr_by_month", "rpt_revenue_retention_by_month")}
    finally:
        con.close()


def test_monthly_closing_mrr_matches_the_subscriptions(revenue_marts):
    expected = {key: value for key, value in expected_mrr(STRIPE, AS_OF).items() if value}
    actual = {(r["source_company_key"].removeprefix("stripe:"), r["currency"], r["mrr_month"]): r["closing_mrr_minor"]
              for r in revenue_marts["rpt_mrr_by_month"] if r["closing_mrr_minor"]}
    assert actual == expected
    # the yearly price counts 120006 / 12 = 10000.5 -> 10001 a month; the weekly JPY one 2400 x 52 / 12 = 10400
    assert expected[("acct_acme", "USD", date(2025, 4, 1))] == 1000 + 500 + 10001 + 2100
    assert expected[("acct_unmapped", "JPY", date(2025, 4, 1))] == 10400


def test_each_customer_month_has_the_movement_of_its_change(revenue_marts):
    rows = {(r["customer_id"], r["mrr_month"]): r for r in revenue_marts["fct_mrr_customer_month"]}
    movements = {key: r["movement_type"] for key, r in rows.items() if r["movement_type"] != "retained"}
    assert movements == {
        ("cus_1", date(2025, 1, 1)): "new", ("cus_1", date(2025, 3, 1)): "expansion",
        ("cus_2", date(2025, 2, 1)): "new", ("cus_2", date(2025, 5, 1)): "churn",
        ("cus_2", date(2025, 7, 1)): "reactivation",
        ("cus_3", date(2025, 1, 1)): "new", ("cus_3", date(2025, 6, 1)): "contraction",
        ("cus_9", date(2025, 4, 1)): "new",
    }
    assert rows[("cus_3", date(2025, 6, 1))]["contraction_mrr_minor"] == 700 - 2100
    assert rows[("cus_2", date(2025, 5, 1))]["churned_mrr_minor"] == -10001
    assert ("cus_2", date(2025, 6, 1)) not in rows  # a month with nothing at either end has no row
    assert all(r["company_id"] is None for r in rows.values() if r["customer_id"] == "cus_9")


def test_bridge_holds_every_month_and_nrr_grr_match_per_customer_retention(revenue_marts):
    per_customer = expected_customer_mrr(STRIPE, AS_OF)
    series: dict[tuple[str, str], dict[date, int]] = defaultdict(dict)
    for (account, customer, currency, month), mrr in per_customer.items():
        series[(account, currency)].setdefault(month, 0)
        series[(account, currency, customer)] = {**series.get((account, currency, customer), {}), month: mrr}
    bridge = sorted(revenue_marts["rpt_mrr_by_month"], key=lambda r: (r["source_company_key"], r["mrr_month"]))
    previous: dict[str, tuple[date, int]] = {}
    for r in bridge:
        movements = (r["new_mrr_minor"] + r["expansion_mrr_minor"] + r["contraction_mrr_minor"]
                     + r["churned_mrr_minor"] + r["reactivation_mrr_minor"])
        assert r["opening_mrr_minor"] + movements == r["closing_mrr_minor"], r
        last_month, last_closing = previous.get(r["source_company_key"], (None, 0))
        assert r["opening_mrr_minor"] == (last_closing if last_month and next_month(last_month) == r["mrr_month"]
                                          else 0), r
        previous[r["source_company_key"]] = (r["mrr_month"], r["closing_mrr_minor"])

    retention = {r["mrr_month"]: r for r in revenue_marts["rpt_revenue_retention_by_month"]
                 if r["source_company_key"] == "stripe:acct_acme"}
    customers = {key[2]: months for key, months in series.items() if len(key) == 3 and key[0] == "acct_acme"}
    for month, row in retention.items():
        prior = date(month.year - (month.month == 1), 12 if month.month == 1 else month.month - 1, 1)
        paying = {c: m[prior] for c, m in customers.items() if m.get(prior)}
        opening = sum(paying.values())
        closing = {c: customers[c].get(month, 0) for c in paying}
        assert row["opening_mrr_minor"] == opening
        assert row["nrr_ratio"] == ratio(sum(closing.values()), opening), month
        assert row["grr_ratio"] == ratio(sum(min(closing[c], paying[c]) for c in paying), opening), month
        assert row["logo_churn_ratio"] == ratio(sum(1 for c in paying if not closing[c]), len(paying)), month
    assert retention[date(2025, 5, 1)]["nrr_ratio"] < Decimal(1)
    assert retention[date(2025, 3, 1)]["nrr_ratio"] > Decimal(1)
