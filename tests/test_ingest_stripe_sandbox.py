"""The Stripe ingest against the project's sandbox (Connect: one account per company), as the demo runs it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest

from ez360.core.settings import Settings
from ingest.runner import run_source
from ingest.sandboxes import stripe_server
from tests.support.live_server import serve_app
from tests.support.raw_tables import Raw
from tests.support.sandbox_data import (
    ALPHA,
    BETA,
    STRIPE_KEY,
    T0,
    build_stripe,
    stripe_charge_bundle,
    write_stripe_json,
)

TYPES = ("customers", "payment_intents", "charges", "refunds", "disputes", "payouts", "balance_transactions",
         "subscriptions")
LATER_COLUMNS = {"charges": {"failure_code", "failure_balance_transaction", "amount_refunded", "refunded", "disputed"},
                 "payouts": {"failure_code", "failure_balance_transaction", "arrival_date", "automatic", "method"},
                 "balance_transactions": {"exchange_rate", "reporting_category", "fee", "net"},
                 "refunds": {"failure_reason", "failure_balance_transaction", "status"}}


def sandbox_settings(tmp_path: Path, url: str, warehouse_url: str = "", **values: Any) -> Settings:
    return Settings(_env_file=None, **{"var_dir": tmp_path / "var", "warehouse_url": warehouse_url,
                                       "stripe_api_key": STRIPE_KEY, "stripe_api_base": url, "sandboxes": "on",
                                       "ingest_backoff_seconds": 0.01, **values})


def expected_ids(data: dict[str, Any], kind: str, accounts: tuple[str, ...] = (ALPHA, BETA)) -> dict[str, str]:
    return {o["id"]: acct for acct in accounts for o in data["accounts"][acct][kind]}


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_every_connected_account_lands_exactly_with_declared_columns_then_reruns_idle(
        engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    data = build_stripe()
    warehouse = request.getfixturevalue("postgres_url") if engine == "postgres" else ""
    with serve_app(stripe_server.create_app(write_stripe_json(tmp_path, data))) as url:
        settings = sandbox_settings(tmp_path, url, warehouse)
        report = run_source("stripe", settings)
        raw = Raw(settings.warehouse_url)
        try:
            assert not report.partial
            for kind in TYPES:
                rows = raw.rows("raw_stripe", kind, "id, account_id")
                assert {r["id"]: r["account_id"] for r in rows} == expected_ids(data, kind), kind
                assert len(rows) == len({r["id"] for r in rows}), kind
            accounts = {r["id"]: r["connection"] for r in raw.rows("raw_stripe", "accounts", "id, connection")}
            assert accounts == {stripe_server.PLATFORM_ACCOUNT["id"]: "self", ALPHA: "connected", BETA: "connected"}
            # the sandbox keeps the demo's payout of each transaction to itself and answers ?payout= with it
            links = raw.rows("raw_stripe", "payout_balance_transactions", "payout_id, balance_transaction_id")
            assert sorted((r["payout_id"], r["balance_transaction_id"]) for r in links) == sorted(
                (t["payout"], t["id"]) for a in data["accounts"].values() for t in a["balance_transactions"]
                if t["payout"])
            for table, columns in LATER_COLUMNS.items():  # no row has them yet; the columns exist all the same
                assert columns <= set(raw.columns("raw_stripe", table)), table
            assert "payout" not in raw.columns("raw_stripe", "balance_transactions")
            types = raw.columns("raw_stripe", "balance_transactions")
            assert types["amount"].lower() == "bigint" and types["exchange_rate"].lower().startswith(("decimal",
                                                                                                      "numeric"))
            before = raw.snapshot("raw_stripe")
            assert run_source("stripe", settings).rows == 0
            assert raw.snapshot("raw_stripe") == before
        finally:
            raw.close()


def test_new_objects_load_incrementally_malformed_ones_are_quarantined_new_fields_become_columns(
        tmp_path: Path) -> None:
    data = build_stripe()
    path = write_stripe_json(tmp_path, data)
    with serve_app(stripe_server.create_app(path)) as url:
        settings = sandbox_settings(tmp_path, url)
        run_source("stripe", settings)
    beta = data["accounts"][BETA]
    bundle = stripe_charge_bundle("ch_B3", T0 + 5000, 999, "cus_B1", "INV-1003")
    bundle["charges"][0]["risk_score_v2"] = 17  # a field Stripe added after we wrote the connector
    beta["charges"] += bundle["charges"] + [
        {**bundle["charges"][0], "id": "ch_B4", "amount": "12.50"},  # not an integer amount
        {**bundle["charges"][0], "id": "ch_B5", "currency": "xyz"},  # not a currency
        {k: v for k, v in bundle["charges"][0].items() if k != "id"} | {"created": T0 + 5001},  # no id
    ]
    beta["balance_transactions"] += bundle["balance_transactions"]
    write_stripe_json(tmp_path, data)
    with serve_app(stripe_server.create_app(path)) as url:  # a restarted server with the new objects
        report = run_source("stripe", sandbox_settings(tmp_path, url))
    assert report.row_counts == {"charges": 1, "balance_transactions": 1, "_quarantine": 3}
    assert report.quarantined == {"unparsable_amount:amount": 1, "unknown_currency:currency": 1,
                                  "missing_field:id": 1}
    raw = Raw(sandbox_settings(tmp_path, "").warehouse_url)
    try:
        assert raw.rows("raw_stripe", "charges", "risk_score_v2", "where id = 'ch_B3'") == [{"risk_score_v2": 17}]
        quarantined = raw.rows("raw_stripe", "_quarantine", "source, table_name, record_key, reason, payload")
        assert {(q["record_key"], q["reason"]) for q in quarantined if q["record_key"].startswith("ch_")} == {
            ("ch_B4", "unparsable_amount:amount"), ("ch_B5", "unknown_currency:currency")}
        assert {(q["source"], q["table_name"]) for q in quarantined} == {("stripe", "charges")}
        assert any(q["record_key"].startswith("sha256:") and '"amount":999' in q["payload"] for q in quarantined)
        assert raw.scalar("select count(*) from raw_stripe.charges where id in ('ch_B4', 'ch_B5')") == 0
    finally:
        raw.close()


def test_explicit_connected_account_ids_limit_what_is_read(tmp_path: Path) -> None:
    data = build_stripe()
    with serve_app(stripe_server.create_app(write_stripe_json(tmp_path, data))) as url:
        settings = sandbox_settings(tmp_path, url, stripe_accounts=f"self,{BETA}", stripe_objects="charges,payouts")
        report = run_source("stripe", settings)
    assert report.row_counts == {"accounts": 2, "charges": len(data["accounts"][BETA]["charges"])}
