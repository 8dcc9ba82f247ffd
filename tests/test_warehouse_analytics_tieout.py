"""Analytics marts tie out to their sources, recomputed here in Python from the ops DB and the Stripe sandbox file.

The demo world (seed 42) is built once per engine by the warehouse helper's session fixture `warehouse_world`
(tests/support/warehouse_world.py): `ez360 seed`, the sandboxes, the ingest, `dbt build`. Every expected figure
below comes from the ops DB rows or the sandbox JSON with plain Python (Decimal, calendar), never from the
marts' SQL: MRR from the Stripe subscriptions as Stripe serves them, utilization and project figures from the
time entries and invoices the ops app wrote, adoption from its usage events.
"""

from __future__ import annotations

import calendar
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import ROUND_HALF_UP, Decimal

from tests.support.warehouse_world import PROJECT_DIR, as_date

ANALYTICS_MARTS = [
    "fct_mrr_customer_month", "rpt_mrr_by_month", "rpt_revenue_retention_by_month",
    "rpt_utilization_by_person_month", "rpt_project_profitability", "rpt_budget_burn",
    "rpt_active_users_daily", "rpt_feature_adoption", "rpt_onboarding_funnel", "rpt_activation",
    "rpt_retention_cohorts_weekly", "rpt_user_lifecycle_weekly", "rpt_executive_kpis_month",
]
FOUR_PLACES = Decimal("0.0001")
HOURS_PER_WEEKDAY = 8  # the documented default of var utilization_hours_per_weekday
UTILIZATION_ROLES = {"owner", "admin", "staff"}


def today() -> date:
    return datetime.now(UTC).date()


def month_start(day: date) -> date:
    return day.replace(day=1)


def month_end(month: date) -> date:
    return month.replace(day=calendar.monthrange(month.year, month.month)[1])


def next_month(month: date) -> date:
    return (month.replace(day=28) + timedelta(days=4)).replace(day=1)


def months_between(first: date, last: date) -> list[date]:
    months, current = [], month_start(first)
    while current <= last:
        months.append(current)
        current = next_month(current)
    return months


def ratio(numerator, denominator) -> Decimal | None:
    if not denominator:
        return None
    return (Decimal(numerator) / Decimal(denominator)).quantize(FOUR_PLACES, rounding=ROUND_HALF_UP)


def epoch_date(seconds: int) -> date:
    return datetime.fromtimestamp(seconds, UTC).date()


def test_every_analytics_model_built_and_passed_its_tests(warehouse_world):
    statuses = warehouse_world.dbt_statuses
    mine = {name: status for name, status in statuses.items()
            if any(mart in name for mart in ANALYTICS_MARTS) or name.startswith(("int_revenue__", "int_operations__",
                                                                                  "int_adoption__"))}
    assert set(ANALYTICS_MARTS) <= set(mine), sorted(set(ANALYTICS_MARTS) - set(mine))
    failing = {name: status for name, status in mine.items() if status not in ("pass", "success")}
    assert not failing, failing
    # the unit tests of each KPI's logic ran (and passed) in the same build
    unit_tests = {"mrr_movements_classify_every_change_and_keep_the_bridge", "nrr_grr_and_logo_churn_from_the_bridge",
                  "mrr_normalises_yearly_weekly_and_multi_month_prices",
                  "utilization_is_billable_over_weekdays_times_eight_hours",
                  "budget_burn_cumulates_billable_value_and_fills_idle_months",
                  "dau_wau_mau_use_trailing_windows_ending_the_day",
                  "lifecycle_counts_new_returning_resurrected_dormant",
                  "activation_counts_days_from_signup_to_first_sent_invoice",
                  "executive_kpis_take_previous_month_and_year_ago_and_convert_mrr"}
    assert {name: statuses.get(name) for name in unit_tests} == dict.fromkeys(unit_tests, "pass")


def test_every_column_the_marts_publish_is_documented(warehouse_world):
    """The YAML documents exactly the columns each analytics mart really has (none missing, none stale)."""
    import yaml

    documented: dict[str, set[str]] = {}
    for path in PROJECT_DIR.glob("models/marts/*/_*.yml"):
        for model in (yaml.safe_load(path.read_text()) or {}).get("models", []):
            documented[model["name"]] = {column["name"] for column in model.get("columns", [])}
    for mart in ANALYTICS_MARTS:
        actual = {r["column_name"] for r in warehouse_world.query(
            "select column_name from information_schema.columns where table_schema = 'marts' and table_name = :t",
            {"t": mart})}
        assert actual and actual == documented[mart], (mart, actual ^ documented[mart])


# --- MRR: Stripe subscriptions as the sandbox serves them ------------------------------------------------------

def expected_customer_mrr(stripe: dict, as_of: date) -> dict[tuple[str, str, str, date], int]:
    """Closing MRR per (account, customer, currency, month) straight from the sandbox's subscription objects:
    each price normalised to a month, counted when the subscription runs on the month's last day (or as_of)."""
    months_per_interval = {"month": Decimal(1), "year": Decimal(12), "week": Decimal(12) / Decimal(52),
                           "day": Decimal(12) / Decimal(365)}
    items = []
    for account_id, account in stripe["accounts"].items():
        for sub in account.get("subscriptions", []):
            if sub["status"] in ("incomplete", "incomplete_expired", "trialing"):
                continue
            start = epoch_date(sub.get("start_date") or sub["created"])
            end_seconds = sub.get("ended_at") or (sub.get("canceled_at") if sub["status"] == "canceled" else None)
            end = epoch_date(end_seconds) if end_seconds else None
            for item in sub["items"]["data"]:
                price = item["price"]
                recurring = price["recurring"]
                per_month = (Decimal(price["unit_amount"] * item.get("quantity", 1))
                             / (months_per_interval[recurring["interval"]] * recurring.get("interval_count", 1)))
                items.append((account_id, sub["customer"], price["currency"].upper(), start, end,
                              int(per_month.quantize(Decimal(1), rounding=ROUND_HALF_UP))))
    closing: dict[tuple[str, str, str, date], int] = defaultdict(int)
    for account_id, customer, currency, start, end, mrr in items:
        for month in months_between(start, as_of):
            day = min(month_end(month), as_of)
            if start <= day and (end is None or end > day):
                closing[(account_id, customer, currency, month)] += mrr
    return dict(closing)


def expected_mrr(stripe: dict, as_of: date) -> dict[tuple[str, str, date], int]:
    """Closing MRR per (account, currency, month)."""
    closing: dict[tuple[str, str, date], int] = defaultdict(int)
    for (account_id, _customer, currency, month), mrr in expected_customer_mrr(stripe, as_of).items():
        closing[(account_id, currency, month)] += mrr
    return dict(closing)


def test_mrr_closing_ties_out_to_stripe_subscriptions_and_the_bridge_chains(warehouse_world):
    expected = expected_mrr(warehouse_world.stripe, today())
    assert expected, "the demo world has no subscription at all"
    rows = warehouse_world.query("select * from marts.rpt_mrr_by_month")
    actual = {(r["source_company_key"].removeprefix("stripe:"), r["currency"], as_date(r["mrr_month"])):
              int(r["closing_mrr_minor"]) for r in rows}
    assert {k: v for k, v in actual.items() if v} == {k: v for k, v in expected.items() if v}

    by_series: dict[tuple[str, str], list[dict]] = defaultdict(list)
    for r in rows:
        by_series[(r["source_company_key"], r["currency"])].append(r)
    for series in by_series.values():
        previous_closing, previous_month = 0, None
        for r in sorted(series, key=lambda r: as_date(r["mrr_month"])):
            month = as_date(r["mrr_month"])
            if previous_month is not None and month != next_month(previous_month):
                previous_closing = 0  # a month with no customer at all has no row
            movements = sum(int(r[c]) for c in ("new_mrr_minor", "expansion_mrr_minor", "contraction_mrr_minor",
                                                 "churned_mrr_minor", "reactivation_mrr_minor"))
            assert int(r["opening_mrr_minor"]) == previous_closing, r
            assert int(r["opening_mrr_minor"]) + movements == int(r["closing_mrr_minor"]), r
            assert int(r["arr_minor"]) == 12 * int(r["closing_mrr_minor"])
            previous_closing, previous_month = int(r["closing_mrr_minor"]), month


def test_mrr_movements_sum_to_the_latest_closing_per_customer(warehouse_world):
    """Telescoping: over a customer's whole history, new + expansion + contraction + churn + reactivation is
    what the customer pays now (per the sandbox)."""
    as_of = today()
    expected = expected_mrr(warehouse_world.stripe, as_of)
    current = {(account, currency): mrr for (account, currency, month), mrr in expected.items()
               if month == month_start(as_of)}
    rows = warehouse_world.query("""
        select source_company_key, currency, sum(new_mrr_minor + expansion_mrr_minor + contraction_mrr_minor
                                                 + churned_mrr_minor + reactivation_mrr_minor) as moved
        from marts.fct_mrr_customer_month group by source_company_key, currency""")
    moved = {(r["source_company_key"].removeprefix("stripe:"), r["currency"]): int(r["moved"]) for r in rows}
    assert moved == {key: value for key, value in current.items() if key in moved or value}


# --- Operations: time entries, invoices and credit notes of the ops DB ------------------------------------------

def weekdays(month: date) -> int:
    return sum(1 for day in range(1, month_end(month).day + 1) if month.replace(day=day).weekday() < 5)


def test_utilization_ties_out_to_time_entries_and_the_weekday_rule(warehouse_world):
    entries = warehouse_world.ops_query(
        "select company_id, user_id, work_date, hours, billable from time_entries where deleted_at is null")
    billable: dict[tuple[int, int, date], Decimal] = defaultdict(Decimal)
    total: dict[tuple[int, int, date], Decimal] = defaultdict(Decimal)
    for e in entries:
        key = (e["company_id"], e["user_id"], month_start(as_date(e["work_date"])))
        total[key] += Decimal(str(e["hours"]))
        if e["billable"]:
            billable[key] += Decimal(str(e["hours"]))
    rows = {(r["company_id"], r["user_id"], as_date(r["work_month"])): r
            for r in warehouse_world.query("select * from marts.rpt_utilization_by_person_month")}
    assert set(total) <= set(rows)
    for key, hours in total.items():
        row = rows[key]
        available = HOURS_PER_WEEKDAY * weekdays(key[2])
        assert Decimal(row["total_hours"]) == hours, key
        assert Decimal(row["billable_hours"]) == billable[key], key
        assert Decimal(row["available_hours"]) == available, key
        assert row["utilization_ratio"] == ratio(billable[key], available), key
    # members in a billable role have a row every month even without time
    members = warehouse_world.ops_query("select company_id, user_id, role from memberships")
    for m in members:
        person_rows = [k for k in rows if k[:2] == (m["company_id"], m["user_id"])]
        assert bool(person_rows) == (m["role"] in UTILIZATION_ROLES or any(k[:2] == (m["company_id"], m["user_id"])
                                                                           for k in total)), m
    assert max(k[2] for k in rows) == month_start(today())


def cost(hours, rate_minor: int) -> int:
    return int((Decimal(str(hours)) * rate_minor).quantize(Decimal(1), rounding=ROUND_HALF_UP))


def test_project_profitability_and_budget_burn_tie_out_to_invoices_credit_notes_and_time(warehouse_world):
    invoices = warehouse_world.ops_query("""
        select id, project_id, currency, subtotal_minor from invoices
        where status in ('sent', 'partially_paid', 'paid') and project_id is not null""")
    credited: dict[int, int] = defaultdict(int)
    for note in warehouse_world.ops_query("select invoice_id, net_minor from credit_notes"):
        credited[note["invoice_id"]] += note["net_minor"]
    billed: dict[int, int] = defaultdict(int)
    for inv in invoices:
        billed[inv["project_id"]] += inv["subtotal_minor"] - credited[inv["id"]]
    time_cost: dict[int, int] = defaultdict(int)
    billable_value: dict[int, int] = defaultdict(int)
    for e in warehouse_world.ops_query(
            "select project_id, hours, billable, rate_minor, cost_rate_minor from time_entries "
            "where deleted_at is null"):
        time_cost[e["project_id"]] += cost(e["hours"], e["cost_rate_minor"])
        if e["billable"]:
            billable_value[e["project_id"]] += cost(e["hours"], e["rate_minor"])
    projects = warehouse_world.ops_query("select id, budget_minor from projects where deleted_at is null")

    rows = {r["project_id"]: r for r in warehouse_world.query("select * from marts.rpt_project_profitability")}
    assert set(rows) == {p["id"] for p in projects}
    assert sum(credited.values()) > 0, "the demo world should hold credit notes on project invoices"
    for project in projects:
        row = rows[project["id"]]
        assert int(row["billed_minor"]) == billed[project["id"]], project
        assert int(row["time_cost_minor"]) == time_cost[project["id"]], project
        if row["currency"] == row["base_currency"]:
            profit = billed[project["id"]] - time_cost[project["id"]] - int(row["expense_base_minor"])
            assert int(row["profit_base_minor"]) == profit
            assert row["margin_ratio"] == ratio(profit, billed[project["id"]])

    burn = warehouse_world.query("""
        select project_id, budget_minor, cumulative_billed_time_minor, burn_ratio from marts.rpt_budget_burn
        where burn_month = (select max(burn_month) from marts.rpt_budget_burn)""")
    assert {r["project_id"] for r in burn} == {
        e["project_id"]
        for e in warehouse_world.ops_query("select project_id from time_entries where deleted_at is null")}
    for r in burn:
        assert int(r["cumulative_billed_time_minor"]) == billable_value[r["project_id"]]
        assert r["burn_ratio"] == ratio(billable_value[r["project_id"]], r["budget_minor"])


# --- Adoption: usage events of the ops DB --------------------------------------------------------------------

def activity(world) -> dict[int, dict[date, set[int]]]:
    """{company: {day: users active}} from the ops usage events."""
    days: dict[int, dict[date, set[int]]] = defaultdict(lambda: defaultdict(set))
    for e in world.ops_query("select company_id, user_id, occurred_at from usage_events where user_id is not null"):
        days[e["company_id"]][as_date(e["occurred_at"])].add(e["user_id"])
    return days


def users_between(by_day: dict[date, set[int]], first: date, last: date) -> set[int]:
    return set().union(*(users for day, users in by_day.items() if first <= day <= last))


def test_dau_wau_mau_and_stickiness_tie_out_to_usage_events(warehouse_world):
    per_company = activity(warehouse_world)
    rows = warehouse_world.query("select * from marts.rpt_active_users_daily")
    company_rows = [r for r in rows if r["scope"] == "company"]
    assert len(company_rows) > 300
    for r in company_rows:
        by_day = per_company[r["company_id"]]
        day = as_date(r["activity_date"])
        dau = len(by_day.get(day, set()))
        wau = len(users_between(by_day, day - timedelta(days=6), day))
        mau = len(users_between(by_day, day - timedelta(days=29), day))
        assert (r["dau"], r["wau"], r["mau"]) == (dau, wau, mau), r
        assert r["stickiness_ratio"] == ratio(dau, mau)
    platform = {as_date(r["activity_date"]): r for r in rows if r["scope"] == "platform"}
    everyone: dict[date, set[int]] = defaultdict(set)  # a person active in two companies counts once
    for by_day in per_company.values():
        for day, users in by_day.items():
            everyone[day] |= users
    assert set(platform) == {min(everyone) + timedelta(days=n) for n in range((today() - min(everyone)).days + 1)}
    for day, row in platform.items():
        expected = (len(everyone.get(day, set())), len(users_between(everyone, day - timedelta(days=6), day)),
                    len(users_between(everyone, day - timedelta(days=29), day)))
        assert (row["dau"], row["wau"], row["mau"]) == expected, day


def test_lifecycle_and_retention_cohorts_tie_out_to_usage_events(warehouse_world):
    per_company = activity(warehouse_world)
    lifecycle = {(r["company_id"], as_date(r["activity_week"])): r
                 for r in warehouse_world.query("select * from marts.rpt_user_lifecycle_weekly")}
    cohorts = {(r["company_id"], as_date(r["cohort_week"]), int(r["week_offset"])): r
               for r in warehouse_world.query("select * from marts.rpt_retention_cohorts_weekly")}
    for company, by_day in per_company.items():
        weeks: dict[date, set[int]] = defaultdict(set)
        for day, users in by_day.items():
            weeks[day - timedelta(days=day.weekday())] |= users
        first_week = {}
        for week in sorted(weeks):
            for user in weeks[week]:
                first_week.setdefault(user, week)
        week = min(weeks)
        seen: set[int] = set()
        while week <= today():
            active, before = weeks.get(week, set()), weeks.get(week - timedelta(days=7), set())
            new = {u for u in active if first_week[u] == week}
            row = lifecycle[(company, week)]
            assert row["new_users"] == len(new), (company, week)
            assert row["returning_users"] == len(active & before), (company, week)
            assert row["resurrected_users"] == len(active - before - new), (company, week)
            assert row["dormant_users"] == len(seen - active), (company, week)
            seen |= active
            week += timedelta(days=7)
        for cohort in set(first_week.values()):
            members = {u for u, w in first_week.items() if w == cohort}
            for offset in (0, 1, 4):
                row = cohorts[(company, cohort, offset)]
                retained = members & weeks.get(cohort + timedelta(weeks=offset), set())
                assert (row["cohort_users"], row["retained_users"]) == (len(members), len(retained))


def test_activation_counts_days_from_signup_to_the_first_issued_invoice(warehouse_world):
    signup: dict[int, date] = {}
    for source in ("select id as company_id, created_at as at from companies",
                   "select company_id, created_at as at from memberships",
                   "select company_id, occurred_at as at from usage_events"):
        for r in warehouse_world.ops_query(source):
            day = as_date(r["at"])
            signup[r["company_id"]] = min(day, signup.get(r["company_id"], day))
    first_sent: dict[int, date] = {}
    for r in warehouse_world.ops_query("select company_id, issue_date from invoices where issue_date is not null "
                                       "and status in ('sent', 'partially_paid', 'paid', 'void')"):
        day = as_date(r["issue_date"])
        first_sent[r["company_id"]] = min(day, first_sent.get(r["company_id"], day))
    for r in warehouse_world.ops_query("select company_id, occurred_at from usage_events "
                                       "where event_name = 'invoice_sent'"):
        day = as_date(r["occurred_at"])
        first_sent[r["company_id"]] = min(day, first_sent.get(r["company_id"], day))
    rows = {r["company_id"]: r for r in warehouse_world.query("select * from marts.rpt_activation")}
    assert set(rows) == set(signup)
    for company, signed_up in signup.items():
        row = rows[company]
        assert as_date(row["signed_up_on"]) == signed_up
        assert row["is_activated"] == (company in first_sent)
        assert row["days_to_activation"] == ((first_sent[company] - signed_up).days if company in first_sent else None)


# --- Executive mart ----------------------------------------------------------------------------------------

def test_executive_kpis_tie_out_and_carry_previous_and_year_ago_values(warehouse_world):
    rows = warehouse_world.query("select * from marts.rpt_executive_kpis_month")
    by_key = {(r["company_id"], as_date(r["kpi_month"])): r for r in rows}
    companies = {c["id"]: c for c in warehouse_world.ops_query("select id, base_currency from companies")}
    assert {r["company_id"] for r in rows} == set(companies)
    assert max(as_date(r["kpi_month"]) for r in rows) == month_start(today())

    per_company = activity(warehouse_world)
    for (company, month), row in by_key.items():
        month_users = users_between(per_company[company], month, month_end(month))
        assert row["mau"] == len(month_users), (company, month)
        previous = by_key.get((company, month_start(month - timedelta(days=1))))
        year_ago = by_key.get((company, month.replace(year=month.year - 1)))
        for kpi in ("revenue_net_base_minor", "mrr_base_minor", "utilization_ratio", "mau", "dso_days"):
            assert row[f"{kpi}_prev_month"] == (previous[kpi] if previous else None), (company, month, kpi)
            assert row[f"{kpi}_year_ago"] == (year_ago[kpi] if year_ago else None), (company, month, kpi)

    # utilization per company-month = billable / available hours over the people, from the ops time entries
    billable: dict[tuple[int, date], Decimal] = defaultdict(Decimal)
    for e in warehouse_world.ops_query(
            "select company_id, work_date, hours from time_entries where deleted_at is null and billable"):
        billable[(e["company_id"], month_start(as_date(e["work_date"])))] += Decimal(str(e["hours"]))
    people: dict[tuple[int, date], int] = defaultdict(int)
    for r in warehouse_world.query("select company_id, work_month from marts.rpt_utilization_by_person_month"):
        people[(r["company_id"], as_date(r["work_month"]))] += 1
    for key, hours in billable.items():
        assert by_key[key]["utilization_ratio"] == ratio(hours, people[key] * HOURS_PER_WEEKDAY * weekdays(key[1])), key

    # MRR in base currency: subscriptions already in the base currency need no conversion
    expected = expected_mrr(warehouse_world.stripe, today())
    accounts = {c["id"]: c["stripe_account_id"] for c in
                warehouse_world.ops_query("select id, stripe_account_id from companies")}
    for (company, month), row in by_key.items():
        in_base = [v for (account, currency, m), v in expected.items()
                   if account == accounts[company] and m == month and currency == companies[company]["base_currency"]]
        foreign = [v for (account, currency, m), v in expected.items()
                   if account == accounts[company] and m == month and currency != companies[company]["base_currency"]
                   and v]
        if not foreign:
            assert int(row["mrr_base_minor"]) == sum(in_base), (company, month)
