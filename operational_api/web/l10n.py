"""Money and numbers as people read and type them, per the browser's language (Accept-Language), with babel
(CLDR data): "1,234.50" for en, "1.234,50" for de, "1 234,50" for fr. Amounts are shown with the currency's
ISO 4217 decimals; what a person types is parsed strictly for their locale and then checked by the server's
money rules (`services.validation.to_minor`: no float, no more decimals than the currency has)."""

from __future__ import annotations

from decimal import Decimal

from babel import Locale, UnknownLocaleError, numbers
from fastapi import Request

from ez360.core.money import from_minor, to_minor
from operational_api.services import validation
from operational_api.services.errors import ValidationFailed

FALLBACK = Locale.parse("en_US")
SPACES = (" ", "\u00a0", "\u202f")


def user_locale(request: Request) -> Locale:
    cached = getattr(request.state, "locale", None)
    if cached is not None:
        return cached
    found = FALLBACK
    for part in request.headers.get("accept-language", "").split(","):
        tag = part.split(";")[0].strip()
        if not tag or tag == "*":
            continue
        try:
            found = Locale.parse(tag.replace("-", "_"))
            break
        except (ValueError, UnknownLocaleError):
            continue
    request.state.locale = found
    return found


def money(minor: int | None, currency: str, locale: Locale) -> str:
    """An amount with its currency, as the reader's locale writes it ($1,234.50 / 1.234,50 €)."""
    if minor is None:
        return ""
    return numbers.format_currency(from_minor(minor, currency), currency, locale=locale)


def amount(minor: int | None, currency: str, locale: Locale) -> str:
    """The number alone (for form fields): 1,234.50 / 1.234,50, with the currency's decimals."""
    if minor is None:
        return ""
    return numbers.format_currency(from_minor(minor, currency), currency, format="#,##0.00", locale=locale,
                                   currency_digits=True)


def decimal_text(value: Decimal | None, locale: Locale) -> str:
    if value is None:
        return ""
    return numbers.format_decimal(Decimal(value).normalize(), locale=locale, decimal_quantization=False)


def example(currency: str, locale: Locale) -> str:
    """How to type 1234.5 in this currency and locale (inline help on money fields)."""
    return amount(to_minor(Decimal("1234.5"), currency), currency, locale)


def parse_decimal(text: str, locale: Locale, field: str) -> Decimal:
    """A number typed by a person in their locale; a clear error naming the field and the expected form."""
    cleaned = (text or "").strip()
    for sign in ("$", "€", "£", "¥", "￥"):
        cleaned = cleaned.replace(sign, "")
    cleaned = cleaned.strip()
    group = locale.number_symbols.get("latn", {}).get("group", ",")
    if group in SPACES:
        for space in SPACES:
            cleaned = cleaned.replace(space, group)
    if not cleaned:
        raise ValidationFailed(f"{field}: enter a number")
    try:
        return numbers.parse_decimal(cleaned, locale=locale, strict=True)
    except numbers.NumberFormatError:
        sample = numbers.format_decimal(Decimal("1234.5"), format="#,##0.00", locale=locale)
        raise ValidationFailed(f"{field}: {text.strip()!r} is not a number as written here (for example "
                               f"{sample})") from None


def parse_money(text: str, currency: str, locale: Locale, field: str, *, allow_zero: bool = False) -> int:
    """Typed amount -> minor units of `currency`, by the server's money rules."""
    value = parse_decimal(text, locale, field)
    return validation.to_minor(value, currency, field, allow_zero=allow_zero)
