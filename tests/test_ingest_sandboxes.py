"""The sandboxes behave like the real APIs where the ingest depends on it (Stripe and Frappe docs)."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from ingest.sandboxes import frappe_server, stripe_server
from tests.support.live_server import serve_app
from tests.support.sandbox_data import (
    ALPHA,
    ERP_KEY,
    ERP_SECRET,
    STRIPE_KEY,
    build_erpnext,
    build_stripe,
    write_erpnext_json,
    write_stripe_json,
)


def _stripe_data() -> dict[str, Any]:
    data = build_stripe()
    alpha = data["accounts"][ALPHA]
    now = int(time.time())
    # a recent manual payout (no settled transactions) and an explicit event, next to the old demo objects
    alpha["payouts"].append({"id": "po_Manual", "object": "payout", "created": now - 60, "amount": 100,
                             "currency": "usd", "status": "paid", "automatic": False, "arrival_date": now - 30})
    alpha["events"] = [{"id": "evt_custom", "object": "event", "type": "customer.updated", "created": now - 10,
                        "data": {"object": alpha["customers"][0]}}]
    return data


@pytest.fixture(scope="module")
def stripe_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    path = write_stripe_json(tmp_path_factory.mktemp("stripe"), _stripe_data())
    headers = {"Authorization": f"Bearer {STRIPE_KEY}", "Stripe-Account": ALPHA}
    with serve_app(stripe_server.create_app(path)) as url, httpx.Client(base_url=url, headers=headers) as client:
        yield client


@pytest.fixture(scope="module")
def frappe_api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    data = build_erpnext()
    data["denied_doctypes"] = ["Bank Transaction"]
    path = write_erpnext_json(tmp_path_factory.mktemp("erp"), data)
    headers = {"Authorization": f"token {ERP_KEY}:{ERP_SECRET}"}
    with serve_app(frappe_server.create_app(path)) as url, httpx.Client(base_url=url, headers=headers) as client:
        yield client


def test_balance_transactions_carry_no_payout_field_the_link_is_the_payout_filter(stripe_api: httpx.Client) -> None:
    listed = stripe_api.get("/v1/balance_transactions", params={"limit": 100}).json()["data"]
    assert listed and all("payout" not in t for t in listed)
    assert "payout" not in stripe_api.get("/v1/balance_transactions/txn_ch_A1").json()
    settled = stripe_api.get("/v1/balance_transactions", params={"payout": "po_A1", "limit": 100}).json()["data"]
    expected = [t["id"] for t in build_stripe()["accounts"][ALPHA]["balance_transactions"] if t["payout"] == "po_A1"]
    assert sorted(t["id"] for t in settled) == sorted(expected)
    manual = stripe_api.get("/v1/balance_transactions", params={"payout": "po_Manual"})
    assert manual.status_code == 400 and "automatic" in manual.json()["error"]["message"]
    unknown = stripe_api.get("/v1/balance_transactions", params={"payout": "po_nope"})
    assert unknown.status_code == 404 and unknown.json()["error"]["code"] == "resource_missing"


def test_events_are_stripes_last_30_days_newest_first_with_type_filters(stripe_api: httpx.Client) -> None:
    events = stripe_api.get("/v1/events", params={"limit": 100}).json()
    # the demo objects are older than 30 days: only the recent payout's events and the listed one remain
    assert [e["type"] for e in events["data"]] == ["customer.updated", "payout.paid", "payout.created"]
    assert all(e["object"] == "event" and e["data"]["object"]["id"] for e in events["data"])
    payouts = stripe_api.get("/v1/events", params={"type": "payout.*"}).json()["data"]
    assert {e["type"] for e in payouts} == {"payout.paid", "payout.created"}
    newest = events["data"][0]["created"]
    assert [e["id"] for e in stripe_api.get("/v1/events", params={"created[gt]": newest - 1}).json()["data"]] == [
        "evt_custom"]


def test_the_keys_own_account_is_the_platform_and_a_header_selects_a_connected_one(
        stripe_api: httpx.Client) -> None:
    platform = httpx.get(f"{stripe_api.base_url}/v1/account", headers={"Authorization": f"Bearer {STRIPE_KEY}"})
    assert platform.json()["id"] == stripe_server.PLATFORM_ACCOUNT["id"]
    assert stripe_api.get("/v1/account").json()["id"] == ALPHA


def test_child_tables_are_listed_only_with_their_parent_doctype_like_frappe(frappe_api: httpx.Client) -> None:
    refused = frappe_api.get("/api/resource/Journal Entry Account", params={"fields": '["*"]'})
    assert refused.status_code == 403 and refused.json()["exc_type"] == "PermissionError"
    rows = frappe_api.get("/api/resource/Journal Entry Account", params={
        "parent": "Journal Entry", "fields": '["*"]', "order_by": "idx asc",
        "filters": json.dumps([["parent", "in", ["ACC-JV-2026-00001"]]])}).json()["data"]
    assert [(r["parent"], r["parenttype"], r["parentfield"], r["idx"], r["name"]) for r in rows] == [
        ("ACC-JV-2026-00001", "Journal Entry", "accounts", 1, "jea-1"),
        ("ACC-JV-2026-00001", "Journal Entry", "accounts", 2, "jea-2")]
    # an ERPNext child doctype exists even when no document has rows in it
    empty = frappe_api.get("/api/resource/Payment Entry Reference", params={"parent": "Payment Entry"})
    assert empty.status_code == 200 and empty.json()["data"] == []
    document = frappe_api.get("/api/resource/Journal Entry/ACC-JV-2026-00001").json()["data"]
    assert [a["idx"] for a in document["accounts"]] == [1, 2] and document["accounts"][0]["parent"] == document["name"]


def test_a_doctype_the_user_may_not_read_is_403_and_the_logged_user_is_known(frappe_api: httpx.Client) -> None:
    denied = frappe_api.get("/api/resource/Bank Transaction")
    assert denied.status_code == 403 and denied.json()["exc_type"] == "PermissionError"
    assert frappe_api.get("/api/resource/Spaceship").status_code == 404
    assert frappe_api.get("/api/method/frappe.auth.get_logged_user").json() == {"message": "Administrator"}
    wrong = httpx.get(f"{frappe_api.base_url}/api/method/frappe.auth.get_logged_user",
                      headers={"Authorization": f"token {ERP_KEY}:nope"})
    assert wrong.status_code == 401
