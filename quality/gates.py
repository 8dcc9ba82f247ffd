"""Every gated table, declared as data: THE one list the pipeline builds its blocking checks from.

    GATES["raw_ops.invoices"] -> Gate(layer="raw", keys=("id",), suite=...)

* Raw tables: schema, keys unique and not null, currencies valid, amounts integral, timestamps sane, row count
  within bounds of the previous load; each source's `_quarantine` share under a threshold.
* Published marts: every model under `dbt_project/models/marts/` is published (pipelines/warehouse reads the
  list from dbt's manifest), and a published mart without an entry here gets a gate that always fails, so a
  new mart cannot reach a dashboard ungated (tests/test_quality_registry.py fails first).

Adding a mart's gate = one `mart(...)` line below, with its identity expectations in quality/suites.py.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Literal

import great_expectations as gx
import great_expectations.expectations as gxe

from ez360.core.money import CURRENCY_EXPONENTS
from quality import suites

# row-count bounds against the last load that passed its gate: fewer than half, or more than 10x + 1000, fails
ROW_COUNT_MIN_RATIO = 0.5
ROW_COUNT_MAX_RATIO = 10
ROW_COUNT_MAX_SLACK = 1000
# share of a load's records quarantined above which the source's gate fails
QUARANTINE_MAX_SHARE = 0.05
EARLIEST_TIMESTAMP = datetime(2000, 1, 1, tzinfo=UTC)
Identity = Callable[[], gxe.Expectation]  # a business identity (quality/suites.py), built fresh per suite


@dataclass(frozen=True)
class GateContext:
    """What a suite may depend on besides the table: the run's clock and history."""

    now: datetime = field(default_factory=lambda: datetime.now(UTC))
    previous_row_count: int | None = None  # at the last passing gate of this table
    load_started_at: datetime | None = None  # quarantine gates: records quarantined since
    rows_loaded: int | None = None  # quarantine gates: records landed in that load
    engine: str = "duckdb"  # "duckdb" | "postgres": for the few SQL spellings that differ


@dataclass(frozen=True)
class Gate:
    table: str  # "schema.table"
    layer: Literal["raw", "mart"]
    suite: Callable[[GateContext], gx.ExpectationSuite]
    keys: tuple[str, ...] = ()
    optional: bool = False  # may not exist yet (a source that has landed nothing in it): passes when absent
    description: str = ""

    @property
    def schema_name(self) -> str:
        return self.table.split(".")[0]

    @property
    def table_name(self) -> str:
        return self.table.split(".")[1]

    @property
    def check_name(self) -> str:
        return "gate_" + self.table.replace(".", "__")

    @property
    def source(self) -> str | None:
        return self.schema_name.removeprefix("raw_") if self.layer == "raw" else None


_CURRENCIES = sorted({*CURRENCY_EXPONENTS, *(c.lower() for c in CURRENCY_EXPONENTS)})


def raw_suite(name: str, keys: tuple[str, ...], *, currencies: tuple[str, ...] = (), amounts: tuple[str, ...] = (),
              timestamps: tuple[str, ...] = (), epoch_seconds: tuple[str, ...] = (),
              columns: tuple[str, ...] = (), non_negative: tuple[str, ...] = (),
              identities: tuple[Identity, ...] = ()) -> Callable[[GateContext], gx.ExpectationSuite]:
    """A raw table's suite: required columns present, keys complete and unique, currencies ISO 4217,
    amounts (minor units) integral, timestamps between 2000 and tomorrow, row count near the last load's."""

    def build(ctx: GateContext) -> gx.ExpectationSuite:
        latest = ctx.now + timedelta(days=2)
        expectations: list[gxe.Expectation] = [
            *(gxe.ExpectColumnToExist(column=c) for c in dict.fromkeys((*keys, *columns, *currencies, *amounts))),
            *(gxe.ExpectColumnValuesToNotBeNull(column=k) for k in keys),
            (gxe.ExpectColumnValuesToBeUnique(column=keys[0]) if len(keys) == 1
             else gxe.ExpectCompoundColumnsToBeUnique(column_list=list(keys))),
            *(gxe.ExpectColumnValuesToBeInSet(column=c, value_set=_CURRENCIES) for c in currencies),
            *(gxe.UnexpectedRowsExpectation(
                description=f"{c} is integral (minor units)",
                unexpected_rows_query=f"SELECT {', '.join(keys)}, {c} FROM {{batch}} "
                                      f"WHERE {c} IS NOT NULL AND {c} <> FLOOR({c})") for c in amounts),
            *(gxe.ExpectColumnValuesToBeBetween(column=c, min_value=EARLIEST_TIMESTAMP, max_value=latest)
              for c in timestamps),
            *(gxe.ExpectColumnValuesToBeBetween(column=c, min_value=int(EARLIEST_TIMESTAMP.timestamp()),
                                                max_value=int(latest.timestamp())) for c in epoch_seconds),
            *(gxe.ExpectColumnValuesToBeBetween(column=c, min_value=0) for c in non_negative),
            _row_count_bounds(ctx.previous_row_count),
            *(make() for make in identities),
        ]
        return suites.build_suite(name, expectations)

    return build


def _row_count_bounds(previous: int | None) -> gxe.Expectation:
    if previous is None:
        return gxe.ExpectTableRowCountToBeBetween(min_value=0)
    return gxe.ExpectTableRowCountToBeBetween(
        min_value=math.ceil(previous * ROW_COUNT_MIN_RATIO),
        max_value=previous * ROW_COUNT_MAX_RATIO + ROW_COUNT_MAX_SLACK)


def quarantine_suite(name: str) -> Callable[[GateContext], gx.ExpectationSuite]:
    """A source's `_quarantine`: records quarantined by this load stay under QUARANTINE_MAX_SHARE of it."""

    def build(ctx: GateContext) -> gx.ExpectationSuite:
        since = (ctx.load_started_at or ctx.now).isoformat()
        landed = int(ctx.rows_loaded or 0)
        cast = f"CAST('{since}' AS TIMESTAMPTZ)" if ctx.engine == "duckdb" else f"'{since}'::timestamptz"
        this_load = f"(SELECT count(*) FROM {{batch}} WHERE quarantined_at >= {cast})"
        return suites.build_suite(name, [
            gxe.UnexpectedRowsExpectation(
                description=f"at most {QUARANTINE_MAX_SHARE:.0%} of a load's records quarantined",
                unexpected_rows_query=(
                    f"SELECT table_name, record_key, reason FROM {{batch}} WHERE quarantined_at >= {cast} "
                    f"AND {this_load} > {QUARANTINE_MAX_SHARE} * ({landed} + {this_load})")),
        ])

    return build


def raw(table: str, keys: tuple[str, ...] = ("id",), **kwargs) -> Gate:
    # a raw table exists once a load landed a row in it (dlt creates no empty tables): absent passes, and the
    # staging views give dbt an empty table instead
    optional = kwargs.pop("optional", True)
    return Gate(table, "raw", raw_suite(table, keys, **kwargs), keys, optional=optional)


def quarantine(source: str) -> Gate:
    return Gate(f"raw_{source}._quarantine", "raw", quarantine_suite(f"raw_{source}._quarantine"),
                ("table_name", "record_key"), optional=True)


def mart(table: str, keys: tuple[str, ...], *, currency: str | None = "currency", not_null: tuple[str, ...] = (),
         nullable_keys: tuple[str, ...] = (),
         identities: tuple[Identity, ...] = (), min_rows: int = 0,
         suite: Callable[[], gx.ExpectationSuite] | None = None) -> Gate:
    """A published mart's gate: keys complete and unique, its currency ISO 4217, `not_null` columns filled, at
    least `min_rows` rows, plus its business `identities` (quality/suites.py). `suite` replaces all of it."""

    def build(_ctx: GateContext) -> gx.ExpectationSuite:
        if suite is not None:
            return suite()
        return suites.build_suite(table, [
            *(gxe.ExpectColumnValuesToNotBeNull(column=c) for c in dict.fromkeys((*keys, *not_null))
              if c not in nullable_keys),
            (gxe.ExpectColumnValuesToBeUnique(column=keys[0]) if len(keys) == 1
             else gxe.ExpectCompoundColumnsToBeUnique(column_list=list(keys))),
            *([gxe.ExpectColumnValuesToBeInSet(column=currency, value_set=sorted(CURRENCY_EXPONENTS))]
              if currency else []),
            gxe.ExpectTableRowCountToBeBetween(min_value=min_rows),
            *(make() for make in identities),
        ])

    return Gate(table, "mart", build, keys)


_OPS_TS = ("created_at", "updated_at")
_STRIPE = {"epoch_seconds": ("created",), "columns": ("account_id",)}

GATE_LIST: list[Gate] = [
    # --- ops DB (raw_ops): money in integer minor units beside an ISO 4217 currency
    raw("raw_ops.companies", currencies=("base_currency",), timestamps=_OPS_TS),
    raw("raw_ops.clients", currencies=("currency",), timestamps=_OPS_TS, columns=("company_id",)),
    raw("raw_ops.projects", currencies=("currency",), amounts=("budget_minor", "hourly_rate_minor"),
        timestamps=_OPS_TS, columns=("company_id",)),
    raw("raw_ops.time_entries", currencies=("currency",), amounts=("rate_minor", "cost_rate_minor"),
        timestamps=_OPS_TS, columns=("company_id",)),
    raw("raw_ops.invoices", currencies=("currency",),
        amounts=("subtotal_minor", "tax_minor", "total_minor", "amount_paid_minor"),
        non_negative=("subtotal_minor", "tax_minor", "total_minor"),  # credit notes are their own documents
        timestamps=_OPS_TS, columns=("company_id", "number", "status")),
    raw("raw_ops.invoice_lines", amounts=("unit_price_minor", "net_minor", "tax_minor")),
    raw("raw_ops.payments", currencies=("currency",), amounts=("amount_minor",), timestamps=_OPS_TS,
        columns=("company_id",)),
    raw("raw_ops.expenses", currencies=("currency",), amounts=("amount_minor",), timestamps=_OPS_TS,
        columns=("company_id",)),
    raw("raw_ops.journal_entries", currencies=("currency",), timestamps=_OPS_TS, columns=("company_id",)),
    raw("raw_ops.journal_lines", amounts=("debit_minor", "credit_minor"), non_negative=("debit_minor", "credit_minor"),
        identities=(suites.raw_journal_balances,)),
    # --- Stripe (raw_stripe): integer minor units of a lower-case currency, `created` in epoch seconds
    raw("raw_stripe.charges", currencies=("currency",), amounts=("amount", "amount_refunded"), **_STRIPE),
    raw("raw_stripe.refunds", currencies=("currency",), amounts=("amount",), optional=True, **_STRIPE),
    raw("raw_stripe.payouts", currencies=("currency",), amounts=("amount",), **_STRIPE),
    raw("raw_stripe.balance_transactions", currencies=("currency",), amounts=("amount", "fee", "net"), **_STRIPE),
    raw("raw_stripe.payout_balance_transactions", keys=("payout_id", "balance_transaction_id"), optional=True),
    quarantine("stripe"),
    # --- ERPNext (raw_erpnext): decimals in major units, keyed by `name`
    raw("raw_erpnext.gl_entry", keys=("name",), columns=("account", "debit", "credit", "posting_date")),
    raw("raw_erpnext.sales_invoice", keys=("name",), currencies=("currency",), columns=("grand_total",)),
    raw("raw_erpnext.payment_entry", keys=("name",), optional=True),
    quarantine("erpnext"),
    # --- export files (raw_files): present once a file of that kind was dropped
    raw("raw_files.bank_statement_lines", keys=("line_id",), currencies=("currency",), optional=True),
    raw("raw_files.erpnext_gl_export", keys=("gl_entry",), currencies=("currency",), optional=True),
    quarantine("files"),
    # --- published marts: EVERY model in dbt_project/models/marts needs a line here
    mart("marts.rpt_revenue_by_company_month", tuple(suites.REVENUE_MART_KEYS), suite=suites.revenue_mart_gate_suite),
    mart("marts.dim_companies", ("company_id",), currency=None, not_null=("company_slug",), min_rows=1),
    mart("marts.fct_invoices", ("invoice_id",), not_null=("company_id",), identities=(suites.invoices_tie_out,)),
    mart("marts.fct_payments", ("payment_id",), not_null=("company_id",)),
    mart("marts.fct_refunds", ("refund_id",)),
    mart("marts.fct_gl_entries", ("gl_entry_id",), identities=(suites.gl_debits_equal_credits,)),
    mart("marts.fct_stripe_balance_transactions", ("balance_transaction_id",)),
    mart("marts.fct_stripe_payouts", ("payout_id",), identities=(suites.payout_sums,)),
    mart("marts.fct_reconciliation_items", ("item_key",), currency=None, not_null=("pair", "status"),
         identities=(suites.reconciliation_covers_stripe_charges, suites.reconciliation_covers_ops_payments)),
    mart("marts.rpt_ar_aging", ("company_id", "as_of_date", "currency", "aging_bucket"),
         identities=(suites.ar_aging_sums_to_open_invoices,)),
    mart("marts.rpt_dso_cei_by_month", ("company_id", "revenue_month", "currency")),
    mart("marts.rpt_revenue_by_month", ("company_id", "revenue_month", "currency")),
    mart("marts.rpt_stripe_balance_by_month", ("account_id", "created_month", "currency", "reporting_category")),
    mart("marts.rpt_unmapped_source_companies", ("source_company_key",), currency=None),
    mart("marts.rpt_raw_table_counts", ("source", "table_name", "load_id"), currency=None,
         nullable_keys=("load_id",)),
    mart("marts.rpt_quarantine_counts", ("source", "table_name", "reason"), currency=None),
    mart("marts.fct_reconciliation_candidates", ("candidate_key",), currency=None),
    # analytics marts (revenue, operations, adoption, executive)
    mart("marts.rpt_mrr_by_month", ("source_company_key", "mrr_month", "currency"),
         identities=(suites.mrr_bridge, suites.mrr_continuity, suites.mrr_ties_to_customers)),
    mart("marts.fct_mrr_customer_month", ("source_company_key", "customer_id", "currency", "mrr_month")),
    mart("marts.rpt_revenue_retention_by_month", ("source_company_key", "mrr_month", "currency")),
    mart("marts.rpt_project_profitability", ("project_id",)),
    mart("marts.rpt_budget_burn", ("project_id", "burn_month")),
    mart("marts.rpt_utilization_by_person_month", ("company_id", "user_id", "work_month"), currency=None),
    mart("marts.rpt_active_users_daily", ("scope", "company_id", "activity_date"), currency=None,
         nullable_keys=("company_id",)),  # the platform row has no company
    mart("marts.rpt_feature_adoption", ("company_id", "feature", "activity_month"), currency=None),
    mart("marts.rpt_onboarding_funnel", ("company_id", "step_key"), currency=None),
    mart("marts.rpt_activation", ("company_id",), currency=None),
    mart("marts.rpt_retention_cohorts_weekly", ("company_id", "cohort_week", "week_offset"), currency=None),
    mart("marts.rpt_user_lifecycle_weekly", ("company_id", "activity_week"), currency=None),
    mart("marts.rpt_executive_kpis_month", ("company_id", "kpi_month"), currency=None),
]

GATES: dict[str, Gate] = {gate.table: gate for gate in GATE_LIST}
if len(GATES) != len(GATE_LIST):
    raise ValueError("quality.gates: a table is declared twice")


def gates_for(layer: str) -> list[Gate]:
    return [g for g in GATE_LIST if g.layer == layer]


def missing_suite_gate(table: str) -> Gate:
    """The gate a published mart gets when nobody declared one: it always fails, naming the omission."""

    def build(_ctx: GateContext) -> gx.ExpectationSuite:
        return suites.build_suite(table, [gxe.UnexpectedRowsExpectation(
            description=f"no quality suite is declared for published table {table} in quality/gates.py",
            unexpected_rows_query="SELECT 'no suite declared' AS reason")])

    return Gate(table, "mart", build, (), description="missing suite")
