"""A read-only Frappe/ERPNext REST API sandbox serving `erpnext.json` (format: docs/demo-universe.md).

Implements the part of `/api/resource` the connector and the demo use, with Frappe's semantics where
they matter to a reader: `fields` defaults to `["name"]`, `["*"]` gives the parent document's own
columns (child tables only come with a single-document GET, or from the child doctype's own list, which
Frappe serves only with `parent=<Parent DocType>` and answers 403 without), `limit_page_length` defaults to
20 and 0 means everything, the default order is `modified desc`, validation errors answer 417, a doctype
the API user may not read (`denied_doctypes` in the file) answers 403. Child rows carry `parent`,
`parenttype`, `parentfield`, `idx` and their parent's `docstatus`/`modified`, as Frappe stores them.
Numbers are Decimal end to end so currency values leave exactly as they are written in the file.
"""

from __future__ import annotations

import base64
import operator
import re
from decimal import Decimal, InvalidOperation
from pathlib import Path
from typing import Any

import simplejson
from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest.sandboxes import json_response, load_json, serve_cli

STANDARD_FIELDS = ("name", "owner", "creation", "modified", "modified_by", "docstatus", "idx")
# (parent doctype, table field) -> child doctype, for ERPNext's standard child tables
CHILD_DOCTYPES = {("Sales Invoice", "items"): "Sales Invoice Item",
                  ("Sales Invoice", "taxes"): "Sales Taxes and Charges",
                  ("Payment Entry", "references"): "Payment Entry Reference",
                  ("Payment Entry", "deductions"): "Payment Entry Deduction",
                  ("Journal Entry", "accounts"): "Journal Entry Account"}
COMPARISONS = {"=": operator.eq, "!=": operator.ne, ">": operator.gt, ">=": operator.ge,
               "<": operator.lt, "<=": operator.le}
OPERATORS = frozenset(COMPARISONS) | {"like", "not like", "in", "not in", "between", "is"}
Doc = dict[str, Any]


class FrappeError(Exception):
    def __init__(self, status: int, exc_type: str, message: str) -> None:
        super().__init__(message)
        self.status, self.exc_type, self.message = status, exc_type, message

    def response(self) -> Response:
        # The envelope Frappe sends: exc_type, a one-line exception, and JSON-encoded _server_messages.
        server_messages = simplejson.dumps([simplejson.dumps({"message": self.message, "indicator": "red"})])
        return json_response({"exc_type": self.exc_type, "exception": f"frappe.exceptions.{self.exc_type}: "
                              f"{self.message}", "_server_messages": server_messages}, self.status)


def _invalid(message: str) -> FrappeError:
    return FrappeError(417, "ValidationError", message)


def _parse_json_param(params: dict[str, str], name: str, default: Any) -> Any:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return simplejson.loads(raw, use_decimal=True)
    except simplejson.JSONDecodeError as exc:
        raise _invalid(f"Invalid JSON in '{name}': {exc}") from None


def _int_param(params: dict[str, str], name: str, default: int) -> int:
    raw = params.get(name)
    if raw is None or raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise _invalid(f"'{name}' must be an integer, got {raw!r}") from None
    if value < 0:
        raise _invalid(f"'{name}' must not be negative, got {value}")
    return value


def _bare_field(spec: str, doctype: str) -> str:
    # Accept `tabGL Entry`.`debit` and `debit` as Frappe does; other tables are not served here.
    spec = spec.strip()
    if "." in spec:
        table, _, spec = spec.partition(".")
        if table.strip("`") != f"tab{doctype}":
            raise _invalid(f"Fields of other doctypes are not supported by the sandbox: {table}")
    return spec.strip("`").strip()


class _Doctype:
    def __init__(self, name: str, docs: list[Doc], parents: frozenset[str] = frozenset()) -> None:
        self.name = name
        self.docs = docs
        self.parents = parents  # for a child doctype: the parent doctypes whose tables hold it
        self.by_name = {str(d["name"]): d for d in docs if "name" in d}  # a malformed test doc may lack one
        standard = set(STANDARD_FIELDS) | ({"parent", "parenttype", "parentfield"} if parents else set())
        self.fields = standard.union(*(d.keys() for d in docs))

    def field(self, spec: str) -> str:
        field = _bare_field(spec, self.name)
        if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", field):
            raise _invalid(f"Field not permitted in query: {spec}")
        if field not in self.fields:
            raise FrappeError(417, "DataError", f"Unknown column '{field}' in 'field list' of {self.name}")
        return field


def _coerce(doc_value: Any, value: Any) -> tuple[Any, Any]:
    """Make a document value and a filter value comparable the way MariaDB would."""
    if doc_value is None:
        doc_value = 0 if isinstance(value, (int, Decimal)) and not isinstance(value, bool) else ""
    numeric = isinstance(doc_value, (int, Decimal)) and not isinstance(doc_value, bool)
    if numeric and isinstance(value, str):
        try:
            return doc_value, Decimal(value)
        except InvalidOperation:
            return str(doc_value), value
    if isinstance(doc_value, str) and not isinstance(value, str) and value is not None:
        return doc_value, str(value)
    return doc_value, value


def _like(pattern: str) -> re.Pattern[str]:
    regex = "".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in str(pattern))
    return re.compile(regex, re.IGNORECASE | re.DOTALL)


def _as_list(value: Any) -> list[Any]:
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    if isinstance(value, (list, tuple)):
        return list(value)
    raise _invalid(f"Expected a list for 'in'/'not in', got {value!r}")


def _matches(doc: Doc, field: str, op: str, value: Any) -> bool:
    raw = doc.get(field)
    if op == "is":
        is_set = raw not in (None, "")
        if value not in ("set", "not set"):
            raise _invalid(f"Operator 'is' takes 'set' or 'not set', got {value!r}")
        return is_set if value == "set" else not is_set
    if op in ("in", "not in"):
        if isinstance(value, frozenset):  # names and other text: a set lookup, not a scan per document
            found = isinstance(raw, str) and raw in value
        else:
            found = any(a == b for a, b in (_coerce(raw, v) for v in _as_list(value)))
        return found if op == "in" else not found
    if op == "between":
        if not isinstance(value, (list, tuple)) or len(value) != 2:
            raise _invalid(f"Operator 'between' takes a list of two values, got {value!r}")
        low, high = value
        # Frappe widens a date-only upper bound to the end of that day for datetime fields.
        if isinstance(raw, str) and isinstance(high, str) and len(high) == 10 and len(raw) > 10:
            high = high + " 23:59:59.999999"
        lo_doc, lo = _coerce(raw, low)
        hi_doc, hi = _coerce(raw, high)
        return lo <= lo_doc and hi_doc <= hi
    if op in ("like", "not like"):
        found = bool(_like(value).fullmatch("" if raw is None else str(raw)))
        return found if op == "like" else not found
    left, right = _coerce(raw, value)
    try:
        return bool(COMPARISONS[op](left, right))
    except TypeError:
        raise _invalid(f"Cannot compare {field} ({raw!r}) with {value!r}") from None


def _conditions(doctype: _Doctype, filters: Any, name: str) -> list[tuple[str, str, Any]]:
    if isinstance(filters, dict):
        items = [[k, *(v if isinstance(v, list) and len(v) == 2 and isinstance(v[0], str)
                       and v[0].lower() in OPERATORS else ["=", v])] for k, v in filters.items()]
    elif isinstance(filters, list):
        items = filters
    else:
        raise _invalid(f"'{name}' must be a JSON list or object, got {filters!r}")
    conditions = []
    for item in items:
        if not isinstance(item, list) or len(item) not in (3, 4):
            raise _invalid(f"Each filter in '{name}' must be [field, operator, value], got {item!r}")
        if len(item) == 4:
            if item[0] != doctype.name:
                raise _invalid(f"Filters on child doctype {item[0]!r} are not supported by the sandbox")
            item = item[1:]
        field, op, value = item
        op = str(op).lower()
        if op not in OPERATORS:
            raise _invalid(f"Unsupported operator {op!r} in '{name}'")
        if op in ("in", "not in") and isinstance(value, list) and value and all(isinstance(v, str) for v in value):
            value = frozenset(value)
        conditions.append((doctype.field(str(field)), op, value))
    return conditions


def _sorted(doctype: _Doctype, docs: list[Doc], order_by: str) -> list[Doc]:
    keys = []
    for part in order_by.split(","):
        tokens = part.split()
        if not tokens:
            continue
        direction = tokens[1].lower() if len(tokens) > 1 else "asc"
        if len(tokens) > 2 or direction not in ("asc", "desc"):
            raise _invalid(f"Invalid order_by: {order_by!r}")
        keys.append((doctype.field(tokens[0]), direction == "desc"))
    result = list(docs)
    for field, descending in reversed(keys):  # stable sorts, least significant key first
        # NULL sorts lowest, as in MariaDB.
        result.sort(key=lambda d, f=field: (d.get(f) is not None, d.get(f) if d.get(f) is not None else 0),
                    reverse=descending)
    return result


def _split_alias(spec: str) -> tuple[str, str | None]:
    parts = re.split(r"\s+as\s+", spec.strip(), maxsplit=1, flags=re.IGNORECASE)
    return (parts[0], parts[1].strip("` ")) if len(parts) == 2 else (parts[0], None)


def _is_star(doctype: _Doctype, spec: str) -> bool:
    return spec.strip() in ("*", f"`tab{doctype.name}`.*")


def _project(doctype: _Doctype, doc: Doc, fields: list[str]) -> Doc:
    out: Doc = {}
    for spec in fields:
        if _is_star(doctype, spec):
            # Like Frappe's list API, `*` means the parent table's columns: no child-table rows.
            out.update({k: v for k, v in doc.items() if not isinstance(v, list)})
            continue
        source, alias = _split_alias(spec)
        field = doctype.field(source)
        out[alias or field] = doc.get(field)
    return out


def _list(doctype: _Doctype, params: dict[str, str]) -> list[Doc]:
    fields = _parse_json_param(params, "fields", ["name"])
    if isinstance(fields, str):
        fields = [fields]
    if not isinstance(fields, list) or not all(isinstance(f, str) for f in fields):
        raise _invalid(f"'fields' must be a JSON list of field names, got {fields!r}")
    if params.get("group_by"):
        raise _invalid("group_by is not supported by the sandbox")
    conditions = _conditions(doctype, _parse_json_param(params, "filters", []), "filters")
    or_conditions = _conditions(doctype, _parse_json_param(params, "or_filters", []), "or_filters")
    start = _int_param(params, "limit_start", 0)
    length = _int_param(params, "limit", _int_param(params, "limit_page_length", 20))
    order_by = params.get("order_by") or "modified desc"
    for spec in fields:  # validate up front, so an empty result still reports a bad field
        if not _is_star(doctype, spec):
            doctype.field(_split_alias(spec)[0])

    selected = [d for d in doctype.docs if all(_matches(d, *c) for c in conditions)
                and (not or_conditions or any(_matches(d, *c) for c in or_conditions))]
    selected = _sorted(doctype, selected, order_by)
    selected = selected[start:start + length] if length else selected[start:]
    return [_project(doctype, d, fields) for d in selected]


def _authenticate(request: Request, api_keys: dict[str, str]) -> None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    credentials = value.strip()
    if scheme.lower() == "basic":
        try:
            credentials = base64.b64decode(credentials).decode()
        except ValueError:
            credentials = ""
    elif scheme.lower() != "token":
        raise FrappeError(401, "AuthenticationError",
                          "Not authenticated: send 'Authorization: token <api_key>:<api_secret>'")
    key, _, secret = credentials.partition(":")
    if not key or api_keys.get(key) != secret:
        raise FrappeError(401, "AuthenticationError", "Invalid API key or secret")


def _child_doctype(parent: str, field: str) -> str:
    return CHILD_DOCTYPES.get((parent, field)) or f"{parent} {field.replace('_', ' ').title()}"


def _with_children(doctype: str, docs: list[Doc]) -> dict[str, list[Doc]]:
    """Child rows of `docs`, per child doctype, completed with the fields Frappe keeps on every child row;
    the parents' table fields are completed in place, so a single-document GET shows the same rows."""
    children: dict[str, list[Doc]] = {}
    for doc in (d for d in docs if "name" in d):
        for field, value in doc.items():
            if not isinstance(value, list) or not all(isinstance(row, dict) for row in value):
                continue
            child = _child_doctype(doctype, field)
            for idx, row in enumerate(value, start=1):
                row.update({"name": row.get("name") or f"{doc['name']}-{field}-{idx}", "parent": doc["name"],
                            "parenttype": doctype, "parentfield": field, "idx": idx,
                            "docstatus": doc.get("docstatus", 0), "creation": doc.get("creation"),
                            "modified": doc.get("modified")})
                children.setdefault(child, []).append(row)
    return children


def create_app(data_path: Path) -> FastAPI:
    data = load_json(data_path)
    api_keys: dict[str, str] = {str(k): str(v) for k, v in data.get("api_keys", {}).items()}
    doctypes = {name: _Doctype(name, docs) for name, docs in data.get("doctypes", {}).items()}
    child_rows: dict[str, list[Doc]] = {}
    child_parents: dict[str, set[str]] = {}
    for (parent, _field), child in CHILD_DOCTYPES.items():  # ERPNext's child doctypes exist even when empty
        if parent in doctypes:
            child_rows.setdefault(child, [])
            child_parents.setdefault(child, set()).add(parent)
    for name, docs in data.get("doctypes", {}).items():
        for child, rows in _with_children(name, docs).items():
            child_rows.setdefault(child, []).extend(rows)
            child_parents.setdefault(child, set()).add(name)
    for child, rows in child_rows.items():
        doctypes.setdefault(child, _Doctype(child, rows, frozenset(child_parents[child])))
    denied = set(data.get("denied_doctypes", []))
    app = FastAPI(title="EZ360 ERPNext sandbox", docs_url=None, redoc_url=None, openapi_url=None)

    @app.exception_handler(FrappeError)
    async def frappe_error(_request: Request, exc: FrappeError) -> Response:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            return FrappeError(405, "PermissionError", f"The ERPNext sandbox is read-only: {request.method} "
                               f"{request.url.path} is not supported").response()
        return FrappeError(exc.status_code, "PageDoesNotExistError",
                           f"Page not found: {request.url.path}").response()

    def doctype_or_404(name: str) -> _Doctype:
        if name in denied:
            raise FrappeError(403, "PermissionError", f"No permission for {name}")
        if name not in doctypes:
            raise FrappeError(404, "DoesNotExistError", f"DocType {name} not found")
        return doctypes[name]

    def readable(name: str, params: dict[str, str]) -> _Doctype:
        doctype = doctype_or_404(name)
        if doctype.parents and params.get("parent") not in doctype.parents:
            # Frappe: a child table is listed only through a parent doctype the user may read
            raise FrappeError(403, "PermissionError", f"Parent is required to get child table data: pass "
                              f"parent=<one of {', '.join(sorted(doctype.parents))}> to list {name}")
        return doctype

    @app.get("/api/method/ping")
    def ping() -> Response:
        return json_response({"message": "pong"})

    @app.get("/api/method/frappe.auth.get_logged_user")
    def logged_user(request: Request) -> Response:
        _authenticate(request, api_keys)
        return json_response({"message": "Administrator"})

    @app.get("/api/resource/{doctype}")
    def list_documents(request: Request, doctype: str) -> Response:
        _authenticate(request, api_keys)
        params = dict(request.query_params)
        doctype_ = readable(doctype, params)
        params.pop("parent", None)
        return json_response({"data": _list(doctype_, params)})

    @app.get("/api/resource/{doctype}/{name:path}")
    def get_document(request: Request, doctype: str, name: str) -> Response:
        _authenticate(request, api_keys)
        found = doctype_or_404(doctype).by_name.get(name)
        if found is None:
            raise FrappeError(404, "DoesNotExistError", f"{doctype} {name} not found")
        return json_response({"data": found})

    return app


def main() -> None:
    serve_cli(create_app, "Serve erpnext.json over the Frappe REST API.", default_port=8001)


if __name__ == "__main__":
    main()
