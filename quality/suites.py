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
    """Gate for marts.rpt_revenue_by_company_month: complete keys, non-negative amounts in a supported
    ISO 4217 currency with its exponent, one row per company x month x currency, and at least one row."""
    not_null = [*REVENUE_MART_KEYS, "company_slug", "company_name", "currency_exponent", "invoice_count",
                "net_revenue_minor", "tax_minor", "gross_revenue_minor"]
    return build_suite("rpt_revenue_by_company_month", [
        *(gxe.ExpectColumnValuesToNotBeNull(column=column) for column in not_null),
        *(gxe.ExpectColumnValuesToBeBetween(column=column, min_value=0)
          for column in ["net_revenue_minor", "tax_minor", "gross_revenue_minor"]),
        gxe.ExpectColumnValuesToBeBetween(column="invoice_count", min_value=1),
        gxe.ExpectColumnValuesToBeInSet(column="currency", value_set=sorted(CURRENCY_EXPONENTS)),
        gxe.ExpectColumnValuesToBeInSet(column="currency_exponent",
                                        value_set=sorted(set(CURRENCY_EXPONENTS.values()))),
        gxe.ExpectCompoundColumnsToBeUnique(column_list=REVENUE_MART_KEYS),
        gxe.ExpectTableRowCountToBeBetween(min_value=1),
    ])


REVENUE_STATUSES = ("sent", "partially_paid", "paid")  # issued invoices: the business definition of revenue


def revenue_mart_tie_out() -> gxe.Expectation:
    """Invoice tie-out, recomputed from the raw ops copy (not the model's staging): per company and currency,
    the mart's gross revenue and invoice count equal those of the issued invoices.

    (GX aliases `{batch}` itself unless the query has a JOIN; then the query must alias it, as here.)"""
    statuses = ", ".join(f"'{s}'" for s in REVENUE_STATUSES)
    return gxe.UnexpectedRowsExpectation(
        description="gross revenue and invoice count per company and currency tie out to raw_ops.invoices",
        unexpected_rows_query=f"""
            WITH mart AS (
                SELECT company_id, currency, SUM(gross_revenue_minor) AS gross, SUM(invoice_count) AS n
                FROM {{batch}} AS mart_rows GROUP BY company_id, currency),
            invoices AS (
                SELECT company_id, currency, SUM(total_minor) AS gross, COUNT(*) AS n
                FROM raw_ops.invoices WHERE status IN ({statuses}) GROUP BY company_id, currency)
            SELECT COALESCE(mart.company_id, invoices.company_id) || '|' || COALESCE(mart.currency, invoices.currency)
                       AS company_currency,
                   mart.gross AS mart_gross_minor, invoices.gross AS invoices_gross_minor
            FROM mart FULL OUTER JOIN invoices
              ON mart.company_id = invoices.company_id AND mart.currency = invoices.currency
            WHERE COALESCE(mart.gross, 0) <> COALESCE(invoices.gross, 0)
               OR COALESCE(mart.n, 0) <> COALESCE(invoices.n, 0)
        """)


def revenue_mart_gate_suite() -> gx.ExpectationSuite:
    """The published gate of the revenue mart: its shape (revenue_mart_suite) plus the invoice tie-out."""
    return build_suite("gate_rpt_revenue_by_company_month",
                       [*revenue_mart_suite().expectations, revenue_mart_tie_out()])


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
