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
    return _suite("rpt_revenue_by_company_month", [
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


def _suite(name: str, expectations: list[gxe.Expectation]) -> gx.ExpectationSuite:
    # Built through the constructor: suite.add_expectation() needs an active data context.
    suite = gx.ExpectationSuite(name=name, expectations=expectations)
    if len(suite.expectations) != len(expectations):  # GX logs and drops an invalid expectation
        raise ValueError(f"suite {name}: {len(expectations) - len(suite.expectations)} invalid expectations")
    return suite


# (schema, table) -> suite factory: the tables that have a gate.
SUITES: dict[tuple[str, str], Callable[[], gx.ExpectationSuite]] = {
    REVENUE_MART: revenue_mart_suite,
}
