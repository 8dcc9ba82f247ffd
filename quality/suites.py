"""Expectation suites as code: the quality gate a table must pass before it is published.

Each function returns a fresh, unsaved `ExpectationSuite` (an expectation belongs to one suite, so
never share instances); quality.runner.run_suite() validates it against a warehouse table.
"""

from __future__ import annotations

from collections.abc import Callable

import great_expectations as gx
import great_expectations.expectations as gxe

from ez360.core.money import CURRENCY_EXPONENTS

REVENUE_MART = ("marts", "rpt_revenue_by_company_month")
REVENUE_MART_KEYS = ["company_id", "revenue_month", "currency"]


def revenue_mart_suite() -> gx.ExpectationSuite:
    """Gate for marts.rpt_revenue_by_company_month: complete keys, amounts in a supported ISO 4217 currency with
    its exponent, one row per company x month x currency, at least one row, and revenue per company and currency
    never negative over all months (a month alone may be: credit notes count in their own month)."""
    not_null = [*REVENUE_MART_KEYS, "company_slug", "company_name", "currency_exponent", "invoice_count",
                "net_revenue_minor", "tax_minor", "gross_revenue_minor"]
    return build_suite("rpt_revenue_by_company_month", [
        *(gxe.ExpectColumnValuesToNotBeNull(column=column) for column in not_null),
        gxe.ExpectColumnValuesToBeBetween(column="invoice_count", min_value=0),
        gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=sorted(CURRENCY_EXPONENTS)),
        gxe.ExpectColumnValuesToBeInSet(column="currency_exponent",
                                        value_set=sorted(set(CURRENCY_EXPONENTS.values()))),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=REVENUE_MART_KEYS),
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
        gxe.UnexpectedRowsExpectation(
            description="revenue per company and currency over all months is not negative",
            unexpected_rows_query="SELECT company_id || '|' || currency AS company_currency, "
                                  "SUM(gross_revenue_minor) AS gross_minor FROM {batch} "
                                  "GROUP BY company_id, currency HAVING SUM(gross_revenue_minor) < 0 "
                                  "OR SUM(net_revenue_minor) < 0 OR SUM(tax_minor) < 0"),
    ])


REVENUE_STATUSES = ("sent", "partially_paid", "paid")  # issued invoices: the business definition of revenue


def revenue_mart_tie_out() -> gxe.Expectation:
    """Invoice tie-out, recomputed from the raw ops copy (not the model's staging): per company and currency,
    the mart's gross revenue equals the issued invoices' totals less their credit notes, and its invoice count
    the number of issued invoices. (Credit notes come through their staging view, a plain rename that exists
    before the first credit note lands; raw_ops.credit_notes does not.)

    (GX aliases `{batch}` itself unless the query has a JOIN; then the query must alias it, as here.)"""
    statuses = ", ".join(f"'{s}'" for s in REVENUE_STATUSES)
    return gxe.UnexpectedRowsExpectation(
        description="gross revenue (net of credit notes) and invoice count per company and currency tie out "
                    "to raw_ops.invoices and the credit notes",
        unexpected_rows_query=f"""
            WITH mart AS (
                SELECT company_id, currency, SUM(gross_revenue_minor) AS gross, SUM(invoice_count) AS n
                FROM {{batch}} AS mart_rows GROUP BY company_id, currency),
            issued AS (
                SELECT id, company_id, currency, total_minor FROM raw_ops.invoices WHERE status IN ({statuses})),
            credited AS (
                SELECT issued.company_id, issued.currency, SUM(notes.total_minor) AS total
                FROM staging.stg_ops__credit_notes AS notes JOIN issued ON issued.id = notes.invoice_id
                GROUP BY issued.company_id, issued.currency),
            invoices AS (
                SELECT company_id, currency, SUM(total_minor) AS gross, COUNT(*) AS n
                FROM issued GROUP BY company_id, currency),
            expected AS (
                SELECT invoices.company_id, invoices.currency, invoices.n,
                       invoices.gross - COALESCE(credited.total, 0) AS gross
                FROM invoices LEFT JOIN credited
                  ON credited.company_id = invoices.company_id AND credited.currency = invoices.currency)
            SELECT COALESCE(mart.company_id, expected.company_id) || '|' || COALESCE(mart.currency, expected.currency)
                       AS company_currency,
                   mart.gross AS mart_gross_minor, expected.gross AS expected_gross_minor
            FROM mart FULL OUTER JOIN expected
              ON mart.company_id = expected.company_id AND mart.currency = expected.currency
            WHERE COALESCE(mart.gross, 0) <> COALESCE(expected.gross, 0)
               OR COALESCE(mart.n, 0) <> COALESCE(expected.n, 0)
        """)


def revenue_mart_gate_suite() -> gx.ExpectationSuite:
    """The published gate of the revenue mart: its shape (revenue_mart_suite) plus the invoice tie-out."""
    return build_suite("gate_rpt_revenue_by_company_month",
                       [*revenue_mart_suite().expectations, revenue_mart_tie_out()])


def invoices_tie_out() -> gxe.Expectation:
    """Each invoice in the mart is an ops invoice with the same total and currency (raw_ops, not staging)."""
    return identity(
        "every fct_invoices row is a raw_ops invoice with the same currency and total",
        "SELECT f.invoice_id, f.invoiced_minor, r.total_minor FROM {batch} AS f "
        "LEFT JOIN raw_ops.invoices AS r ON r.id = f.invoice_id "
        "WHERE r.id IS NULL OR r.total_minor <> f.invoiced_minor OR r.currency <> f.currency")


def gl_debits_equal_credits() -> gxe.Expectation:
    """Double entry: each ERPNext voucher's GL entries balance (debits = credits, company currency)."""
    return identity(
        "debits = credits for every voucher in fct_gl_entries",
        "SELECT voucher_type || ':' || voucher_no AS voucher, SUM(debit_minor) AS debit_minor, "
        "SUM(credit_minor) AS credit_minor FROM {batch} GROUP BY company, voucher_type, voucher_no "
        "HAVING SUM(debit_minor) <> SUM(credit_minor)")


def raw_journal_balances() -> gxe.Expectation:
    """Double entry in the ops ledger: each journal entry's lines balance."""
    return identity(
        "debits = credits for every journal entry in raw_ops.journal_lines",
        "SELECT journal_entry_id, SUM(debit_minor) AS debit_minor, SUM(credit_minor) AS credit_minor "
        "FROM {batch} GROUP BY journal_entry_id HAVING SUM(debit_minor) <> SUM(credit_minor)")


def payout_sums() -> gxe.Expectation:
    """A paid automatic payout's amount equals the net of the balance transactions it settles, recomputed from
    raw Stripe (payout members, excluding the payout's own `payout` transaction)."""
    return identity(
        "each paid automatic payout equals the net of the balance transactions it settles (raw_stripe)",
        "SELECT p.payout_id, p.amount_minor, SUM(bt.net) AS settled_net FROM {batch} AS p "
        "JOIN raw_stripe.payout_balance_transactions AS m ON m.payout_id = p.payout_id "
        "JOIN raw_stripe.balance_transactions AS bt ON bt.id = m.balance_transaction_id AND bt.type <> 'payout' "
        "WHERE p.status = 'paid' AND p.is_automatic "
        "GROUP BY p.payout_id, p.amount_minor HAVING SUM(bt.net) <> p.amount_minor")


def reconciliation_covers_stripe_charges() -> gxe.Expectation:
    """Reconciliation coverage: every Stripe charge landed is an item of the ops payment ~ Stripe charge pair."""
    return identity(
        "every raw Stripe charge appears in fct_reconciliation_items (pair ops_payment~stripe_charge)",
        "SELECT c.id FROM raw_stripe.charges AS c LEFT JOIN {batch} AS i "
        "ON i.pair = 'ops_payment~stripe_charge' AND (i.left_id = c.id OR i.right_id = c.id) "
        "WHERE i.item_key IS NULL")


def reconciliation_covers_ops_payments() -> gxe.Expectation:
    """Reconciliation coverage: every card payment in the ops app is an item of the same pair."""
    return identity(
        "every raw ops payment with a Stripe charge appears in fct_reconciliation_items",
        "SELECT CAST(p.id AS VARCHAR) AS payment_id FROM raw_ops.payments AS p LEFT JOIN {batch} AS i "
        "ON i.pair = 'ops_payment~stripe_charge' AND (i.left_id = p.stripe_charge_id "
        "OR i.right_id = p.stripe_charge_id OR i.left_id = CAST(p.id AS VARCHAR)) "
        "WHERE p.stripe_charge_id IS NOT NULL AND i.item_key IS NULL")


def ar_aging_sums_to_open_invoices() -> gxe.Expectation:
    """AR aging: at the latest as-of date, the buckets of each company and currency sum to what fct_invoices says
    is still due."""
    return identity(
        "AR aging buckets at the latest as-of date sum to the open amount of fct_invoices",
        "WITH latest AS (SELECT company_id, currency, SUM(open_minor) AS open_minor FROM {batch} AS a "
        "WHERE a.as_of_date = (SELECT MAX(as_of_date) FROM marts.rpt_ar_aging) GROUP BY company_id, currency), "
        "due AS (SELECT company_id, currency, SUM(due_minor) AS due_minor FROM marts.fct_invoices "
        "WHERE due_minor > 0 GROUP BY company_id, currency) "
        "SELECT COALESCE(latest.company_id, due.company_id) || '|' || COALESCE(latest.currency, due.currency) "
        "AS company_currency, latest.open_minor, due.due_minor FROM latest FULL OUTER JOIN due "
        "ON latest.company_id = due.company_id AND latest.currency = due.currency "
        "WHERE COALESCE(latest.open_minor, 0) <> COALESCE(due.due_minor, 0)")


_MRR_MOVEMENTS = ("new_mrr_minor", "expansion_mrr_minor", "contraction_mrr_minor", "churned_mrr_minor",
                  "reactivation_mrr_minor")


def mrr_bridge() -> gxe.Expectation:
    """MRR bridge: opening + new + expansion + contraction + churn + reactivation = closing, in every row."""
    movements = " + ".join(_MRR_MOVEMENTS)
    return identity(
        "MRR bridge: opening + movements = closing",
        f"SELECT source_company_key || '|' || currency || '|' || CAST(mrr_month AS VARCHAR) AS bridge_row, "
        f"opening_mrr_minor, closing_mrr_minor FROM {{batch}} "
        f"WHERE opening_mrr_minor + {movements} <> closing_mrr_minor")


def mrr_continuity() -> gxe.Expectation:
    """MRR bridge continuity: a month opens where the previous month of the same company and currency closed."""
    return identity(
        "MRR bridge: each month's opening equals the previous month's closing",
        "SELECT bridge_row, opening_mrr_minor, previous_closing FROM (SELECT source_company_key || '|' || currency "
        "|| '|' || CAST(mrr_month AS VARCHAR) AS bridge_row, opening_mrr_minor, LAG(closing_mrr_minor) OVER "
        "(PARTITION BY source_company_key, currency ORDER BY mrr_month) AS previous_closing FROM {batch}) AS months "
        "WHERE previous_closing IS NOT NULL AND previous_closing <> opening_mrr_minor")


def mrr_ties_to_customers() -> gxe.Expectation:
    """MRR tie-out across marts: a month's closing MRR is the sum of its customers' MRR (fct_mrr_customer_month)."""
    return identity(
        "closing MRR per company, month and currency equals the sum of fct_mrr_customer_month",
        "SELECT m.source_company_key || '|' || m.currency || '|' || CAST(m.mrr_month AS VARCHAR) AS bridge_row, "
        "m.closing_mrr_minor, c.mrr_minor FROM {batch} AS m LEFT JOIN (SELECT source_company_key, currency, "
        "mrr_month, SUM(mrr_minor) AS mrr_minor FROM marts.fct_mrr_customer_month "
        "GROUP BY source_company_key, currency, mrr_month) AS c ON c.source_company_key = m.source_company_key "
        "AND c.currency = m.currency AND c.mrr_month = m.mrr_month "
        "WHERE COALESCE(c.mrr_minor, 0) <> m.closing_mrr_minor")


def identity(description: str, query: str) -> gxe.Expectation:
    """A business identity as a query returning the rows that break it (its first column names the row).
    `{batch}` is the gated table; a query with a JOIN must alias it (`{batch} AS t`), others must not."""
    return gxe.UnexpectedRowsExpectation(description=description, unexpected_rows_query=query)


def build_suite(name: str, expectations: list[gxe.Expectation]) -> gx.ExpectationSuite:
    # Built through the constructor: suite.add_expectation() needs an active data context.
    suite = gx.ExpectationSuite(name=name, expectations=expectations)
    if len(suite.expectations) != len(expectations):  # GX logs and drops an invalid expectation
        raise ValueError(f"suite {name}: {len(expectations) - len(suite.expectations)} invalid expectations")
    return suite


# (schema, table) -> suite factory: the tables that have a gate.
SUITES: dict[tuple[str, str], Callable[[], gx.ExpectationSuite]] = {
    REVENUE_MART: revenue_mart_suite,
}
