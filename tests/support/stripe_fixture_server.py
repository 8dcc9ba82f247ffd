"""A Stripe-shaped server for ONE standard (non-Connect) account, serving objects derived from Stripe's
published fixtures (tests/fixtures/stripe/standard_account.json, see derive.py there).

Written apart from the project's sandbox on purpose: it follows Stripe's documented list semantics (newest
first by `created`, `limit` <= 100, `starting_after`, `created[gt|gte|lt|lte]`, balance transactions
`?payout=` for automatic payouts only, `GET /v1/events` of the last 30 days) and refuses what a standard
account cannot do (`GET /v1/accounts`, a `Stripe-Account` header) with Stripe's error envelope, so the
connector is tried against behaviour this project's sandbox did not define.
"""

from __future__ import annotations

import copy
import json
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

FIXTURE = Path(__file__).resolve().parents[1] / "fixtures" / "stripe" / "standard_account.json"
OPS = {"gt": int.__gt__, "gte": int.__ge__, "lt": int.__lt__, "lte": int.__le__}


def load_world(path: Path = FIXTURE) -> dict[str, Any]:
    return copy.deepcopy(json.loads(path.read_text(), parse_float=Decimal))


def _body(payload: Any, status: int = 200) -> Response:
    def default(value: Any) -> Any:
        if isinstance(value, Decimal):
            return float(value)
        raise TypeError(value)
    return Response(json.dumps(payload, default=default), status, media_type="application/json")


def _error(status: int, message: str, kind: str = "invalid_request_error", **extra: Any) -> Response:
    return _body({"error": {"type": kind, "message": message, **extra}}, status)


def create_app(world: dict[str, Any]) -> Starlette:
    """Serves `world` as it is at each request: a test may change it between runs (updates, new events)."""
    key, account = world["api_key"], world["account"]

    def newest_first(objects: list[dict[str, Any]]) -> list[dict[str, Any]]:
        return sorted(objects, key=lambda o: (o["created"], o["id"]), reverse=True)

    def guard(request: Request) -> Response | None:
        if request.headers.get("authorization") != f"Bearer {key}":
            return _error(401, "Invalid API Key provided", code="api_key_invalid")
        if "stripe-account" in request.headers:
            return _error(403, "The provided key does not have access to the account (this is not a Connect "
                               "platform).", kind="invalid_request_error", code="account_invalid")
        return None

    def page(request: Request, objects: list[dict[str, Any]], url: str) -> Response:
        params = request.query_params
        limit = int(params.get("limit", 10))
        if not 1 <= limit <= 100:
            return _error(400, "Invalid limit: must be between 1 and 100", param="limit")
        for name, raw in params.items():
            if name.startswith("created["):
                op = name[len("created["):-1]
                objects = [o for o in objects if OPS[op](o["created"], int(raw))]
            elif name == "created":
                objects = [o for o in objects if o["created"] == int(raw)]
        objects = newest_first(objects)
        after = params.get("starting_after")
        if after:
            ids = [o["id"] for o in objects]
            if after not in ids:
                return _error(400, f"No such object: '{after}'", code="resource_missing", param="starting_after")
            objects = objects[ids.index(after) + 1:]
        return _body({"object": "list", "url": url, "has_more": len(objects) > limit, "data": objects[:limit]})

    async def own_account(request: Request) -> Response:
        return guard(request) or _body(account)

    async def accounts(request: Request) -> Response:
        refused = guard(request)
        return refused or _error(403, "This application does not have the required permissions for this "
                                      f"endpoint on account '{account['id']}'. Connect is not enabled.",
                                 kind="invalid_request_error", code="platform_api_key_expired")

    async def events(request: Request) -> Response:
        refused = guard(request)
        if refused:
            return refused
        kept = [e for e in world["events"] if e["created"] >= time.time() - 30 * 86400]
        return page(request, kept, "/v1/events")

    async def listing(request: Request) -> Response:
        refused = guard(request)
        if refused:
            return refused
        kind = request.path_params["kind"]
        if kind not in world["objects"]:
            return _error(404, f"Unrecognized request URL (GET: /v1/{kind}).")
        objects = world["objects"][kind]
        if kind == "subscriptions" and request.query_params.get("status") != "all":
            objects = [o for o in objects if o["status"] != "canceled"]
        payout = request.query_params.get("payout") if kind == "balance_transactions" else None
        if payout:
            found = next((p for p in world["objects"]["payouts"] if p["id"] == payout), None)
            if found is None:
                return _error(404, f"No such payout: '{payout}'", code="resource_missing", param="payout")
            if not found["automatic"]:
                return _error(400, "Balance transaction history can only be filtered on automatic transfers, "
                                   "not manual.", param="payout")
            members = set(world["payout_members"].get(payout, []))
            objects = [o for o in objects if o["id"] in members]
        return page(request, objects, f"/v1/{kind}")

    async def retrieve(request: Request) -> Response:
        refused = guard(request)
        if refused:
            return refused
        kind, object_id = request.path_params["kind"], request.path_params["object_id"]
        found = next((o for o in world["objects"].get(kind, []) if o["id"] == object_id), None)
        return _body(found) if found else _error(404, f"No such object: '{object_id}'", code="resource_missing")

    return Starlette(routes=[
        Route("/v1/account", own_account), Route("/v1/accounts", accounts), Route("/v1/events", events),
        Route("/v1/{kind}", listing), Route("/v1/{kind}/{object_id}", retrieve)])
