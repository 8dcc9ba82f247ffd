"""The ERPNext connector: a dlt source reading Frappe's REST API (`/api/resource/<DocType>`).

The same code reads the local sandbox and a real ERPNext site. Each doctype is one resource, loaded
incrementally on `modified` (Frappe bumps it on every save, so edits are picked up, not only inserts):
the largest `modified` seen is kept in dlt state and sent back as a `>=` filter; dlt drops the rows at
the boundary it already has. Responses are parsed with Decimal so currency values are never floats,
and the known currency fields are declared DECIMAL so a whole-number value such as `0` cannot turn a
column into BIGINT (or split it into a variant column). The list API returns parent columns only:
child tables (invoice items, journal entry accounts) are not read; GL Entry carries the posted lines.
"""

from __future__ import annotations

import json
import os
import re
import time
from collections.abc import Iterator, Sequence
from decimal import Decimal
from typing import Any

# dlt must never phone home from this platform; set before dlt is imported.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

import dlt  # noqa: E402
import httpx  # noqa: E402
from dlt.sources import DltResource  # noqa: E402

DEFAULT_DOCTYPES: tuple[str, ...] = ("Company", "Account", "Customer", "Sales Invoice", "Payment Entry",
                                     "Journal Entry", "GL Entry", "Bank Transaction")
# Currency/Float fields of ERPNext's standard doctypes that the platform reads: always DECIMAL.
CURRENCY_FIELDS: dict[str, tuple[str, ...]] = {
    "GL Entry": ("debit", "credit", "debit_in_account_currency", "credit_in_account_currency",
                 "debit_in_transaction_currency", "credit_in_transaction_currency",
                 "transaction_exchange_rate"),
    "Sales Invoice": ("total", "net_total", "base_total", "base_net_total", "grand_total",
                      "base_grand_total", "rounded_total", "base_rounded_total", "outstanding_amount",
                      "paid_amount", "total_taxes_and_charges", "base_total_taxes_and_charges",
                      "discount_amount", "conversion_rate", "rounding_adjustment", "write_off_amount"),
    "Payment Entry": ("paid_amount", "received_amount", "base_paid_amount", "base_received_amount",
                      "total_allocated_amount", "base_total_allocated_amount", "unallocated_amount",
                      "difference_amount", "source_exchange_rate", "target_exchange_rate",
                      "total_taxes_and_charges"),
    "Journal Entry": ("total_debit", "total_credit", "difference", "total_amount"),
    "Bank Transaction": ("deposit", "withdrawal", "allocated_amount", "unallocated_amount"),
}
# Frappe Date fields arrive as "YYYY-MM-DD" strings, which dlt would otherwise keep as text.
DATE_FIELDS = ("posting_date", "due_date", "date", "reference_date", "clearance_date", "transaction_date",
               "cheque_date")
RETRY_STATUSES = frozenset({429, 500, 502, 503, 504})
ATTEMPTS = 4


class ErpNextError(RuntimeError):
    """ERPNext refused or failed a request; the message names doctype, URL and status."""


def table_name(doctype: str) -> str:
    """`GL Entry` -> `gl_entry`."""
    return re.sub(r"[^0-9a-z]+", "_", doctype.lower()).strip("_")


def _error_detail(response: httpx.Response) -> str:
    try:
        body = response.json()
    except ValueError:
        return response.text[:200]
    if isinstance(body, dict):
        return str(body.get("exception") or body.get("exc_type") or body.get("message") or body)[:300]
    return str(body)[:300]


def _get(client: httpx.Client, doctype: str, params: dict[str, Any]) -> list[dict[str, Any]]:
    url = f"/api/resource/{doctype}"
    for attempt in range(1, ATTEMPTS + 1):
        try:
            response = client.get(url, params=params)
        except httpx.TransportError as exc:
            if attempt == ATTEMPTS:
                raise ErpNextError(f"ERPNext {doctype}: GET {client.base_url}{url} failed after "
                                   f"{ATTEMPTS} attempts: {exc!r}") from exc
        else:
            if response.status_code == 200:
                # parse_float=Decimal: currency values must keep every digit Frappe sent.
                return json.loads(response.content, parse_float=Decimal)["data"]
            if response.status_code not in RETRY_STATUSES or attempt == ATTEMPTS:
                raise ErpNextError(f"ERPNext {doctype}: GET {response.request.url} -> HTTP "
                                   f"{response.status_code}: {_error_detail(response)}")
        time.sleep(0.5 * 2 ** (attempt - 1))  # transient: back off 0.5s, 1s, 2s
    raise AssertionError("unreachable")


def _doctype_resource(base_url: str, auth: str, doctype: str, page_size: int) -> DltResource:
    def read(modified: dlt.sources.incremental[str] = dlt.sources.incremental("modified")) -> Iterator[Any]:
        filters = [["modified", ">=", modified.last_value]] if modified.last_value else []
        # A total order (name breaks ties) keeps offset paging from skipping or repeating rows.
        params: dict[str, Any] = {"fields": '["*"]', "filters": json.dumps(filters),
                                  "order_by": "modified asc, name asc", "limit_page_length": page_size}
        with httpx.Client(base_url=base_url, headers={"Authorization": auth}, timeout=60) as client:
            start = 0
            while True:
                page = _get(client, doctype, {**params, "limit_start": start})
                if page:
                    yield page
                if len(page) < page_size:
                    return
                start += page_size

    return dlt.resource(read, name=table_name(doctype), primary_key="name", write_disposition="merge")


@dlt.source(name="erpnext")
def erpnext_source(base_url: str, api_key: str, api_secret: str,
                   doctypes: Sequence[str] = DEFAULT_DOCTYPES, page_size: int = 500) -> list[DltResource]:
    """One resource per doctype (`GL Entry` -> `gl_entry`), keyed by `name`, merged on re-runs."""
    if page_size < 1:
        raise ValueError("page_size must be at least 1 (Frappe reads 0 as 'everything')")
    auth = f"token {api_key}:{api_secret}"
    # Preferred types apply when a column first appears, so absent fields add no empty columns.
    preferred: dict[str, Any] = {field: "decimal" for fields in CURRENCY_FIELDS.values() for field in fields}
    preferred.update({field: "date" for field in DATE_FIELDS})
    dlt.current.source_schema().update_preferred_types(preferred)
    return [_doctype_resource(base_url.rstrip("/"), auth, d, page_size) for d in doctypes]
