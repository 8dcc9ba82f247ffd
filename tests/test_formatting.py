"""Dashboard display helpers: exact money text in each currency's decimals, never via float."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone
from decimal import Decimal

import pandas as pd
import pytest
from hypothesis import given
from hypothesis import strategies as st

from apps.formatting import (
    format_amount,
    format_month,
    format_timestamp,
    gross_totals_by_currency,
    money_decimal,
    monthly_chart_data,
    monthly_table,
)
from ez360.core.money import CURRENCY_EXPONENTS, MoneyError, to_minor


@pytest.mark.parametrize(("minor", "currency", "text"), [
    (1_234_567, "USD", "12,345.67 USD"),
    (1_234_000, "JPY", "1,234,000 JPY"),
    (12_345, "KWD", "12.345 KWD"),
    (50, "usd", "0.50 USD"),
    (0, "KWD", "0.000 KWD"),
    (-1_050, "EUR", "-10.50 EUR"),
    (9_007_199_254_740_993, "USD", "90,071,992,547,409.93 USD"),  # beyond float precision
])
def test_amounts_are_grouped_with_the_currencys_decimals_and_code(minor, currency, text):
    assert format_amount(minor, currency) == text


@given(minor=st.integers(min_value=-10**18, max_value=10**18), currency=st.sampled_from(sorted(CURRENCY_EXPONENTS)))
def test_formatted_amounts_round_trip_exactly(minor, currency):
    number, code = format_amount(minor, currency).split(" ")
    assert code == currency
    assert to_minor(number.replace(",", ""), currency) == minor


def test_unknown_currency_uses_the_exponent_the_warehouse_recorded():
    assert money_decimal(12_345, "XTS", 3) == Decimal("12.345")
    assert format_amount(100, "XTS", 2) == "1.00 XTS"
    with pytest.raises(MoneyError):
        money_decimal(100, "XTS")


def test_months_and_timestamps_are_unambiguous():
    assert format_month(date(2025, 2, 1)) == "2025-02"
    assert format_month("2025-11-01") == "2025-11"
    assert format_timestamp(datetime(2025, 3, 4, 5, 6, tzinfo=timezone(timedelta(hours=2)))) == "2025-03-04 03:06 UTC"
    assert format_timestamp(datetime(2025, 3, 4, 5, 6)) == "2025-03-04 05:06 UTC"
    assert format_timestamp(None) == "never"


def _rows() -> pd.DataFrame:
    return pd.DataFrame({
        "revenue_month": [date(2025, 2, 1), date(2025, 1, 1), date(2025, 1, 1)],
        "currency": ["KWD", "KWD", "USD"],
        "currency_exponent": [3, 3, 2],
        "invoice_count": [1, 2, 3],
        "net_revenue_minor": [2_000, 10_000, 2**53],
        "tax_minor": [345, 0, 1],
        "gross_revenue_minor": [2_345, 10_000, 2**53 + 1],
        "gross_revenue": [Decimal("2.345"), Decimal("10.000"), Decimal(2**53 + 1) / 100],
    })


def test_totals_per_currency_are_integer_sums():
    assert gross_totals_by_currency(_rows()) == [("KWD", 3, 12_345), ("USD", 2, 2**53 + 1)]


def test_monthly_table_shows_exact_strings_in_month_order():
    table = monthly_table(_rows())
    assert list(table["Month"]) == ["2025-01", "2025-01", "2025-02"]
    assert list(table["Currency"]) == ["KWD", "USD", "KWD"]
    assert list(table["Gross revenue"]) == ["10.000 KWD", "90,071,992,547,409.93 USD", "2.345 KWD"]
    assert list(table["Tax"]) == ["0.000 KWD", "0.01 USD", "0.345 KWD"]


def test_chart_data_is_one_numeric_series_per_currency():
    chart = monthly_chart_data(_rows(), "KWD")
    assert list(chart.columns) == ["Month", "Gross revenue (KWD)"]
    assert chart.to_dict("list") == {"Month": ["2025-01", "2025-02"], "Gross revenue (KWD)": [10.0, 2.345]}

