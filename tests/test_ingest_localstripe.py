"""The Stripe ingest against localstripe, a Stripe-compatible server this project did not write.

localstripe keeps one (standard) account, has no `GET /v1/account` (the launcher below adds just that route,
answering as Stripe does for the key's own account), no disputes and no subscriptions without prices, puts no
fees on its balance transactions, and creates payouts as manual ones (so Stripe's `?payout=` filter does not
apply to them). Objects are created through its API the way a client would: a card token attached to the
customer as a source, then charges, a refund, payouts.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from ez360.core.settings import Settings
from ingest.runner import run_source
from tests.support.localstripe_server import _LAUNCHER, TEST_CARD, LocalStripe, localstripe_server
from tests.support.raw_tables import Raw

ACCOUNT = "acct_1LocalStripeFR"
LAUNCHER = _LAUNCHER.replace("web.run_app(", f'''
async def own_account(request):  # Stripe's GET /v1/account, which localstripe lacks
    return web.json_response({{"id": "{ACCOUNT}", "object": "account", "type": "standard", "country": "FR",
                               "default_currency": "eur", "created": 1700000000, "metadata": {{}},
                               "charges_enabled": True, "payouts_enabled": True}})
server.app.router.add_get("/v1/account", own_account)
web.run_app(''', 1)
OBJECTS = "customers,payment_intents,charges,refunds,payouts,balance_transactions"


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[LocalStripe, dict[str, list[str]]]]:
    with localstripe_server(tmp_path_factory.mktemp("localstripe"), launcher=LAUNCHER) as server:
        ids: dict[str, list[str]] = {}
        with httpx.Client(base_url=server.url, auth=(server.api_key, ""), timeout=10) as api:
            def post(path: str, **data: Any) -> dict[str, Any]:
                response = api.post(path, data=data)
                assert response.status_code == 200, response.text
                return response.json()

            for n in range(3):
                token = post("/v1/tokens", **{f"card[{k}]": v for k, v in TEST_CARD.items()})
                customer = post("/v1/customers", email=f"buyer{n}@example.com")
                post(f"/v1/customers/{customer['id']}/sources", source=token["id"])
                ids.setdefault("customers", []).append(customer["id"])
                for amount in (1000 + n, 2500 + n):
                    charge = post("/v1/charges", amount=amount, currency="eur", customer=customer["id"])
                    ids.setdefault("charges", []).append(charge["id"])
            ids["refunds"] = [post("/v1/refunds", charge=ids["charges"][0], amount=500)["id"]]
            ids["payouts"] = [post("/v1/payouts", amount=900, currency="eur")["id"],
                              post("/v1/payouts", amount=100, currency="eur", method="instant")["id"]]
            listed = api.get("/v1/balance_transactions", params={"limit": 100}).json()["data"]
            ids["balance_transactions"] = [t["id"] for t in listed]
        assert len(ids["balance_transactions"]) >= 7  # one per charge and one for the refund, at least
        yield server, ids


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_every_localstripe_object_lands_exactly_once(engine: str, tmp_path: Path, request: pytest.FixtureRequest,
                                                     world: tuple[LocalStripe, dict[str, list[str]]]) -> None:
    server, ids = world
    warehouse = request.getfixturevalue("postgres_url") if engine == "postgres" else ""
    settings = Settings(_env_file=None, var_dir=tmp_path / "var", warehouse_url=warehouse, sandboxes="off",
                        stripe_api_key=server.api_key, stripe_api_base=server.url, stripe_objects=OBJECTS)
    report = run_source("stripe", settings)
    assert not report.partial
    assert report.notes.get("stripe: manual payouts (Stripe lists no balance transactions for them)") == 2
    raw = Raw(settings.warehouse_url)
    try:
        for kind, expected in ids.items():
            rows = raw.rows("raw_stripe", kind, "id, account_id")
            assert sorted(r["id"] for r in rows) == sorted(expected), kind
            assert {r["account_id"] for r in rows} == {ACCOUNT}, kind
        charges = raw.rows("raw_stripe", "charges", "amount, currency")
        assert sorted(c["amount"] for c in charges) == [1000, 1001, 1002, 2500, 2501, 2502]
        assert raw.rows("raw_stripe", "refunds", "amount, charge") == [{"amount": 500, "charge": ids["charges"][0]}]
        methods = {r["method"] for r in raw.rows("raw_stripe", "payouts", "method, automatic")}
        assert methods == {"standard", "instant"}
        assert raw.rows("raw_stripe", "accounts", "id, connection") == [{"id": ACCOUNT, "connection": "self"}]
    finally:
        raw.close()
