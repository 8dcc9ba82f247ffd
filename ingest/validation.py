"""Record checks shared by the sources: what makes a record unfit to land (it goes to `_quarantine`).

A reason is `<code>:<field>`; the codes are few and fixed so that counts per reason mean something.
Unknown fields are never a problem (they become columns); a missing required field is never defaulted.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from datetime import date
from decimal import Decimal, InvalidOperation
from typing import Any

# ISO 4217 codes in use (current tender plus the fund and special codes some systems report). Stripe sends
# them lower-case, ERPNext upper-case; both are accepted.
ISO_4217 = frozenset("""
AED AFN ALL AMD ANG AOA ARS AUD AWG AZN BAM BBD BDT BGN BHD BIF BMD BND BOB BOV BRL BSD BTN BWP BYN BZD CAD
CDF CHE CHF CHW CLF CLP CNY COP COU CRC CUC CUP CVE CZK DJF DKK DOP DZD EGP ERN ETB EUR FJD FKP GBP GEL GHS
GIP GMD GNF GTQ GYD HKD HNL HTG HUF IDR ILS INR IQD IRR ISK JMD JOD JPY KES KGS KHR KMF KPW KRW KWD KYD KZT
LAK LBP LKR LRD LSL LYD MAD MDL MGA MKD MMK MNT MOP MRU MUR MVR MWK MXN MXV MYR MZN NAD NGN NIO NOK NPR NZD
OMR PAB PEN PGK PHP PKR PLN PYG QAR RON RSD RUB RWF SAR SBD SCR SDG SEK SGD SHP SLE SLL SOS SRD SSP STN SVC
SYP SZL THB TJS TMT TND TOP TRY TTD TWD TZS UAH UGX USD USN UYI UYU UYW UZS VED VES VND VUV WST XAF XCD XCG
XDR XOF XPF XSU XUA YER ZAR ZMW ZWG ZWL
""".split())

MISSING, AMOUNT, DATE, CURRENCY, UNPARSABLE, NOT_AN_OBJECT = (
    "missing_field", "unparsable_amount", "unparsable_date", "unknown_currency", "unparsable_value", "not_an_object")


def reason(code: str, field: str) -> str:
    return f"{code}:{field}"


def is_currency(value: Any) -> bool:
    return isinstance(value, str) and value.upper() in ISO_4217


def is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def parse_decimal(value: Any) -> Decimal | None:
    """Exact Decimal of an int, Decimal or numeric string; None if it is not one (floats are refused)."""
    if isinstance(value, bool) or isinstance(value, float):
        return None
    if isinstance(value, (int, Decimal)):
        return Decimal(value)
    if isinstance(value, str):
        try:
            parsed = Decimal(value.strip())
        except InvalidOperation:
            return None
        return parsed if parsed.is_finite() else None
    return None


def parse_date(value: Any) -> date | None:
    """A date from a `YYYY-MM-DD` string (or a date); None if it is not one."""
    if isinstance(value, date):
        return value
    if isinstance(value, str) and len(value.strip()) == 10:
        try:
            return date.fromisoformat(value.strip())
        except ValueError:
            return None
    return None


def absent(value: Any) -> bool:
    return value is None or (isinstance(value, str) and not value.strip())


def check(record: Mapping[str, Any], *, required: Iterable[str] = (), ints: Iterable[str] = (),
          decimals: Iterable[str] = (), dates: Iterable[str] = (), currencies: Iterable[str] = ()) -> list[str]:
    """Reasons why `record` cannot land; empty when it can. Optional fields are checked only when present."""
    problems = [reason(MISSING, f) for f in required if absent(record.get(f))]
    problems += [reason(AMOUNT, f) for f in ints if not absent(record.get(f)) and not is_int(record[f])]
    problems += [reason(AMOUNT, f) for f in decimals
                 if not absent(record.get(f)) and parse_decimal(record[f]) is None]
    problems += [reason(DATE, f) for f in dates if not absent(record.get(f)) and parse_date(record[f]) is None]
    problems += [reason(CURRENCY, f) for f in currencies
                 if not absent(record.get(f)) and not is_currency(record[f])]
    return problems


def payload_key(record: Any) -> str:
    """A stable key for a record that has no usable id of its own."""
    text = json.dumps(record, sort_keys=True, default=str)
    return "sha256:" + hashlib.sha256(text.encode()).hexdigest()[:16]
