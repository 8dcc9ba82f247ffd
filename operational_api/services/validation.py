"""Input checks shared by the services: currencies, minor-unit bounds, decimal places of exact quantities.

Every failure is a ValidationFailed naming the field, so the API answers a 422 problem that says what to fix.
"""

from __future__ import annotations

from decimal import Decimal

from ez360.core import money
from ez360.core.money import MoneyError, exponent
from operational_api.services.errors import InvalidMoney, ValidationFailed

# Largest amount in minor units one record may carry: far above any real invoice, far below BIGINT overflow even
# after summing many of them.
MAX_MINOR = 10**15


def currency_code(code: str, field: str = "currency") -> str:
    try:
        exponent(code)
    except MoneyError as exc:
        raise InvalidMoney(f"{field}: {exc}") from None
    return code.upper()


def amount_minor(value: int, field: str, *, allow_zero: bool = False) -> int:
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidMoney(f"{field} must be an integer number of minor units")
    if value < 0 or (value == 0 and not allow_zero):
        raise InvalidMoney(f"{field} must be {'zero or more' if allow_zero else 'positive'}")
    if value > MAX_MINOR:
        raise InvalidMoney(f"{field} is larger than the largest amount accepted ({MAX_MINOR} minor units)")
    return value


def exact_decimal(value: Decimal, field: str, *, places: int, maximum: Decimal, minimum: Decimal = Decimal(0),
                  allow_minimum: bool = True) -> Decimal:
    """A Decimal with at most `places` decimals within bounds (floats refused: they are not exact)."""
    if not isinstance(value, Decimal):
        raise ValidationFailed(f"{field} must be a Decimal")
    if not value.is_finite():
        raise ValidationFailed(f"{field} must be a finite number")
    if abs(value) >= Decimal(10) ** 20:
        raise ValidationFailed(f"{field} is too large")
    if value != value.quantize(Decimal(1).scaleb(-places)):
        raise ValidationFailed(f"{field} has more than {places} decimal places")
    if value > maximum or value < minimum or (value == minimum and not allow_minimum):
        bound = "above" if not allow_minimum else "at least"
        raise ValidationFailed(f"{field} must be {bound} {minimum} and at most {maximum}")
    return value


def text(value: str, field: str, *, max_length: int, required: bool = False) -> str:
    if not isinstance(value, str):
        raise ValidationFailed(f"{field} must be text")
    if "\x00" in value:
        raise ValidationFailed(f"{field} must not contain NUL characters")
    if len(value) > max_length:
        raise ValidationFailed(f"{field} is longer than {max_length} characters")
    if required and not value.strip():
        raise ValidationFailed(f"{field} must not be empty")
    return value


def to_minor(amount: Decimal, currency: str, field: str, *, allow_zero: bool = False) -> int:
    """A major-unit Decimal from the API to minor units of `currency`, refusing excess decimals by name."""
    currency = currency_code(currency)
    if not isinstance(amount, Decimal | int) or isinstance(amount, bool):
        raise InvalidMoney(f"{field} must be a decimal amount (a string or a JSON number), never a float")
    if isinstance(amount, Decimal) and not amount.is_finite():
        raise InvalidMoney(f"{field} must be a finite amount")
    if abs(amount) > Decimal(MAX_MINOR):
        raise InvalidMoney(f"{field} is larger than the largest amount accepted")
    try:
        minor = money.to_minor(amount, currency)
    except MoneyError as exc:
        raise InvalidMoney(f"{field}: {exc}") from None
    return amount_minor(minor, field, allow_zero=allow_zero)
