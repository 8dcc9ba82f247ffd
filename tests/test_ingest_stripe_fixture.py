"""The Stripe ingest against a server built from Stripe's published object shapes: a STANDARD account.

The account is not a Connect platform (`GET /v1/accounts` is refused), so everything must come from the
key's own account. Expected values come from the fixture file itself, never from the loaded tables.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ez360.core.settings import Settings
from ingest.http import RetryPolicy
from ingest.report import IngestFailed
from ingest.runner import run_source
from tests.support.faults import Faults
from tests.support.live_server import serve_app
from tests.support.raw_tables import Raw
from tests.support.stripe_fixture_server import create_app, load_world

TYPES = ("customers", "payment_intents", "charges", "refunds", "disputes", "payouts", "balance_transactions",
         "subscriptions")


def fixture_settings(tmp_path: Path, url: str, warehouse_url: str = "", **values: Any) -> Settings:
    """What a user sets for a standard account: the key, the API base, sandboxes off. Nothing else."""
    env = dict(var_dir=tmp_path / "var", warehouse_url=warehouse_url, stripe_api_key="sk_test_fixture_standard_account",
               stripe_api_base=url, sandboxes="off", ingest_backoff_seconds=0.01, ingest_max_wait_seconds=0.05)
    return Settings(_env_file=None, **{**env, **values})


@pytest.fixture
def world() -> dict[str, Any]:
    return load_world()


@pytest.fixture
def server(world: dict[str, Any]) -> Iterator[tuple[str, Faults]]:
    faults = Faults(create_app(world))
    with serve_app(faults) as url:
        yield url, faults


def assert_lands_exactly(raw: Raw, world: dict[str, Any]) -> None:
    account = world["account"]["id"]
    for kind in TYPES:
        rows = raw.rows("raw_stripe", kind, "id, account_id")
        ids = [r["id"] for r in rows]
        assert sorted(ids) == sorted(o["id"] for o in world["objects"][kind]), kind
        assert len(ids) == len(set(ids)), f"{kind} landed twice"
        assert {r["account_id"] for r in rows} == {account}, kind
    assert raw.rows("raw_stripe", "accounts", "id, connection") == [{"id": account, "connection": "self"}]
    links = raw.rows("raw_stripe", "payout_balance_transactions", "payout_id, balance_transaction_id, account_id")
    expected = {(p, t) for p, txns in world["payout_members"].items() for t in txns}
    assert {(r["payout_id"], r["balance_transaction_id"]) for r in links} == expected
    assert len(links) == len(expected) and {r["account_id"] for r in links} == {account}
    assert "payout" not in raw.columns("raw_stripe", "balance_transactions")


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_standard_account_lands_every_object_once_with_payout_links_then_reruns_idle(
        engine: str, tmp_path: Path, server: tuple[str, Faults], world: dict[str, Any],
        request: pytest.FixtureRequest) -> None:
    url, _ = server
    warehouse = request.getfixturevalue("postgres_url") if engine == "postgres" else ""
    settings = fixture_settings(tmp_path, url, warehouse)
    report = run_source("stripe", settings)
    raw = Raw(settings.warehouse_url)
    try:
        assert not report.partial and report.errors == {}
        assert_lands_exactly(raw, world)
        assert report.row_counts["charges"] == 5 and report.row_counts["payout_balance_transactions"] == 9
        # the instant payout is manual: Stripe lists no transactions for it, and the report says so
        assert any("manual payouts" in note for note in report.notes)

        # JPY charged, settled in USD at the exact rate; fee details as their own rows
        [jpy] = raw.rows("raw_stripe", "charges", "amount, currency, balance_transaction",
                         "where id = 'ch_FixJPY0002'")
        assert jpy == {"amount": 12000, "currency": "jpy", "balance_transaction": "txn_FixCh0002"}
        [settled] = raw.rows("raw_stripe", "balance_transactions", "amount, fee, net, currency, exchange_rate, _dlt_id",
                             "where id = 'txn_FixCh0002'")
        assert (settled["amount"], settled["fee"], settled["net"], settled["currency"]) == (8000, 262, 7738, "usd")
        assert settled["exchange_rate"] == Decimal("0.0066667")
        fees = raw.rows("raw_stripe", "balance_transactions__fee_details", "amount, type",
                        f"where _dlt_parent_id = '{settled['_dlt_id']}'")
        assert sorted(f["amount"] for f in fees) == [30, 232] and {f["type"] for f in fees} == {"stripe_fee"}

        # the failed payout, its failure transaction, the dispute's adjustment, the instant payout
        [failed] = raw.rows("raw_stripe", "payouts", "status, failure_code, failure_balance_transaction, automatic",
                            "where id = 'po_FixAutoFail2'")
        assert failed == {"status": "failed", "failure_code": "account_closed",
                          "failure_balance_transaction": "txn_FixPoFail2", "automatic": True}
        [reversal] = raw.rows("raw_stripe", "balance_transactions", "type, amount, source",
                              "where id = 'txn_FixPoFail2'")
        payout_amount = next(p["amount"] for p in world["objects"]["payouts"] if p["id"] == "po_FixAutoFail2")
        assert reversal == {"type": "payout_failure", "amount": payout_amount, "source": "po_FixAutoFail2"}
        [adjustment] = raw.rows("raw_stripe", "balance_transactions", "type, reporting_category, amount, fee",
                                "where source = 'dp_FixDispute1'")
        assert adjustment == {"type": "adjustment", "reporting_category": "dispute", "amount": -3000, "fee": 1500}
        assert raw.rows("raw_stripe", "payouts", "method, automatic", "where id = 'po_FixInstant3'") == [
            {"method": "instant", "automatic": False}]
        # an expanded list under `data` is a child table
        assert raw.rows("raw_stripe", "subscriptions__items__data", "id, price__unit_amount, price__currency") == [
            {"id": "si_FixItem1", "price__unit_amount": 150000, "price__currency": "usd"}]
        # the dispute's embedded copy of its transactions is not landed a second time
        assert "disputes__balance_transactions" not in raw.tables("raw_stripe")

        before = raw.snapshot("raw_stripe")
        again = run_source("stripe", settings)
        assert again.rows == 0 and again.row_counts == {}
        assert raw.snapshot("raw_stripe") == before  # not a row touched, load ids included
    finally:
        raw.close()


def test_connected_accounts_asked_of_a_standard_account_are_reported_and_its_own_objects_still_load(
        tmp_path: Path, server: tuple[str, Faults], world: dict[str, Any]) -> None:
    url, _ = server
    settings = fixture_settings(tmp_path, url, stripe_accounts="self,connected")
    report = run_source("stripe", settings)
    assert report.partial
    assert "403" in report.errors["accounts:connected"] and "use `self`" in report.errors["accounts:connected"]
    raw = Raw(settings.warehouse_url)
    try:
        assert_lands_exactly(raw, world)
    finally:
        raw.close()


def test_rate_limits_and_a_connection_dropped_mid_pagination_still_land_every_object_once(
        tmp_path: Path, server: tuple[str, Faults], world: dict[str, Any]) -> None:
    url, faults = server
    faults.rate_limit_every = 5
    faults.drop_at = {3, 9}  # the 3rd request is the 2nd page of customers (limit 1 below): mid-pagination
    settings = fixture_settings(tmp_path, url)
    from ingest import stripe_source

    stripe_source.PAGE_SIZE, page_size = 1, stripe_source.PAGE_SIZE  # one object per page: many pages
    try:
        report = run_source("stripe", settings)
    finally:
        stripe_source.PAGE_SIZE = page_size
    assert faults.rate_limited >= 10 and faults.dropped == 2
    assert report.retries == faults.rate_limited + faults.dropped
    assert report.retry_reasons["HTTP 429"] == faults.rate_limited
    assert sum(n for reason, n in report.retry_reasons.items() if reason != "HTTP 429") == 2
    assert report.pages > 30
    raw = Raw(settings.warehouse_url)
    try:
        assert_lands_exactly(raw, world)
    finally:
        raw.close()


def test_endless_rate_limit_honours_retry_after_then_fails_loudly_and_writes_nothing(
        tmp_path: Path, server: tuple[str, Faults], world: dict[str, Any]) -> None:
    url, faults = server
    faults.rate_limit_always, faults.retry_after = True, "7"
    settings = fixture_settings(tmp_path, url)
    waits: list[float] = []
    policy = RetryPolicy(max_attempts=4, backoff_seconds=0.01, max_wait_seconds=30, jitter_seconds=0.5,
                         sleep=waits.append)
    with pytest.raises(IngestFailed) as failed:
        run_source("stripe", settings, policy=policy)
    assert "429" in str(failed.value) and "nothing of it was written" in str(failed.value)
    assert faults.requests == 4  # bounded: four tries, then it gave up
    assert len(waits) == 3 and all(7 <= w <= 7.5 for w in waits)  # Retry-After honoured, plus jitter
    raw = Raw(settings.warehouse_url)
    try:
        assert not {t for t in raw.tables("raw_stripe") if not t.startswith("_dlt")}
    finally:
        raw.close()

    faults.rate_limit_always = False
    run_source("stripe", settings)  # the next run starts from scratch: nothing was half-written, no cursor moved
    raw = Raw(settings.warehouse_url)
    try:
        assert_lands_exactly(raw, world)
    finally:
        raw.close()


def _event(event_type: str, obj: dict[str, Any], created: int) -> dict[str, Any]:
    return {"id": f"evt_{event_type}_{obj['id']}", "object": "event", "api_version": "2025-03-31",
            "created": created, "data": {"object": dict(obj)}, "livemode": False, "pending_webhooks": 0,
            "request": {"id": None, "idempotency_key": None}, "type": event_type}


def test_a_refund_and_a_payout_failing_after_the_first_load_are_current_after_the_next_run(
        tmp_path: Path, server: tuple[str, Faults], world: dict[str, Any]) -> None:
    url, _ = server
    objects = world["objects"]
    payout = next(p for p in objects["payouts"] if p["id"] == "po_FixAutoFail2")
    failure = next(t for t in objects["balance_transactions"] if t["id"] == "txn_FixPoFail2")
    objects["balance_transactions"].remove(failure)  # at first the payout is on its way, not failed
    payout.update(status="in_transit", failure_balance_transaction=None, failure_code=None, failure_message=None)
    settings = fixture_settings(tmp_path, url)
    run_source("stripe", settings)

    now = int(time.time())
    charge = next(c for c in objects["charges"] if c["id"] == "ch_FixUSD0005")
    refund = {**objects["refunds"][0], "id": "re_FixLater02", "created": now, "amount": 2500,
              "charge": "ch_FixUSD0005", "payment_intent": "pi_FixUSD0005", "balance_transaction": "txn_FixRe0002"}
    objects["refunds"].append(refund)
    objects["balance_transactions"].append({**failure, "id": "txn_FixRe0002", "created": now, "amount": -2500,
                                            "fee": 0, "net": -2500, "type": "refund", "reporting_category": "refund",
                                            "source": "re_FixLater02", "fee_details": []})
    charge.update(amount_refunded=2500, refunded=True)
    payout.update(status="failed", failure_balance_transaction="txn_FixPoFail2", failure_code="account_closed")
    objects["balance_transactions"].append({**failure, "created": now})
    world["events"] += [_event("charge.refunded", charge, now), _event("refund.created", refund, now),
                        _event("payout.failed", payout, now)]
    report = run_source("stripe", settings)
    raw = Raw(settings.warehouse_url)
    try:
        assert raw.rows("raw_stripe", "charges", "amount_refunded, refunded", "where id = 'ch_FixUSD0005'") == [
            {"amount_refunded": 2500, "refunded": True}]
        assert raw.rows("raw_stripe", "payouts", "status, failure_balance_transaction",
                        "where id = 'po_FixAutoFail2'") == [
            {"status": "failed", "failure_balance_transaction": "txn_FixPoFail2"}]
        assert raw.scalar("select count(*) from raw_stripe.balance_transactions where id = 'txn_FixPoFail2'") == 1
        assert_lands_exactly(raw, world)
        assert report.row_counts["charges"] == 1 and report.row_counts["payouts"] == 1

        # a change the events no longer cover (the last run was 40 days ago): the bounded re-pull finds it
        dispute = objects["disputes"][0]
        dispute["status"] = "won"
        later = fixture_settings(tmp_path, url, stripe_repull_days=400)
        gap = run_source("stripe", later, clock=lambda: time.time() + 40 * 86400)
        assert any("events window exceeded" in note for note in gap.notes)
        assert raw.rows("raw_stripe", "disputes", "status") == [{"status": "won"}]
        assert_lands_exactly(raw, world)
    finally:
        raw.close()
