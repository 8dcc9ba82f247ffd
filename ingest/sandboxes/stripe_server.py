"""A read-only Stripe API sandbox serving `stripe.json` (format: docs/demo-universe.md).

It speaks enough of the real wire protocol that the official stripe SDK and the ingest work against it
unchanged: Bearer/Basic key auth, Connect account selection by the `Stripe-Account` header, list objects
with `limit`/`starting_after`/`ending_before` cursors and `created[...]` filters, Stripe's error envelope
and status codes (which the SDK maps to its exception classes), and a `Request-Id` on every response.
Unknown query parameters are refused, as Stripe does, so a connector bug shows up here, not in prod.

Like the real API, balance transactions carry no `payout` field: the demo world records which payout
settled each one, and the sandbox serves that only as Stripe does, through
`GET /v1/balance_transactions?payout=po_...` (automatic payouts only). `GET /v1/events` serves the events
Stripe would have sent for the world's objects (creations, refunds, disputes, paid or failed payouts) plus
any `events` listed in the file, newest first, for the last 30 days as Stripe keeps them.
"""

from __future__ import annotations

import base64
import hashlib
import time
import uuid
from pathlib import Path
from typing import Any

from fastapi import FastAPI, Request
from fastapi.responses import Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from ingest.sandboxes import json_response, load_json, serve_cli

# list path -> (object name used in messages, equality filters the real API offers for that list)
LIST_TYPES: dict[str, tuple[str, frozenset[str]]] = {
    "customers": ("customer", frozenset({"email"})),
    "payment_intents": ("payment_intent", frozenset({"customer"})),
    "charges": ("charge", frozenset({"customer", "payment_intent"})),
    "refunds": ("refund", frozenset({"charge", "payment_intent"})),
    "disputes": ("dispute", frozenset({"charge", "payment_intent"})),
    "payouts": ("payout", frozenset({"status"})),
    "balance_transactions": ("balance_transaction", frozenset({"type", "source", "currency"})),
    "subscriptions": ("subscription", frozenset({"customer", "status"})),
}
EVENT_RETENTION_SECONDS = 30 * 86400
PAGING_PARAMS = frozenset({"limit", "starting_after", "ending_before"})
RANGE_OPS = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}
PLATFORM_ACCOUNT = {"id": "acct_ez360_platform", "object": "account", "business_profile": {"name": "EZ360"}}


class StripeError(Exception):
    def __init__(self, status: int, message: str, *, type_: str = "invalid_request_error",
                 code: str | None = None, param: str | None = None) -> None:
        super().__init__(message)
        self.status, self.message, self.type, self.code, self.param = status, message, type_, code, param

    def response(self) -> Response:
        error: dict[str, Any] = {"type": self.type, "message": self.message}
        if self.code:
            error["code"] = self.code
        if self.param:
            error["param"] = self.param
        return json_response({"error": error}, self.status)


def _sort_key(obj: dict[str, Any]) -> tuple[int, str]:
    # a malformed object (a test's quarantine case) may lack an id or a number: it is still served
    created = obj.get("created", 0)
    return (created if isinstance(created, int) else 0, str(obj.get("id", "")))


def _mask(key: str) -> str:
    # Stripe echoes only the key's prefix and last four characters.
    return key[:8] + "*" * max(len(key) - 12, 0) + key[-4:] if len(key) > 12 else "*" * len(key)


def _presented_key(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() == "bearer":
        return value.strip()
    if scheme.lower() == "basic":
        try:
            return base64.b64decode(value.strip()).decode().partition(":")[0]
        except ValueError:
            return ""
    return None


def _int_param(name: str, raw: str) -> int:
    try:
        return int(raw)
    except ValueError:
        raise StripeError(400, f"Invalid integer: {raw}", param=name) from None


class _Universe:
    """stripe.json indexed for lookups: per account, per list, newest first plus an id map."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.api_keys = set(data.get("api_keys", []))
        self.accounts: dict[str, dict[str, Any]] = {}
        self.lists: dict[str, dict[str, list[dict[str, Any]]]] = {}
        self.by_id: dict[str, dict[str, dict[str, dict[str, Any]]]] = {}
        self.payout_members: dict[str, dict[str, list[str]]] = {}  # account -> payout id -> balance txn ids
        self.events: dict[str, list[dict[str, Any]]] = {}
        for acct_id, content in data.get("accounts", {}).items():
            self.accounts[acct_id] = content.get("account") or {"id": acct_id, "object": "account"}
            members = self.payout_members[acct_id] = {}
            for txn in content.get("balance_transactions", []):
                if txn.get("payout"):
                    members.setdefault(txn["payout"], []).append(txn["id"])
            self.lists[acct_id] = {}
            self.by_id[acct_id] = {}
            # every list in the file is served, also kinds this sandbox has no filters for (robust to additions)
            names = set(LIST_TYPES) | {k for k, v in content.items() if k not in ("account", "events")
                                       and isinstance(v, list) and v and all(isinstance(o, dict) for o in v)}
            for list_name in names:
                objects = [_as_served(list_name, o) for o in content.get(list_name, [])]
                objects.sort(key=_sort_key, reverse=True)
                self.lists[acct_id][list_name] = objects
                self.by_id[acct_id][list_name] = {o["id"]: o for o in objects if "id" in o}
            events = _derived_events(acct_id, self.lists[acct_id]) + list(content.get("events", []))
            self.events[acct_id] = sorted(events, key=_sort_key, reverse=True)

    def list_spec(self, list_name: str) -> tuple[str, frozenset[str]] | None:
        if list_name in LIST_TYPES:
            return LIST_TYPES[list_name]
        if any(list_name in lists for lists in self.lists.values()):
            return list_name.removesuffix("s"), frozenset()
        return None


def _as_served(list_name: str, obj: dict[str, Any]) -> dict[str, Any]:
    # Real balance transactions have no `payout` field; the link is served through ?payout= only.
    return {k: v for k, v in obj.items() if k != "payout"} if list_name == "balance_transactions" else obj


def _event(account: str, event_type: str, obj: dict[str, Any], created: int) -> dict[str, Any]:
    digest = hashlib.sha256(f"{account}/{event_type}/{obj['id']}".encode()).hexdigest()[:24]
    return {"id": f"evt_{digest}", "object": "event", "api_version": "2024-06-20", "account": account,
            "created": int(created), "data": {"object": obj}, "livemode": False, "pending_webhooks": 0,
            "request": {"id": None, "idempotency_key": None}, "type": event_type}


def _derived_events(account: str, lists: dict[str, list[dict[str, Any]]]) -> list[dict[str, Any]]:
    """The events Stripe sends for these objects: creations, refunds, disputes, payout outcomes."""
    events = []
    charges = {c["id"]: c for c in lists.get("charges", []) if "id" in c}
    for list_name, objects in lists.items():
        if list_name == "balance_transactions":
            continue  # Stripe sends no per-transaction events
        for obj in (o for o in objects if isinstance(o.get("id"), str)):
            kind = obj.get("object", list_name.removesuffix("s"))
            created = obj.get("created", 0)
            events.append(_event(account, "charge.dispute.created" if kind == "dispute" else f"{kind}.created",
                                 obj, created))
            if kind == "refund" and obj.get("charge") in charges:
                events.append(_event(account, "charge.refunded", charges[obj["charge"]], created))
            if kind == "payout" and obj.get("status") in ("paid", "failed"):
                events.append(_event(account, f"payout.{obj['status']}", obj, obj.get("arrival_date") or created))
    return events


def _list_object(url: str, objects: list[dict[str, Any]], by_id: dict[str, dict[str, Any]],
                 object_name: str, params: dict[str, str], filters: frozenset[str]) -> dict[str, Any]:
    for name in params:
        base = name.split("[", 1)[0]
        if base not in PAGING_PARAMS | filters | {"created"} and not base.startswith("expand"):
            raise StripeError(400, f"Received unknown parameter: {name}", param=name)

    limit = _int_param("limit", params["limit"]) if "limit" in params else 10
    if limit < 1:
        raise StripeError(400, "This value must be greater than or equal to 1.", param="limit")
    if limit > 100:
        raise StripeError(400, "This value must be less than or equal to 100.", param="limit")

    selected = objects
    for name, raw in params.items():
        if name == "created":
            value = _int_param(name, raw)
            selected = [o for o in selected if o.get("created") == value]
        elif name.startswith("created["):
            op = name[len("created["):-1]
            if op not in RANGE_OPS or not name.endswith("]"):
                raise StripeError(400, f"Received unknown parameter: {name}", param=name)
            value = _int_param(name, raw)
            selected = [o for o in selected if RANGE_OPS[op](int(o.get("created", 0)), value)]
        elif name in filters:
            if object_name == "subscription" and name == "status" and raw == "all":
                continue
            selected = [o for o in selected if str(o.get(name)) == raw]
    # Like Stripe, subscriptions lists hide canceled ones unless a status is asked for.
    if object_name == "subscription" and "status" not in params:
        selected = [o for o in selected if o.get("status") != "canceled"]

    after, before = params.get("starting_after"), params.get("ending_before")
    if after and before:
        raise StripeError(400, "You may only specify one of these parameters: starting_after, ending_before.")
    cursor_name, cursor_id = ("starting_after", after) if after else ("ending_before", before)
    if cursor_id:
        cursor = by_id.get(cursor_id)
        if cursor is None:
            raise StripeError(400, f"No such {object_name}: '{cursor_id}'", code="resource_missing",
                              param=cursor_name)
        # Compare positions by sort key, so a cursor object excluded by the filters still works.
        key = _sort_key(cursor)
        if after:
            candidates = [o for o in selected if _sort_key(o) < key]
            page = candidates[:limit]
        else:
            candidates = [o for o in selected if _sort_key(o) > key]
            page = candidates[-limit:]
    else:
        candidates = selected
        page = candidates[:limit]
    return {"object": "list", "url": url, "has_more": len(candidates) > limit, "data": page}


def create_app(data_path: Path) -> FastAPI:
    universe = _Universe(load_json(data_path))
    app = FastAPI(title="EZ360 Stripe sandbox", docs_url=None, redoc_url=None, openapi_url=None)

    @app.middleware("http")
    async def authenticate(request: Request, call_next):  # type: ignore[no-untyped-def]
        # Auth comes before routing, as with Stripe: a bad key gets 401 even on an unknown URL.
        key = _presented_key(request)
        if not key:
            response = StripeError(
                401, "You did not provide an API key. You need to provide your API key in the Authorization "
                "header, using Bearer auth (e.g. 'Authorization: Bearer YOUR_SECRET_KEY').").response()
        elif key not in universe.api_keys:
            response = StripeError(401, f"Invalid API Key provided: {_mask(key)}", code="api_key_invalid").response()
        else:
            request.state.api_key = key
            response = await call_next(request)
        response.headers["Request-Id"] = "req_" + uuid.uuid4().hex[:14]
        return response

    @app.exception_handler(StripeError)
    async def stripe_error(_request: Request, exc: StripeError) -> Response:
        return exc.response()

    @app.exception_handler(StarletteHTTPException)
    async def unknown_route(request: Request, exc: StarletteHTTPException) -> Response:
        if exc.status_code == 405:
            message = f"The EZ360 Stripe sandbox is read-only: {request.method} {request.url.path} is not supported."
            return StripeError(405, message).response()
        return StripeError(
            exc.status_code,
            f"Unrecognized request URL ({request.method}: {request.url.path}). "
            "Please see https://stripe.com/docs or we can help at https://support.stripe.com/.",
        ).response()

    def connected_account(request: Request) -> str | None:
        account = request.headers.get("stripe-account")
        if account is not None and account not in universe.accounts:
            raise StripeError(
                403, f"The provided key '{_mask(request.state.api_key)}' does not have access to account "
                f"'{account}' (or that account does not exist). Application access may have been revoked.")
        return account

    def require_platform(request: Request) -> None:
        if connected_account(request) is not None:
            raise StripeError(403, "Only the platform account can list or retrieve connected accounts.")

    @app.get("/v1/account")
    def current_account(request: Request) -> Response:
        account = connected_account(request)
        return json_response(universe.accounts[account] if account else PLATFORM_ACCOUNT)

    @app.get("/v1/accounts")
    def list_accounts(request: Request) -> Response:
        require_platform(request)
        accounts = sorted(universe.accounts.values(), key=_sort_key, reverse=True)
        by_id = {a["id"]: a for a in accounts}
        return json_response(_list_object("/v1/accounts", accounts, by_id, "account",
                                          dict(request.query_params), frozenset()))

    @app.get("/v1/accounts/{account_id}")
    def retrieve_account(request: Request, account_id: str) -> Response:
        require_platform(request)
        if account_id not in universe.accounts:
            raise StripeError(404, f"No such account: '{account_id}'", code="resource_missing", param="account")
        return json_response(universe.accounts[account_id])

    @app.get("/v1/events")
    def list_events(request: Request) -> Response:
        account = connected_account(request)
        params = dict(request.query_params)
        types = request.query_params.getlist("types[]") or request.query_params.getlist("types")
        params = {k: v for k, v in params.items() if k not in ("types[]", "types")}
        cutoff = int(time.time()) - EVENT_RETENTION_SECONDS  # Stripe keeps events 30 days
        events = [e for e in (universe.events.get(account, []) if account else []) if e["created"] >= cutoff]
        wanted = params.pop("type", None)
        if wanted:
            if wanted.endswith("*"):  # Stripe's wildcard: `charge.*`
                events = [e for e in events if e["type"].startswith(wanted[:-1])]
            else:
                events = [e for e in events if e["type"] == wanted]
        if types:
            events = [e for e in events if e["type"] in types]
        params.pop("delivery_success", None)
        return json_response(_list_object("/v1/events", events, {e["id"]: e for e in events}, "event", params,
                                          frozenset()))

    @app.get("/v1/{list_name}")
    def list_objects(request: Request, list_name: str) -> Response:
        spec = universe.list_spec(list_name)
        if spec is None:
            raise StarletteHTTPException(404)
        object_name, filters = spec
        account = connected_account(request)
        # The platform itself holds no payments in the demo universe: it only owns the accounts.
        objects = universe.lists[account].get(list_name, []) if account else []
        by_id = universe.by_id[account].get(list_name, {}) if account else {}
        params = dict(request.query_params)
        payout = params.pop("payout", None) if list_name == "balance_transactions" else None
        if payout is not None:
            found = universe.by_id[account].get("payouts", {}).get(payout) if account else None
            if found is None:
                raise StripeError(404, f"No such payout: '{payout}'", code="resource_missing", param="payout")
            if found.get("automatic") is False:
                raise StripeError(400, "Balance transaction history can only be filtered on automatic transfers, "
                                  "not manual.", param="payout")
            members = set(universe.payout_members.get(account, {}).get(payout, []))
            objects = [o for o in objects if o.get("id") in members]
        return json_response(_list_object(f"/v1/{list_name}", objects, by_id, object_name, params, filters))

    @app.get("/v1/{list_name}/{object_id}")
    def retrieve_object(request: Request, list_name: str, object_id: str) -> Response:
        spec = universe.list_spec(list_name) if list_name != "events" else ("event", frozenset())
        if spec is None:
            raise StarletteHTTPException(404)
        object_name, _ = spec
        account = connected_account(request)
        pool = universe.by_id[account].get(list_name, {}) if account and list_name != "events" else {}
        if list_name == "events" and account:
            pool = {e["id"]: e for e in universe.events.get(account, [])}
        found = pool.get(object_id)
        if found is None:
            raise StripeError(404, f"No such {object_name}: '{object_id}'", code="resource_missing", param="id")
        return json_response(found)

    return app


def main() -> None:
    serve_cli(create_app, "Serve stripe.json over the Stripe HTTP API.", default_port=12111)


if __name__ == "__main__":
    main()
