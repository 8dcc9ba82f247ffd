"""The ERPNext connector: a dlt source reading Frappe's REST API (`/api/resource/<DocType>`) with dlt's REST client.

The same code reads the local sandbox and a real ERPNext site. Per doctype (a setting):
- documents are read incrementally on `modified` (Frappe bumps it on every save, submit and cancel, so edits
  are picked up, not only inserts), ordered `modified asc, name asc` and paged by that key rather than by a
  plain offset, so a document saved while we page moves to the end instead of shifting a row out of sight;
  the last (modified, name) landed is kept in dlt state and anything at or before it is skipped;
- child tables (Sales Invoice Item, Payment Entry Reference, Journal Entry Account): Frappe's list API returns
  parent columns only, so children are read from the child doctype's own list (`parent=<Parent DocType>`, as
  Frappe requires, filtered on the page's parent names, 100 per request) before their parents are landed;
  one request per 100 parents scales where one `GET /api/resource/<doctype>/<name>` per document does not;
- cancelled documents (docstatus 2) and cancelled GL rows are kept and flagged (`cancelled`).
A doctype that answers 403/404 (or fails after the retries) is reported and skipped while the others load:
the load is then partial. A refused key (401) fails the whole load.
Responses are parsed with Decimal and currency/rate fields are declared DECIMAL, never float.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import dlt
from dlt.extract import DltResource
from dlt.sources.helpers.rest_client.auth import APIKeyAuth
from dlt.sources.helpers.rest_client.paginators import BasePaginator, OffsetPaginator
from requests import Request, Response

from ingest.archive import ArchiveWriter
from ingest.http import ApiClient, RetryPolicy, SourceHttpError
from ingest.report import SourceRun
from ingest.tables import QUARANTINE, Landing, TableSpec, bigint, boolean, make_resource, text
from ingest.validation import NOT_AN_OBJECT, check, payload_key, reason

DEFAULT_DOCTYPES: tuple[str, ...] = ("Company", "Account", "Customer", "Sales Invoice", "Payment Entry",
                                     "Journal Entry", "GL Entry", "Bank Transaction")
# parent doctype -> its child doctypes the platform reads
CHILD_DOCTYPES: dict[str, tuple[str, ...]] = {
    "Sales Invoice": ("Sales Invoice Item",), "Payment Entry": ("Payment Entry Reference",),
    "Journal Entry": ("Journal Entry Account",),
}
# Currency/Float fields of ERPNext's standard doctypes: always DECIMAL (by name, in every doctype).
DECIMAL_FIELDS = (
    "debit", "credit", "debit_in_account_currency", "credit_in_account_currency", "debit_in_transaction_currency",
    "credit_in_transaction_currency", "transaction_exchange_rate", "total", "net_total", "base_total",
    "base_net_total", "grand_total", "base_grand_total", "rounded_total", "base_rounded_total", "outstanding_amount",
    "paid_amount", "received_amount", "base_paid_amount", "base_received_amount", "total_allocated_amount",
    "base_total_allocated_amount", "unallocated_amount", "difference_amount", "source_exchange_rate",
    "target_exchange_rate", "total_taxes_and_charges", "base_total_taxes_and_charges", "discount_amount",
    "conversion_rate", "rounding_adjustment", "write_off_amount", "total_debit", "total_credit", "difference",
    "total_amount", "deposit", "withdrawal", "allocated_amount", "amount", "base_amount", "rate", "base_rate",
    "net_amount", "base_net_amount", "qty", "price_list_rate", "exchange_rate", "exchange_gain_loss",
    "total_outstanding_amount", "debit_in_company_currency", "credit_in_company_currency",
)
# Frappe Date fields arrive as "YYYY-MM-DD" strings, which dlt would otherwise keep as text.
DATE_FIELDS = ("posting_date", "due_date", "date", "reference_date", "clearance_date", "transaction_date",
               "cheque_date")
CURRENCY_CODE_FIELDS = ("currency", "account_currency", "default_currency", "paid_from_account_currency",
                        "paid_to_account_currency", "company_currency", "party_account_currency")
CHILD_CHUNK = 100  # parent names per child-table request: keeps the URL well under common 8 KB limits


def table_name(doctype: str) -> str:
    """`GL Entry` -> `gl_entry`."""
    return re.sub(r"[^0-9a-z]+", "_", doctype.lower()).strip("_")


CHILD_TABLES = frozenset(table_name(c) for children in CHILD_DOCTYPES.values() for c in children)
_DOC_COLUMNS = {**text("name", "modified", "creation"), **bigint("docstatus"), **boolean("cancelled")}


def doctype_spec(doctype_table: str) -> TableSpec:
    if doctype_table in CHILD_TABLES:
        return TableSpec(doctype_table, ("name",),
                         {**_DOC_COLUMNS, **text("parent", "parenttype", "parentfield"), **bigint("idx")},
                         merge_key=("parent",))
    return TableSpec(doctype_table, ("name",), _DOC_COLUMNS)


def table_spec(table: str) -> TableSpec:
    return QUARANTINE if table == QUARANTINE.name else doctype_spec(table)


def configure_schema() -> None:
    """Preferred types apply when a column first appears, so absent fields add no empty columns."""
    preferred: dict[str, Any] = {f: "decimal" for f in DECIMAL_FIELDS}
    preferred.update({f: "date" for f in DATE_FIELDS})
    dlt.current.source_schema().update_preferred_types(preferred)


@dataclass
class ErpNextOptions:
    base_url: str
    api_key: str
    api_secret: str
    doctypes: Sequence[str] = DEFAULT_DOCTYPES
    page_size: int = 500
    policy: RetryPolicy = field(default_factory=RetryPolicy)

    def __post_init__(self) -> None:
        if self.page_size < 1:
            raise ValueError("page_size must be at least 1 (Frappe reads 0 as 'everything')")


class ModifiedKeyset(BasePaginator):
    """Pages `modified asc, name asc` by value: the next page starts at the last row's `modified`.

    Rows at that instant come again at the top of the next page and are skipped by the reader; only when a
    whole page shares one instant does it step by offset within that instant.
    """

    def __init__(self, base_filters: list[list[Any]], since: str | None, page_size: int) -> None:
        super().__init__()
        self.base_filters, self.since, self.page_size, self.offset = base_filters, since, page_size, 0

    def init_request(self, request: Request) -> None:
        self.update_request(request)

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        data = data or []
        last = data[-1].get("modified") if data and isinstance(data[-1], dict) else None
        if len(data) < self.page_size:
            self._has_next_page = False
        elif not isinstance(last, str):
            self.offset += self.page_size  # no usable key on the last row: plain offset for this step
        elif last == self.since:
            self.offset += self.page_size
        else:
            self.since, self.offset = last, 0

    def update_request(self, request: Request) -> None:
        since = [["modified", ">=", self.since]] if self.since else []
        request.params["filters"] = json.dumps(self.base_filters + since)
        request.params["limit_start"] = self.offset
        request.params["limit_page_length"] = self.page_size


class ShortPageOffset(OffsetPaginator):
    """Frappe offset paging that stops at the first short page (Frappe sends no total)."""

    def __init__(self, page_size: int) -> None:
        super().__init__(limit=page_size, offset_param="limit_start", limit_param="limit_page_length")

    def _stop_after_this_page(self, data: list[Any] | None = None) -> bool:
        return len(data or []) < self.limit


def _key(row: dict[str, Any]) -> tuple[str, str] | None:
    modified, name = row.get("modified"), row.get("name")
    return (modified, str(name)) if isinstance(modified, str) and name not in (None, "") else None


def _sort(row: dict[str, Any] | None, quarantined: Any, rows: list[Any], bad: list[Any]) -> None:
    if row is not None:
        rows.append(row)
    else:
        bad.append(quarantined)


class _Doctypes:
    def __init__(self, options: ErpNextOptions, run: SourceRun, landing: Landing) -> None:
        self.options, self.run, self.landing = options, run, landing
        auth = APIKeyAuth(name="Authorization", api_key=f"token {options.api_key}:{options.api_secret}",
                          location="header")
        self.client = ApiClient("ERPNext", options.base_url, auth, options.policy, run.http)

    def _check(self, table: str, record: Any, required: tuple[str, ...]) -> tuple[dict[str, Any] | None, Any]:
        """(row, None) when fit to land, else (None, quarantine item)."""
        if not isinstance(record, dict):
            return None, self.landing.quarantine(table, record, payload_key(record), [reason(NOT_AN_OBJECT, "record")])
        problems = check(record, required=required, decimals=DECIMAL_FIELDS, dates=DATE_FIELDS,
                         currencies=CURRENCY_CODE_FIELDS)
        if problems:
            key = str(record["name"]) if record.get("name") not in (None, "") else payload_key(record)
            return None, self.landing.quarantine(table, record, key, problems)
        cancelled = record.get("docstatus") == 2 or record.get("is_cancelled") in (1, True)
        return {**record, "cancelled": cancelled}, None

    def children(self, parent_doctype: str, names: list[str]) -> dict[str, tuple[list[dict[str, Any]], list[Any]]]:
        """Child rows (and quarantine items) of the named parents, per child table."""
        found: dict[str, tuple[list[dict[str, Any]], list[Any]]] = {}
        for child in CHILD_DOCTYPES.get(parent_doctype, ()):
            rows, bad = [], []
            for start in range(0, len(names), CHILD_CHUNK):
                chunk = names[start:start + CHILD_CHUNK]
                filters = [["parenttype", "=", parent_doctype], ["parent", "in", chunk]]
                params = {"parent": parent_doctype, "fields": '["*"]', "filters": json.dumps(filters),
                          "order_by": "parent asc, idx asc"}
                paginator = ShortPageOffset(self.options.page_size)
                for page in self.client.pages(f"/api/resource/{child}", params, paginator):
                    for record in page:
                        row, quarantined = self._check(table_name(child), record, ("name", "parent"))
                        _sort(row, quarantined, rows, bad)
            found[table_name(child)] = (rows, bad)
        return found

    def resource(self, doctype: str) -> DltResource:
        table = table_name(doctype)
        child_specs = [doctype_spec(table_name(c)) for c in CHILD_DOCTYPES.get(doctype, ())]

        def read() -> Iterator[Any]:
            state = dlt.current.resource_state()
            cursor = state.get("cursor")
            last = (cursor["modified"], cursor["name"]) if cursor else None
            paginator = ModifiedKeyset([], cursor["modified"] if cursor else None, self.options.page_size)
            params = {"fields": '["*"]', "order_by": "modified asc, name asc"}
            try:
                for page in self.client.pages(f"/api/resource/{doctype}", params, paginator):
                    fresh = [r for r in page if not (last and isinstance(r, dict) and _key(r) and _key(r) <= last)]
                    rows, bad = [], []
                    for record in fresh:
                        row, quarantined = self._check(table, record, ("name", "modified"))
                        _sort(row, quarantined, rows, bad)
                    # children first: a page whose children cannot be read is not landed (nor its cursor moved)
                    kids = self.children(doctype, [str(r["name"]) for r in rows]) if rows else {}
                    yield from bad
                    for child_table, (child_rows, child_bad) in kids.items():
                        yield from child_bad
                        if child_rows:
                            yield self.landing.rows(child_table, child_rows, own_table=False)
                    if rows:
                        yield self.landing.rows(table, rows)
                    keys = [k for k in map(_key, (r for r in fresh if isinstance(r, dict))) if k]
                    if keys:
                        last = max([*keys, *([last] if last else [])])
                        state["cursor"] = {"modified": last[0], "name": last[1]}
            except SourceHttpError as exc:
                if exc.status == 401:
                    raise  # a refused key fails every doctype: fail the load, loudly
                self.run.fail(doctype, str(exc))
                return
            self.run.succeeded.add(doctype)

        return make_resource(doctype_spec(table), read, child_specs)


@dlt.source(name="erpnext")
def erpnext_source(options: ErpNextOptions, run: SourceRun | None = None,
                   archive: ArchiveWriter | None = None) -> list[DltResource]:
    """One resource per doctype (`GL Entry` -> `gl_entry`), keyed by `name`, merged on re-runs."""
    run = run or SourceRun("erpnext")
    configure_schema()
    doctypes = _Doctypes(options, run, Landing(run, archive))
    return [doctypes.resource(d) for d in dict.fromkeys(options.doctypes)]


def parse_doctypes(setting: str) -> tuple[str, ...]:
    doctypes = tuple(dict.fromkeys(d.strip() for d in setting.split(",") if d.strip()))
    if not doctypes:
        raise ValueError("EZ360_ERPNEXT_DOCTYPES names no doctype")
    return doctypes
