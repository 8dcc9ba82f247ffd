"""Scale run: each dashboard page's render time with 1M invoices in the published snapshot (target: 1 s or less).

    uv run python benchmarks/bench_dashboard.py [--invoices 1000000] [--companies 200] [--repeat 5] [--var DIR]

Builds a DuckDB warehouse whose marts have the published shapes (fct_invoices with --invoices rows over
--companies companies and 36 months, reconciliation items and candidates, Stripe payouts and balance
transactions, KPIs, MRR, AR aging, adoption), publishes it with the real publish step, signs a member in
through a real ops DB session, and times every page's script run under Streamlit's AppTest (the server-side
render: sign-on check, reads through the data-access layer, charts and tables). "cold" is the first run after
the process started (empty cache), "warm" the median of --repeat runs after it (the cache shared by all users).
Prints the scale and a table of the figures.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

PAGES = [("Executive overview", "views/overview.py", "owner"), ("Reconciliation", "views/reconciliation.py", "finance"),
         ("Revenue by month", "views/revenue.py", "owner"), ("Product adoption", "views/adoption.py", "owner"),
         ("Data health", "views/health.py", "owner"), ("Revenue, platform admin", "views/revenue.py", "platform")]


def build_marts(path: Path, invoices: int, companies: int) -> list[str]:
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    n, c = invoices, companies
    statements = {
        "fct_invoices": f"""
            select i as invoice_id, 1 + i % {c} as company_id, 1 + i % ({c} * 40) as client_id,
                   1 + i % ({c} * 60) as project_id, 'INV-' || i as invoice_number,
                   (['sent', 'paid', 'partially_paid', 'void'])[1 + i % 4] as status, i % 4 <> 3 as is_revenue,
                   'USD' as currency, date '2023-01-01' + cast(i % 1095 as integer) as issue_date,
                   date_trunc('month', date '2023-01-01' + cast(i % 1095 as integer))::date as invoice_month,
                   date '2023-01-31' + cast(i % 1095 as integer) as due_date,
                   10000 + i % 90000 as net_minor, (i % 3) * 5000 as due_minor, 10000 + i % 90000 as net_base_minor
            from range({n}) t(i)""",
        "rpt_executive_kpis_month": f"""
            select c as company_id, 'c' || c as company_slug, m as kpi_month,
                   100000 * c as revenue_net_base_minor, 90000 * c as collected_base_minor,
                   50000 * c as open_ar_base_minor, 31.5 as dso_days, 0.9 as cei_ratio, 10000 * c as mrr_base_minor,
                   120000 * c as arr_base_minor, 1.05 as nrr_ratio, 0.95 as grr_ratio, 0.7 as utilization_ratio,
                   0.4 as gross_margin_ratio, 10 as mau, 0.25 as stickiness_ratio
            from range(1, {c} + 1) a(c), (select unnest(generate_series(date '2023-01-01', date '2025-12-01',
                                                                        interval 1 month))::date as m)""",
        "rpt_revenue_by_company_month": """
            select company_id, 'c' || company_id as company_slug, 'Company ' || company_id as company_name,
                   invoice_month as revenue_month, currency, 2 as currency_exponent, count(*) as invoice_count,
                   sum(net_minor) as net_revenue_minor, 0 as tax_minor, sum(net_minor) as gross_revenue_minor
            from fct_invoices where is_revenue group by all""",
        "rpt_mrr_by_month": """
            select company_id, company_slug, kpi_month as mrr_month, 'USD' as currency,
                   mrr_base_minor - 1000 as opening_mrr_minor, 2000 as new_mrr_minor, 500 as expansion_mrr_minor,
                   -500 as contraction_mrr_minor, -1000 as churned_mrr_minor, 0 as reactivation_mrr_minor,
                   mrr_base_minor as closing_mrr_minor, arr_base_minor as arr_minor, 12 as active_customers
            from rpt_executive_kpis_month""",
        "rpt_ar_aging": """
            select company_id, last_day(kpi_month) as as_of_date, 'USD' as currency, b.bucket as aging_bucket,
                   b.o as bucket_order, 1000 * b.o as open_minor, b.o as invoice_count
            from rpt_executive_kpis_month, (values ('current', 1), ('1-30', 2), ('31-60', 3), ('61-90', 4),
                                                   ('90+', 5)) b(bucket, o)""",
        "rpt_project_profitability": f"""
            select p as project_id, 1 + p % {c} as company_id, 'Project ' || p as project_name, 'USD' as currency,
                   100000 as billed_minor, 50000 as time_cost_minor, 5000 as expense_minor, 'USD' as base_currency,
                   100000 as billed_base_minor, 50000 as time_cost_base_minor, 5000 as expense_base_minor,
                   45000 as profit_base_minor, 0.45 as margin_ratio
            from range({c} * 60) t(p)""",
        "fct_reconciliation_items": f"""
            select 'ops_payment~stripe_charge:' || i as item_key, 'ops_payment~stripe_charge' as pair,
                   1 + i % {c} as company_id, 'c' || (1 + i % {c}) as company_slug,
                   (['matched', 'matched', 'matched', 'amount_mismatch', 'missing_in_stripe'])[1 + i % 5] as status,
                   'USD' as currency, 10000 + i % 500 as amount_minor, 10000 as other_amount_minor,
                   i % 500 as difference_minor, 'ops' as left_source, 'p' || i as left_id, 'stripe' as right_source,
                   'ch_' || i as right_id, date '2023-01-01' + cast(i % 1095 as integer) as event_date,
                   null::date as other_date, null as resolution_action, false as is_resolved,
                   (['matched', 'matched', 'matched', 'amount_mismatch', 'missing_in_stripe'])[1 + i % 5]
                     as effective_status
            from range({n // 4}) t(i)""",
        "fct_reconciliation_candidates": """
            select item_key || ':' || r as candidate_key, item_key, pair, r as candidate_rank,
                   'stripe' as candidate_side, 'ch_x' || r as candidate_id, r = 1 as amount_ok, true as date_ok,
                   r = 2 as reference_ok, true as customer_ok, 0.75 as score
            from fct_reconciliation_items, range(1, 3) s(r) where status <> 'matched'""",
        "fct_stripe_payouts": f"""
            select 'po_' || p as payout_id, 'acct_' || (1 + p % {c}) as account_id, 1 + p % {c} as company_id,
                   96465 as amount_minor, 'USD' as currency, 'paid' as status,
                   date '2023-01-01' + cast(p % 1095 as integer) as arrival_date, 96465 as settled_net_minor,
                   false as is_failed
            from range({c} * 150) t(p)""",
        "fct_stripe_balance_transactions": f"""
            select 'txn_' || i as balance_transaction_id, 'acct_' || (1 + (i // 4) % {c}) as account_id,
                   1 + (i // 4) % {c} as company_id, 'charge' as transaction_type,
                   (['charge', 'charge', 'fee', 'payout'])[1 + i % 4] as reporting_category, 'src' || i as source_id,
                   'USD' as currency, 1000 as amount_minor, 30 as fee_minor, 970 as net_minor,
                   'po_' || ((i // 4) % ({c} * 150)) as payout_id, timestamp '2023-01-01' as created_at
            from range({n}) t(i)""",
        "rpt_active_users_daily": f"""
            select 1 + c % {c} as company_id, date '2023-01-01' + cast(d as integer) as activity_date,
                   3 as dau, 6 as wau, 8 as mau, 0.375 as stickiness_ratio
            from range({c}) a(c), range(1095) b(d)""",
        "rpt_feature_adoption": """
            select company_id, f.feature, kpi_month as activity_month, 4 as users, 0.5 as adoption_ratio
            from rpt_executive_kpis_month, (values ('invoice_sent'), ('time_logged'), ('client_created')) f(feature)""",
        "rpt_onboarding_funnel": f"""
            select c as company_id, s as step_order, 'step_' || s as step_key, date '2023-01-01' as reached_on,
                   true as is_reached
            from range(1, {c} + 1) a(c), range(1, 7) b(s)""",
        "rpt_activation": f"""
            select c as company_id, date '2023-01-01' as signed_up_on, date '2023-01-02' as first_login_on,
                   date '2023-01-09' as first_invoice_sent_on, true as is_activated, 7 as days_to_activation
            from range(1, {c} + 1) a(c)""",
        "rpt_retention_cohorts_weekly": f"""
            select c as company_id, date '2025-01-06' + cast(7 * w as integer) as cohort_week, o as week_offset,
                   10 as cohort_users, 10 - o % 10 as retained_users, (10 - o % 10) / 10 as retention_ratio
            from range(1, {c} + 1) a(c), range(20) b(w), range(12) d(o)""",
        "rpt_user_lifecycle_weekly": f"""
            select c as company_id, date '2023-01-02' + cast(7 * w as integer) as activity_week, 5 as active_users,
                   1 as new_users, 3 as returning_users, 1 as resurrected_users, 2 as dormant_users,
                   20 as users_to_date
            from range(1, {c} + 1) a(c), range(156) b(w)""",
        "rpt_quarantine_counts": """
            select 'stripe' as source, 'charges' as table_name, 'missing_field:id' as reason,
                   2 as quarantined_count, timestamp '2025-06-30' as last_quarantined_at""",
        "rpt_unmapped_source_companies": """
            select 'stripe' as source, 'acct_x' as source_key, 'stripe:acct_x' as source_company_key,
                   14 as row_count, date '2025-06-01' as first_seen_on""",
    }
    try:
        con.execute("create schema if not exists marts")
        con.execute("use marts")
        for name, select in statements.items():
            con.execute(f"create or replace table marts.{name} as {select}")
    finally:
        con.close()
    return [f"marts.{name}" for name in statements]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--invoices", type=int, default=1_000_000)
    parser.add_argument("--companies", type=int, default=200)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--var", type=Path, default=None, help="state folder (default: a temporary one)")
    args = parser.parse_args()
    var = args.var or Path(tempfile.mkdtemp(prefix="ez360-bench-dash-"))
    shutil.rmtree(var, ignore_errors=True)
    var.mkdir(parents=True)
    ops_url = f"sqlite:///{var / 'ops.sqlite3'}"
    os.environ.update({"EZ360_VAR_DIR": str(var), "EZ360_DATABASE_URL": ops_url, "EZ360_WAREHOUSE_URL": "",
                       "EZ360_ENVIRONMENT": "test", "EZ360_SESSION_COOKIE_SECURE": "false",
                       "EZ360_PLATFORM_ADMIN_EMAILS": "root@bench.test"})

    from streamlit.testing.v1 import AppTest

    import apps.session
    from ez360.core.settings import get_settings
    from ez360.core.warehouse import parse_warehouse_url
    from operational_api.db import schema
    from operational_api.db.engine import make_engine, make_sessionmaker
    from operational_api.security import sessions
    from operational_api.services import companies
    from pipelines.publish import publish

    settings = get_settings()
    started = time.perf_counter()
    warehouse = parse_warehouse_url(settings.warehouse_url)
    tables = build_marts(warehouse.path, args.invoices, args.companies)
    publish(warehouse, settings.published_dir, tables, run_id="bench-1")
    built = time.perf_counter() - started

    schema.upgrade(ops_url)
    tokens: dict[str, str] = {}
    with make_sessionmaker(make_engine(ops_url))() as db:
        users = {}
        for i in range(1, args.companies + 1):  # companies 1..N exist in the ops DB, as the marts say
            company = companies.create_company(db, slug=f"c{i}", name=f"Company {i}", base_currency="USD",
                                               invoice_prefix="C")
            if i == 1:
                for role in ("owner", "finance"):
                    user = companies.create_user(db, email=f"{role}@bench.test", full_name=role, password_hash="x")
                    companies.add_member(db, company, user, role)
                    users[role] = user.id
        users["platform"] = companies.create_user(db, email="root@bench.test", full_name="root",
                                                  password_hash="x").id
        for role, user_id in users.items():
            tokens[role] = sessions.create(db, user_id, mfa_verified=True)[1]
        db.commit()

    app = str(REPO / "apps" / "dashboard.py")
    figures = []
    for title, page, who in PAGES:
        apps.session.session_cookie = lambda _settings, token=tokens[who]: token
        times = []
        for _ in range(1 + args.repeat):
            at = AppTest.from_file(app, default_timeout=300)
            at.query_params["period"] = "2025-06"
            at.run()
            t0 = time.perf_counter()
            at.switch_page(page).run()
            times.append(time.perf_counter() - t0)
            if at.exception:
                raise SystemExit(f"{title}: {at.exception[0].value}")
        figures.append((title, who, times[0], statistics.median(times[1:])))

    print(f"scale: {args.invoices:,} invoices (fct_invoices), {args.companies} companies, "
          f"{args.invoices // 4:,} reconciliation items, {args.invoices:,} Stripe balance transactions; "
          f"marts built and published in {built:.1f} s (DuckDB)")
    print(f"{'page':<26} {'as':<9} {'cold s':>8} {'warm s':>8}  target 1 s")
    for title, who, cold, warm in figures:
        verdict = "ok" if warm <= 1.0 else "OVER"
        print(f"{title:<26} {who:<9} {cold:>8.3f} {warm:>8.3f}  {verdict}")


if __name__ == "__main__":
    main()
