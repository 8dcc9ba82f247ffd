from decimal import Decimal

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ez360.core.money import CURRENCY_EXPONENTS, MoneyError, allocate, format_money, from_minor, to_minor


@pytest.mark.parametrize(("amount", "currency", "minor"), [
    ("12.34", "USD", 1234), ("1000", "JPY", 1000), ("1.234", "KWD", 1234), ("0.01", "EUR", 1), ("-5.5", "GBP", -550),
])
def test_amounts_convert_exactly_to_minor_units_by_currency_exponent(amount, currency, minor):
    assert to_minor(amount, currency) == minor
    assert from_minor(minor, currency) == Decimal(amount)


@pytest.mark.parametrize(("amount", "currency"), [("12.345", "USD"), ("1.5", "JPY"), ("0.0001", "KWD")])
def test_amount_with_more_decimals_than_the_currency_allows_is_refused(amount, currency):
    with pytest.raises(MoneyError, match="decimal places"):
        to_minor(amount, currency)


def test_unknown_currency_and_floats_are_refused_with_a_clear_error():
    with pytest.raises(MoneyError, match="unknown currency 'XYZ'"):
        to_minor("1", "XYZ")
    with pytest.raises(MoneyError, match="float"):
        to_minor(0.1, "USD")
    with pytest.raises(MoneyError, match="not a number"):
        to_minor("ten", "USD")


def test_formatting_shows_the_currency_precision():
    assert format_money(123456789, "USD") == "1,234,567.89 USD"
    assert format_money(1234000, "JPY") == "1,234,000 JPY"
    assert format_money(12345, "KWD") == "12.345 KWD"


@given(total=st.integers(min_value=0, max_value=10**12),
       weights=st.lists(st.integers(min_value=1, max_value=10**6), min_size=1, max_size=20))
def test_allocation_creates_and_loses_no_minor_unit(total, weights):
    shares = allocate(total, weights)
    assert sum(shares) == total
    assert all(s >= 0 for s in shares)
    exact = [Decimal(total) * w / sum(weights) for w in weights]
    assert all(abs(s - e) < 1 for s, e in zip(shares, exact, strict=True))


@given(minor=st.integers(min_value=-10**15, max_value=10**15), currency=st.sampled_from(sorted(CURRENCY_EXPONENTS)))
def test_minor_units_round_trip_through_decimal(minor, currency):
    assert to_minor(from_minor(minor, currency), currency) == minor


@given(st.integers(min_value=-10**15, max_value=10**15), st.sampled_from(sorted(CURRENCY_EXPONENTS)))
def test_a_list_page_writes_each_amount_as_the_exact_decimal_the_invoice_answer_shows(minor, currency):
    """The invoice list formats amounts as text itself (issue 8); it must read as the model's Decimal does."""
    from operational_api.api.schemas import money, money_formatter
    assert money_formatter(currency)(minor) == str(money(minor, currency)) == str(from_minor(minor, currency))
