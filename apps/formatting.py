"""Display helpers for the dashboards: exact money (Decimal, never float), months and timestamps."""

from __future__ import annotations

from datetime import UTC, date, datetime
from decimal import Decimal

import pandas as pd

from ez360.core.money import MoneyError, from_minor


def money_decimal(minor: int, currency: str, currency_exponent: int | None = None) -> Decimal:
    """Exact major-unit amount. Uses the ISO 4217 table in ez360.core.money; for a currency it does not know,
    the exponent the warehouse recorded (currency_exponent) is used instead of failing the page."""
    try:
        return from_minor(int(minor), currency)
    except MoneyError:
        if currency_exponent is None:
            raise
        exp = int(currency_exponent)
        return Decimal(int(minor)).scaleb(-exp).quantize(Decimal(1).scaleb(-exp))


def format_amount(minor: int, currency: str, currency_exponent: int | None = None) -> str:
    """'12,345.67 USD', '1,234,000 JPY', '12.345 KWD': grouped, the currency's decimals, then the code."""
    return f"{money_decimal(minor, currency, currency_exponent):,} {currency.upper()}"


def format_month(value: date | datetime | str) -> str:
    """First-of-month date -> '2025-01'."""
    if isinstance(value, str):
        return value[:7]
    return f"{value.year:04d}-{value.month:02d}"


def format_timestamp(value: datetime | None) -> str:
    if value is None:
        return "never"
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC).strftime("%Y-%m-%d %H:%M UTC")


def gross_totals_by_currency(rows: pd.DataFrame) -> list[tuple[str, int, int]]:
    """[(currency, currency_exponent, gross_revenue_minor summed)] in currency order; sums stay integers."""
    totals: dict[str, list[int]] = {}
    for currency, exp, gross in zip(rows["currency"], rows["currency_exponent"], rows["gross_revenue_minor"],
                                    strict=True):
        entry = totals.setdefault(str(currency), [int(exp), 0])
        entry[1] += int(gross)
    return [(currency, exp, total) for currency, (exp, total) in sorted(totals.items())]


def monthly_table(rows: pd.DataFrame) -> pd.DataFrame:
    """One row per month and currency with exact, preformatted figures (strings, so no float rounding)."""
    table = pd.DataFrame({
        "Month": [format_month(m) for m in rows["revenue_month"]],
        "Currency": [str(c) for c in rows["currency"]],
        "Invoices": [int(n) for n in rows["invoice_count"]],
        "Net revenue": [format_amount(v, c, e) for v, c, e in
                        zip(rows["net_revenue_minor"], rows["currency"], rows["currency_exponent"], strict=True)],
        "Tax": [format_amount(v, c, e) for v, c, e in
                zip(rows["tax_minor"], rows["currency"], rows["currency_exponent"], strict=True)],
        "Gross revenue": [format_amount(v, c, e) for v, c, e in
                          zip(rows["gross_revenue_minor"], rows["currency"], rows["currency_exponent"],
                              strict=True)],
    })
    return table.sort_values(["Month", "Currency"], kind="stable").reset_index(drop=True)


def monthly_chart_data(rows: pd.DataFrame, currency: str) -> pd.DataFrame:
    """Gross revenue per month for one currency, as plain numbers for a chart (tables stay exact)."""
    subset = rows[rows["currency"] == currency]
    by_month: dict[str, Decimal] = {}
    for month, gross in zip(subset["revenue_month"], subset["gross_revenue"], strict=True):
        key = format_month(month)
        by_month[key] = by_month.get(key, Decimal(0)) + gross
    months = sorted(by_month)
    return pd.DataFrame({"Month": months, f"Gross revenue ({currency})": [float(by_month[m]) for m in months]})
