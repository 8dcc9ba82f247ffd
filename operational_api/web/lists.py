"""Every list page: cursor pagination and sorting by the API's own `paginate` (keyset on the sort column and id),
filters read from the query string, and URLs that keep the filters, the sort and the page."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date
from urllib.parse import urlencode

from fastapi import Request
from sqlalchemy import Select
from sqlalchemy.orm import Session

from operational_api.api.listing import paginate

PAGE_SIZE = 25


@dataclass
class ListView:
    path: str
    params: dict[str, str]  # the filters in force
    sort: str
    cursor: str | None
    rows: list
    next_cursor: str | None
    invalid: list[str] = field(default_factory=list)  # filters ignored because their value is not valid

    def url(self, **changes) -> str:
        query = {**self.params, "sort": self.sort, **changes}
        query = {k: v for k, v in query.items() if v not in (None, "")}
        return self.path + ("?" + urlencode(query) if query else "")

    @property
    def next_url(self) -> str | None:
        return self.url(cursor=self.next_cursor) if self.next_cursor else None

    @property
    def first_url(self) -> str:
        return self.url(cursor=None)

    def sort_url(self, key: str) -> str:
        return self.url(sort=f"-{key}" if self.sort == key else key, cursor=None)

    def sort_state(self, key: str) -> str | None:
        if self.sort == key:
            return "ascending"
        if self.sort == f"-{key}":
            return "descending"
        return None


class Filters:
    """Reads filters from the query string; a value that does not parse is ignored and reported."""

    def __init__(self, request: Request):
        self.query = request.query_params
        self.params: dict[str, str] = {}
        self.invalid: list[str] = []

    def _raw(self, name: str) -> str | None:
        value = self.query.get(name, "").strip()
        if value:
            self.params[name] = value
            return value
        return None

    def text(self, name: str) -> str | None:
        value = self._raw(name)
        return value[:200] if value else None

    def choice(self, name: str, choices) -> str | None:
        value = self._raw(name)
        if value is not None and value not in choices:
            self.invalid.append(name)
            return None
        return value

    def integer(self, name: str) -> int | None:
        return self._parse(name, lambda v: int(v) if 0 < int(v) < 2**31 else None)

    def day(self, name: str) -> date | None:
        return self._parse(name, date.fromisoformat)

    def flag(self, name: str) -> bool | None:
        return self._parse(name, {"yes": True, "no": False}.__getitem__)

    def _parse(self, name: str, parse: Callable):
        value = self._raw(name)
        if value is None:
            return None
        try:
            parsed = parse(value)
        except (ValueError, KeyError):
            parsed = None
        if parsed is None:
            self.invalid.append(name)
        return parsed


def list_page(request: Request, db: Session, stmt: Select, model, filters: Filters, *, sorts: list[str],
              default: str, limit: int = PAGE_SIZE) -> ListView:
    sort = request.query_params.get("sort", default)
    if sort.lstrip("-") not in sorts:
        sort = default
    cursor = request.query_params.get("cursor") or None
    rows, nxt = paginate(db, stmt, model, sort=sort, cursor=cursor, limit=limit)
    return ListView(request.url.path, filters.params, sort, cursor, rows, nxt, filters.invalid)
