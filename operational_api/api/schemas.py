"""Shared API shapes: problem documents, text and money fields, cursor pages."""

from __future__ import annotations

import re
from collections.abc import Callable
from datetime import UTC, date, datetime
from decimal import Decimal
from typing import Annotated, Any, Generic, TypeVar

from fastapi.exceptions import RequestValidationError
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, WithJsonSchema

from ez360.core.money import from_minor
from operational_api.services import validation
from operational_api.services.errors import ValidationFailed

T = TypeVar("T")


class Problem(BaseModel):
    """RFC 9457 problem details."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"examples": [{
        "type": "about:blank", "title": "The record is final and cannot be changed", "status": 409,
        "detail": "invoice ACM-2026-00001 is sent: a sent invoice and its lines cannot change; issue a credit note "
                  "to correct it", "instance": "/api/v1/companies/1/invoices/7", "request_id": "5f2c0e..."}]})
    type: str = "about:blank"
    title: str
    status: int
    detail: str
    instance: str | None = None
    request_id: str | None = None
    errors: list[dict[str, Any]] | None = None


def _problem(description: str) -> dict:
    return {"description": description, "model": Problem,
            "content": {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}


ERROR_RESPONSES: dict[int | str, dict] = {
    400: _problem("Bad request (for example an invalid cursor)"),
    401: _problem("Authentication required"),
    402: _problem("The company's plan limit is reached (the detail names the plan and the limit)"),
    403: _problem("Your role lacks the permission"),
    404: _problem("Not found, or not in your company"),
    409: _problem("Conflicts with the record's state (for example a sent invoice or a posted entry)"),
    422: _problem("Validation failed; `errors` names each field"),
    429: _problem("Too many attempts: wait the seconds in Retry-After"),
}


def _utc(value: datetime) -> datetime:
    """SQLite hands back naive datetimes; every stored time is UTC, so say so on the way out."""
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


Timestamp = Annotated[datetime, AfterValidator(_utc)]


def _clean_text(value: str) -> str:
    if "\x00" in value:
        raise ValueError("must not contain NUL characters")
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        raise ValueError("must be valid Unicode text (a lone surrogate is not)") from None
    return value


def Text(max_length: int, min_length: int = 0):  # noqa: N802 - a type factory reads like a type
    return Annotated[str, Field(max_length=max_length, min_length=min_length), AfterValidator(_clean_text)]


# A decimal string is plain ASCII: Python's Decimal would also take "1_000", "١٢" (Arabic-Indic) or "１２"
# (full-width), which no finance system downstream reads the same way.
ASCII_DECIMAL = re.compile(r"[+-]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)")


def _ascii_decimal(value):
    if isinstance(value, str) and not ASCII_DECIMAL.fullmatch(value):
        raise ValueError('write the amount with the ASCII digits 0-9, an optional sign and one decimal point, e.g. '
                         '"1250.00" (no spaces, separators, exponents or other digits)')
    return value


Amount = Annotated[Decimal, BeforeValidator(_ascii_decimal),
                   WithJsonSchema({"anyOf": [{"type": "number"},
                                             {"type": "string", "pattern": f"^{ASCII_DECIMAL.pattern}$"}]}),
                   Field(description="A decimal amount in the currency's major unit, as a JSON number or a string of "
                                     "ASCII digits with an optional sign and decimal point; at most the currency's "
                                     "decimals (USD 2, JPY 0, KWD 3)", examples=["1250.00"], allow_inf_nan=False)]

# The business calendar the books accept: wide enough for any real record, narrow enough that date arithmetic
# (due dates, periods) can never leave Python's or the databases' range.
FIRST_BUSINESS_DATE, LAST_BUSINESS_DATE = date(1900, 1, 1), date(2999, 12, 31)


def _business_date(value: date) -> date:
    if not FIRST_BUSINESS_DATE <= value <= LAST_BUSINESS_DATE:
        raise ValueError(f"must be between {FIRST_BUSINESS_DATE} and {LAST_BUSINESS_DATE}")
    return value


BusinessDate = Annotated[date, AfterValidator(_business_date),
                         Field(description=f"A date from {FIRST_BUSINESS_DATE} to {LAST_BUSINESS_DATE}")]


def field_error(loc: tuple, message: str) -> RequestValidationError:
    return RequestValidationError([{"loc": ("body", *loc), "msg": message, "type": "value_error"}])


def to_minor(amount: Decimal, currency: str, loc: tuple, *, allow_zero: bool = False) -> int:
    """Amount -> minor units, or a 422 problem naming the field."""
    try:
        return validation.to_minor(amount, currency, str(loc[-1]), allow_zero=allow_zero)
    except ValidationFailed as exc:
        raise field_error(loc, exc.detail) from None


_EXPONENTS: dict[str, int] = {}


def _exponent(currency: str) -> int:
    exp = _EXPONENTS.get(currency)
    if exp is None:
        exp = _EXPONENTS[currency] = from_minor(0, currency).as_tuple().exponent * -1  # unknown currency: raises
    return exp


def money(minor: int, currency: str) -> Decimal:
    """`from_minor` for the answers' hot path (a 50-invoice page converts ~600 amounts): an integer scaled by a
    power of ten is already exact at the currency's decimals, so the quantize step is left out."""
    return Decimal(minor).scaleb(-_exponent(currency))


_FORMATTERS: dict[str, Callable[[int], str]] = {}


def money_formatter(currency: str) -> Callable[[int], str]:
    """`str(money(minor, currency))` without the Decimal, as a list page writes amounts ("-0.05", "1200"): one
    function per currency, looked up once for all of an invoice's amounts (~600 on a list page)."""
    found = _FORMATTERS.get(currency)
    if found is None:
        exp = _exponent(currency)
        if exp == 0:
            found = str
        else:
            pattern, scale = f"%d.%0{exp}d", 10**exp

            def found(minor: int) -> str:
                return pattern % divmod(minor, scale) if minor >= 0 else "-" + pattern % divmod(-minor, scale)

        _FORMATTERS[currency] = found
    return found


class Page(BaseModel, Generic[T]):
    items: list[T]
    next_cursor: str | None = Field(None, description="Pass as `cursor` to get the next page; null on the last")


def example(**fields: Any) -> ConfigDict:
    """A request model's OpenAPI example, as keyword arguments."""
    return ConfigDict(json_schema_extra={"examples": [fields]})
