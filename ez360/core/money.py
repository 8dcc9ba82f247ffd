"""Money: integer minor units in storage, Decimal at the edges, ISO 4217 exponents.

Rounding is ROUND_HALF_UP to the currency's exponent (the convention invoices and tax authorities use);
an amount with more decimals than its currency allows is refused rather than silently rounded.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal, InvalidOperation

# ISO 4217 minor-unit exponents for the currencies the product supports.
CURRENCY_EXPONENTS: dict[str, int] = {
    "USD": 2, "EUR": 2, "GBP": 2, "CAD": 2, "AUD": 2, "CHF": 2, "SEK": 2, "NOK": 2, "DKK": 2,
    "NZD": 2, "SGD": 2, "HKD": 2, "MXN": 2, "INR": 2, "ZAR": 2, "BRL": 2, "PLN": 2,
    "JPY": 0, "KRW": 0, "CLP": 0, "ISK": 0, "VND": 0,
    "KWD": 3, "BHD": 3, "JOD": 3, "OMR": 3, "TND": 3,
}


class MoneyError(ValueError):
    """An amount or currency that cannot be represented exactly."""


def exponent(currency: str) -> int:
    try:
        return CURRENCY_EXPONENTS[currency.upper()]
    except KeyError:
        raise MoneyError(f"unknown currency {currency!r}: use an ISO 4217 code such as USD, EUR or JPY") from None


def to_minor(amount: Decimal | str | int, currency: str) -> int:
    """Exact conversion of a major-unit amount to minor units; refuses excess precision and floats."""
    if isinstance(amount, float):
        raise MoneyError("money must not be a float: pass a Decimal or a string")
    try:
        value = Decimal(amount)
    except (InvalidOperation, TypeError):
        raise MoneyError(f"not a number: {amount!r}") from None
    if not value.is_finite():
        raise MoneyError(f"not a finite amount: {amount!r}")
    exp = exponent(currency)
    scaled = value.scaleb(exp)
    if scaled != scaled.to_integral_value():
        raise MoneyError(f"{amount} has more than {exp} decimal places allowed for {currency.upper()}")
    return int(scaled)


def from_minor(minor: int, currency: str) -> Decimal:
    exp = exponent(currency)
    return (Decimal(minor).scaleb(-exp)).quantize(Decimal(1).scaleb(-exp))


def round_minor(value: Decimal) -> int:
    """Round a fractional minor-unit amount (e.g. quantity x price, or tax) to a whole minor unit."""
    return int(value.quantize(Decimal(1), rounding=ROUND_HALF_UP))


def allocate(total_minor: int, weights: list[int]) -> list[int]:
    """Split `total_minor` in proportion to `weights` with no unit created or lost (largest remainder)."""
    if not weights:
        raise MoneyError("cannot allocate over no weights")
    weight_sum = sum(weights)
    if weight_sum <= 0:
        raise MoneyError("allocation weights must sum to a positive number")
    shares = [total_minor * w // weight_sum for w in weights]
    remainders = sorted(range(len(weights)), key=lambda i: (-(total_minor * weights[i] % weight_sum), i))
    for i in remainders[: total_minor - sum(shares)]:
        shares[i] += 1
    return shares


def format_money(minor: int, currency: str) -> str:
    return f"{from_minor(minor, currency):,} {currency.upper()}"
