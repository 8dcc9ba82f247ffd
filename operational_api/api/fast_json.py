"""A page of records written straight to JSON (orjson), in exactly the form FastAPI's response model writes.

For a list page, validating ~50 dicts against the response model and dumping them cost about a tenth of the
request's CPU (issue 8). The dicts are built by our own `*_out` functions from database rows whose types the
columns fix, so the page is written as it is: Decimal as its string ("12.50", the scale kept), dates in ISO 8601,
times in UTC with a `Z` (pydantic's form; naive SQLite times are UTC, as `schemas.Timestamp` says). The
response model stays on the route for the OpenAPI document, and tests/test_api_records.py checks that a listed
invoice reads exactly as the same invoice answered through the model.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import orjson
from fastapi import Response


def utc(value: datetime | None) -> datetime | None:
    if value is None:
        return None
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def _default(value):
    if isinstance(value, Decimal):
        return str(value)
    raise TypeError(f"{type(value).__name__} is not JSON")


def json_page(content: dict) -> Response:
    return Response(orjson.dumps(content, default=_default, option=orjson.OPT_UTC_Z),
                    media_type="application/json")
