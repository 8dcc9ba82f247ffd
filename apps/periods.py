"""Reporting periods for the dashboards: a calendar month, a quarter or a year, written in the URL as
`2026-10`, `2026-Q4` or `2026`."""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_QUARTER = re.compile(r"^(\d{4})-Q([1-4])$")
_YEAR = re.compile(r"^(\d{4})$")


@dataclass(frozen=True)
class Period:
    start: date  # first day
    end: date  # first day AFTER the period
    grain: str  # month | quarter | year

    @property
    def key(self) -> str:
        if self.grain == "month":
            return f"{self.start.year}-{self.start.month:02d}"
        if self.grain == "quarter":
            return f"{self.start.year}-Q{(self.start.month - 1) // 3 + 1}"
        return str(self.start.year)

    @property
    def label(self) -> str:
        if self.grain == "month":
            return self.start.strftime("%B %Y")
        return self.key.replace("-", " ")

    @property
    def last_day(self) -> date:
        return self.end - timedelta(days=1)

    @property
    def months(self) -> int:
        return {"month": 1, "quarter": 3, "year": 12}[self.grain]

    def shifted(self, months: int) -> Period:
        return Period(_add_months(self.start, months), _add_months(self.end, months), self.grain)

    def previous(self) -> Period:
        return self.shifted(-self.months)

    def last_year(self) -> Period:
        return self.shifted(-12)

    def month_starts(self) -> list[date]:
        return [_add_months(self.start, i) for i in range(self.months)]


def month(year: int, month_: int) -> Period:
    start = date(year, month_, 1)
    return Period(start, _add_months(start, 1), "month")


def parse_period(value: str | None, today: date) -> Period:
    """The period named in the URL; anything unreadable means the last complete month."""
    text = (value or "").strip()
    if m := _MONTH.match(text):
        if 1 <= int(m[2]) <= 12:
            return month(int(m[1]), int(m[2]))
    if m := _QUARTER.match(text):
        start = date(int(m[1]), 3 * (int(m[2]) - 1) + 1, 1)
        return Period(start, _add_months(start, 3), "quarter")
    if m := _YEAR.match(text):
        start = date(int(m[1]), 1, 1)
        return Period(start, date(int(m[1]) + 1, 1, 1), "year")
    return default_period(today)


def default_period(today: date) -> Period:
    return month(today.year, today.month).previous()


def recent_months(end: date, count: int) -> list[str]:
    """`count` month keys ending with the month of `end`, oldest first (choices for the period picker)."""
    first = date(end.year, end.month, 1)
    return [f"{d.year}-{d.month:02d}" for d in (_add_months(first, -i) for i in range(count - 1, -1, -1))]


def _add_months(day: date, months: int) -> date:
    index = day.year * 12 + day.month - 1 + months
    return date(index // 12, index % 12 + 1, 1)
