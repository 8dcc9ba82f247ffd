"""A small published snapshot with every mart the dashboards read (MARTS_CONTRACT shapes), with figures chosen so
each page's numbers can be checked by hand: company 1 (acme, USD) and company 2 (globex, EUR) never share a
figure, so a leak shows. Built into a real DuckDB warehouse and published with the real publish step, or into
PostgreSQL for the row-level-security tests."""

from __future__ import annotations

import re
from datetime import date, datetime

import sqlalchemy as sa

ACME, GLOBEX = 1, 2
JUNE = date(2025, 6, 1)
MAY = date(2025, 5, 1)


def _months(year: int = 2025) -> list[date]:
    return [date(year, m, 1) for m in range(1, 13)]


def _kpis() -> list[tuple]:
    rows = []
    for company, scale in ((ACME, 1), (GLOBEX, 7)):
        for i, month in enumerate(_months(), start=1):
            rows.append((company, "acme" if company == ACME else "globex", month,
                         100_000 * i * scale,  # revenue_net_base_minor: acme June = 600_000 (6,000.00 USD)
                         90_000 * i * scale,  # collected
                         50_000 * i * scale,  # open AR
                         f"{30 + i}.5",  # dso_days
                         "0.9000",  # cei
                         10_000 * i * scale,  # mrr
                         120_000 * i * scale,  # arr
                         f"1.{i:02d}00", "0.9500",  # nrr, grr
                         f"0.{60 + i}00", "0.4000",  # utilization, margin
                         10 * i, "0.2500"))
    return rows


TABLES: dict[str, tuple[str, list[tuple]]] = {
    "rpt_revenue_by_company_month": (
        "company_id BIGINT, company_slug VARCHAR, company_name VARCHAR, revenue_month DATE, currency VARCHAR, "
        "currency_exponent INTEGER, invoice_count BIGINT, net_revenue_minor BIGINT, tax_minor BIGINT, "
        "gross_revenue_minor BIGINT",
        [(ACME, "acme", "Acme", JUNE, "USD", 2, 3, 600_000, 60_000, 660_000),
         (GLOBEX, "globex", "Globex", JUNE, "EUR", 2, 1, 4_200_000, 0, 4_200_000)]),
    "rpt_executive_kpis_month": (
        "company_id BIGINT, company_slug VARCHAR, kpi_month DATE, revenue_net_base_minor BIGINT, "
        "collected_base_minor BIGINT, open_ar_base_minor BIGINT, dso_days DECIMAL(18,4), cei_ratio DECIMAL(18,4), "
        "mrr_base_minor BIGINT, arr_base_minor BIGINT, nrr_ratio DECIMAL(18,4), grr_ratio DECIMAL(18,4), "
        "utilization_ratio DECIMAL(18,4), gross_margin_ratio DECIMAL(18,4), mau BIGINT, stickiness_ratio DECIMAL(18,4)",
        _kpis()),
    "rpt_mrr_by_month": (
        "company_id BIGINT, company_slug VARCHAR, mrr_month DATE, currency VARCHAR, opening_mrr_minor BIGINT, "
        "new_mrr_minor BIGINT, expansion_mrr_minor BIGINT, contraction_mrr_minor BIGINT, churned_mrr_minor BIGINT, "
        "reactivation_mrr_minor BIGINT, closing_mrr_minor BIGINT, arr_minor BIGINT, active_customers BIGINT, "
        "base_currency VARCHAR, opening_mrr_base_minor BIGINT, new_mrr_base_minor BIGINT, "
        "expansion_mrr_base_minor BIGINT, contraction_mrr_base_minor BIGINT, churned_mrr_base_minor BIGINT, "
        "reactivation_mrr_base_minor BIGINT, closing_mrr_base_minor BIGINT, arr_base_minor BIGINT",
        # acme bills in USD (its base) and EUR: the EUR line at 1.10 USD in May, 1.20 in June
        [(ACME, "acme", JUNE, "USD", 500_000, 100_000, 20_000, -5_000, -15_000, 0, 600_000, 7_200_000, 12,
          "USD", 500_000, 100_000, 20_000, -5_000, -15_000, 0, 600_000, 7_200_000),
         (ACME, "acme", MAY, "USD", 500_000, 0, 0, 0, 0, 0, 500_000, 6_000_000, 12,
          "USD", 500_000, 0, 0, 0, 0, 0, 500_000, 6_000_000),
         (ACME, "acme", MAY, "EUR", 100_000, 0, 0, 0, 0, 0, 100_000, 1_200_000, 1,
          "USD", 110_000, 0, 0, 0, 0, 0, 110_000, 1_320_000),
         (ACME, "acme", JUNE, "EUR", 100_000, 0, 0, 0, 0, 0, 100_000, 1_200_000, 1,
          "USD", 120_000, 0, 0, 0, 0, 0, 120_000, 1_440_000),
         (GLOBEX, "globex", JUNE, "EUR", 9_000_000, 0, 0, 0, -1_000_000, 0, 8_000_000, 96_000_000, 40,
          "EUR", 9_000_000, 0, 0, 0, -1_000_000, 0, 8_000_000, 96_000_000)]),
    "rpt_ar_aging": (
        "company_id BIGINT, as_of_date DATE, currency VARCHAR, aging_bucket VARCHAR, bucket_order INTEGER, "
        "open_minor BIGINT, invoice_count BIGINT, base_currency VARCHAR, open_base_minor BIGINT",
        [(ACME, date(2025, 6, 30), "USD", "current", 1, 30_000, 2, "USD", 30_000),
         (ACME, date(2025, 6, 30), "USD", "31-60", 3, 12_345, 1, "USD", 12_345),
         (ACME, date(2025, 6, 30), "EUR", "31-60", 3, 10_000, 1, "USD", 12_000),
         (GLOBEX, date(2025, 6, 30), "EUR", "90+", 5, 999_999, 9, "EUR", 999_999)]),
    "fct_invoices": (
        "invoice_id BIGINT, company_id BIGINT, client_id BIGINT, project_id BIGINT, invoice_number VARCHAR, "
        "status VARCHAR, currency VARCHAR, issue_date DATE, due_date DATE, invoice_month DATE, "
        "net_minor BIGINT, paid_minor BIGINT, due_minor BIGINT, is_revenue BOOLEAN, net_base_minor BIGINT",
        [(1, ACME, 11, 31, "AC-2025-00001", "paid", "USD", date(2025, 6, 3), date(2025, 7, 3), JUNE,
          250_000, 250_000, 0, True, 250_000),
         (2, ACME, 11, 31, "AC-2025-00002", "sent", "USD", date(2025, 6, 20), date(2025, 7, 20), JUNE,
          150_000, 0, 150_000, True, 150_000),
         (3, ACME, 12, None, "AC-2025-00003", "sent", "EUR", date(2025, 6, 25), date(2025, 7, 25), JUNE,
          180_000, 0, 180_000, True, 200_000),
         (4, ACME, 12, None, "AC-2025-00004", "sent", "USD", date(2025, 5, 25), date(2025, 6, 25),
          date(2025, 5, 1), 70_000, 0, 70_000, True, 70_000),
         (5, GLOBEX, 21, 41, "GL-2025-00001", "sent", "EUR", date(2025, 6, 10), date(2025, 7, 10), JUNE,
          4_200_000, 0, 4_200_000, True, 4_200_000)]),
    "rpt_project_profitability": (
        "project_id BIGINT, company_id BIGINT, project_name VARCHAR, currency VARCHAR, billed_minor BIGINT, "
        "time_cost_minor BIGINT, expense_minor BIGINT, base_currency VARCHAR, billed_base_minor BIGINT, "
        "time_cost_base_minor BIGINT, expense_base_minor BIGINT, profit_base_minor BIGINT, margin_ratio DECIMAL(18,4)",
        [(31, ACME, "Website rebuild", "EUR", 360_000, 180_000, 36_000, "USD", 400_000, 200_000, 40_000, 160_000,
          "0.4000"),
         (41, GLOBEX, "Globex portal", "EUR", 4_200_000, 1_000_000, 0, "EUR", 4_200_000, 1_000_000, 0, 3_200_000,
          "0.7619")]),
    "fct_reconciliation_items": (
        "item_key VARCHAR, pair VARCHAR, company_id BIGINT, company_slug VARCHAR, status VARCHAR, currency VARCHAR, "
        "amount_minor BIGINT, other_amount_minor BIGINT, difference_minor BIGINT, left_source VARCHAR, "
        "left_id VARCHAR, right_source VARCHAR, right_id VARCHAR, event_date DATE, other_date DATE, "
        "resolution_action VARCHAR, is_resolved BOOLEAN, effective_status VARCHAR",
        [("ops_payment~stripe_charge:p1", "ops_payment~stripe_charge", ACME, "acme", "amount_mismatch", "USD",
          10_000, 9_965, 35, "ops", "p1", "stripe", "ch_1", date(2025, 6, 2), date(2025, 6, 2), None, False,
          "amount_mismatch"),
         ("ops_payment~stripe_charge:p2", "ops_payment~stripe_charge", ACME, "acme", "matched", "USD",
          20_000, 20_000, 0, "ops", "p2", "stripe", "ch_2", date(2025, 6, 3), date(2025, 6, 3), None, False,
          "matched"),
         ("stripe_payout~erp_bank_transaction:po_1", "stripe_payout~erp_bank_transaction", ACME, "acme",
          "missing_in_bank", "USD", 96_465, None, 96_465, "stripe", "po_1", "erpnext", None, date(2025, 6, 5),
          None, None, False, "missing_in_bank"),
         ("ops_payment~stripe_charge:g1", "ops_payment~stripe_charge", GLOBEX, "globex", "missing_in_stripe",
          "EUR", 777_000, None, 777_000, "ops", "g1", "stripe", None, date(2025, 6, 9), None, None, False,
          "missing_in_stripe")]),
    "fct_reconciliation_candidates": (
        "candidate_key VARCHAR, item_key VARCHAR, pair VARCHAR, candidate_rank INTEGER, candidate_side VARCHAR, "
        "candidate_id VARCHAR, amount_ok BOOLEAN, date_ok BOOLEAN, reference_ok BOOLEAN, customer_ok BOOLEAN, "
        "score DECIMAL(18,4)",  # no company_id: scoped through its item (apps.data.CHILD_TABLES)
        [("c1", "ops_payment~stripe_charge:p1", "ops_payment~stripe_charge", 1, "stripe", "ch_1", False, True,
          True, True, "0.7500"),
         ("c2", "ops_payment~stripe_charge:p1", "ops_payment~stripe_charge", 2, "stripe", "ch_9", True, False,
          False, True, "0.5000"),
         ("c3", "ops_payment~stripe_charge:g1", "ops_payment~stripe_charge", 1, "stripe", "ch_g", True, True,
          False, False, "0.5000")]),
    "fct_stripe_payouts": (
        "payout_id VARCHAR, account_id VARCHAR, company_id BIGINT, amount_minor BIGINT, currency VARCHAR, "
        "status VARCHAR, arrival_date DATE, settled_net_minor BIGINT, is_failed BOOLEAN",
        [("po_1", "acct_acme", ACME, 96_465, "USD", "paid", date(2025, 6, 5), 96_465, False),
         ("po_g", "acct_globex", GLOBEX, 5_000_000, "EUR", "paid", date(2025, 6, 6), 5_000_000, False)]),
    "fct_stripe_balance_transactions": (
        "balance_transaction_id VARCHAR, account_id VARCHAR, company_id BIGINT, transaction_type VARCHAR, "
        "reporting_category VARCHAR, source_id VARCHAR, currency VARCHAR, amount_minor BIGINT, fee_minor BIGINT, "
        "net_minor BIGINT, payout_id VARCHAR, created_at TIMESTAMP",
        [("txn_1", "acct_acme", ACME, "charge", "charge", "ch_1", "USD", 100_000, 3_200, 96_800, "po_1",
          datetime(2025, 6, 1, 10)),
         ("txn_2", "acct_acme", ACME, "refund", "refund", "re_1", "USD", -300, 0, -300, "po_1",
          datetime(2025, 6, 2, 10)),
         ("txn_3", "acct_acme", ACME, "stripe_fee", "fee", "fee_1", "USD", -35, 0, -35, "po_1",
          datetime(2025, 6, 3, 10)),
         ("txn_po1", "acct_acme", ACME, "payout", "payout", "po_1", "USD", -96_465, 0, -96_465, "po_1",
          datetime(2025, 6, 4, 10)),
         ("txn_g", "acct_globex", GLOBEX, "charge", "charge", "ch_g", "EUR", 5_000_000, 0, 5_000_000, "po_g",
          datetime(2025, 6, 1, 10))]),
    "rpt_active_users_daily": (
        "company_id BIGINT, activity_date DATE, dau BIGINT, wau BIGINT, mau BIGINT, stickiness_ratio DECIMAL(18,4)",
        [(ACME, date(2025, 6, 29), 3, 5, 8, "0.3750"), (ACME, date(2025, 6, 30), 4, 6, 8, "0.5000"),
         (GLOBEX, date(2025, 6, 30), 33, 44, 55, "0.6000"), (None, date(2025, 6, 30), 37, 50, 63, "0.5873")]),
    "rpt_feature_adoption": (
        "company_id BIGINT, feature VARCHAR, activity_month DATE, users BIGINT, adoption_ratio DECIMAL(18,4)",
        [(ACME, "invoice_sent", JUNE, 4, "0.5000"), (ACME, "time_logged", JUNE, 7, "0.8750"),
         (GLOBEX, "globex_only_feature", JUNE, 50, "0.9000")]),
    "rpt_onboarding_funnel": (
        "company_id BIGINT, step_order INTEGER, step_key VARCHAR, reached_on DATE, is_reached BOOLEAN",
        [(ACME, 1, "signed_up", date(2025, 1, 2), True), (ACME, 2, "first_client", date(2025, 1, 3), True),
         (ACME, 3, "first_invoice_sent", None, False), (GLOBEX, 1, "globex_signed_up", date(2025, 1, 2), True)]),
    "rpt_activation": (
        "company_id BIGINT, signed_up_on DATE, first_login_on DATE, first_invoice_sent_on DATE, is_activated BOOLEAN, "
        "days_to_activation INTEGER",
        [(ACME, date(2025, 1, 2), date(2025, 1, 2), date(2025, 1, 9), True, 7),
         (GLOBEX, date(2025, 1, 2), date(2025, 1, 2), None, False, None)]),
    "rpt_retention_cohorts_weekly": (
        "company_id BIGINT, cohort_week DATE, week_offset INTEGER, cohort_users BIGINT, retained_users BIGINT, "
        "retention_ratio DECIMAL(18,4)",
        [(ACME, date(2025, 6, 2), 0, 4, 4, "1.0000"), (ACME, date(2025, 6, 2), 1, 4, 3, "0.7500"),
         (GLOBEX, date(2025, 6, 2), 0, 50, 50, "1.0000")]),
    "rpt_user_lifecycle_weekly": (
        "company_id BIGINT, activity_week DATE, new_users BIGINT, returning_users BIGINT, resurrected_users BIGINT, "
        "dormant_users BIGINT",
        [(ACME, date(2025, 6, 2), 2, 3, 1, 1), (GLOBEX, date(2025, 6, 2), 20, 30, 0, 5)]),
    "rpt_quarantine_counts": (
        "source VARCHAR, table_name VARCHAR, reason VARCHAR, quarantined_count BIGINT, last_quarantined_at TIMESTAMP",
        [("stripe", "charges", "missing_field:id", 2, datetime(2025, 6, 30, 3))]),
    "rpt_unmapped_source_companies": (
        "source VARCHAR, source_key VARCHAR, source_company_key VARCHAR, row_count BIGINT, first_seen_on DATE",
        [("stripe", "acct_stranger", "stripe:acct_stranger", 14, date(2025, 6, 1))]),
}


def columns(ddl: str) -> list[str]:
    return [part.strip().split()[0] for part in re.split(r",(?![^()]*\))", ddl)]


def build_duckdb(path, tables: dict = TABLES) -> list[str]:
    """Write the marts into a DuckDB warehouse file; returns the `marts.x` names to publish."""
    import duckdb

    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        for name, (ddl, rows) in tables.items():
            con.execute(f"DROP TABLE IF EXISTS marts.{name}")
            con.execute(f"CREATE TABLE marts.{name} ({ddl})")
            if rows:
                marks = ", ".join("?" for _ in rows[0])
                con.executemany(f"INSERT INTO marts.{name} VALUES ({marks})", rows)
    finally:
        con.close()
    return [f"marts.{name}" for name in tables]


def build_postgres(url: str, schema: str = "marts", tables: dict = TABLES) -> list[str]:
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text(f"CREATE SCHEMA IF NOT EXISTS {schema}"))
        for name, (ddl, rows) in tables.items():
            pg_ddl = ddl.replace("VARCHAR", "TEXT").replace("DOUBLE", "DOUBLE PRECISION")
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {schema}.{name}"))
            conn.execute(sa.text(f"CREATE TABLE {schema}.{name} ({pg_ddl})"))
            if rows:
                cols = columns(ddl)
                marks = ", ".join(f":{c}" for c in cols)
                conn.execute(sa.text(f"INSERT INTO {schema}.{name} VALUES ({marks})"),
                             [dict(zip(cols, r, strict=True)) for r in rows])
    engine.dispose()
    return [f"{schema}.{name}" for name in tables]
