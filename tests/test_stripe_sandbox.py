"""The Stripe sandbox speaks Stripe's API well enough for the official SDK, errors included."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
import stripe

from ingest.sandboxes.stripe_server import create_app
from tests.support.live_server import serve_app
from tests.support.sandbox_data import ALPHA, BETA, STRIPE_KEY, T0, build_stripe, write_stripe_json

DATA = build_stripe()


@pytest.fixture(scope="module")
def base_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    path = write_stripe_json(tmp_path_factory.mktemp("stripe"), DATA)
    with serve_app(create_app(path)) as url:
        yield url


@pytest.fixture(scope="module")
def client(base_url: str) -> stripe.StripeClient:
    return stripe.StripeClient(STRIPE_KEY, base_addresses={"api": base_url}, max_network_retries=0)


def _as(account: str) -> dict[str, str]:
    return {"stripe_account": account}


def _expected_ids(account: str, list_name: str) -> list[str]:
    objects = DATA["accounts"][account][list_name]
    return [o["id"] for o in sorted(objects, key=lambda o: (o["created"], o["id"]), reverse=True)]


def test_auto_pagination_yields_every_charge_exactly_once_newest_first(client: stripe.StripeClient) -> None:
    first = client.v1.charges.list({"limit": 2}, _as(ALPHA))
    ids = [c.id for c in first.auto_paging_iter()]
    assert ids == _expected_ids(ALPHA, "charges")
    assert len(ids) == len(set(ids)) == 5
    # ch_A3 and ch_A4 share a second: the id breaks the tie, descending like Stripe.
    assert ids.index("ch_A4") < ids.index("ch_A3")


def test_pages_report_has_more_until_the_last_one(client: stripe.StripeClient) -> None:
    page, sizes = client.v1.charges.list({"limit": 2}, _as(ALPHA)), []
    while True:
        sizes.append((len(page.data), page.has_more))
        if not page.has_more:
            break
        page = page.next_page()
    assert sizes == [(2, True), (2, True), (1, False)]


def test_starting_after_and_ending_before_move_the_window(client: stripe.StripeClient) -> None:
    ids = _expected_ids(ALPHA, "charges")
    after = client.v1.charges.list({"limit": 2, "starting_after": ids[1]}, _as(ALPHA))
    assert [c.id for c in after.data] == ids[2:4] and after.has_more
    before = client.v1.charges.list({"limit": 2, "ending_before": ids[4]}, _as(ALPHA))
    assert [c.id for c in before.data] == ids[2:4] and before.has_more
    last = client.v1.charges.list({"limit": 10, "starting_after": ids[3]}, _as(ALPHA))
    assert [c.id for c in last.data] == ids[4:] and not last.has_more


def test_stripe_account_header_selects_the_connected_accounts_data(client: stripe.StripeClient) -> None:
    assert [c.id for c in client.v1.charges.list({"limit": 100}, _as(BETA)).data] == ["ch_B2", "ch_B1"]
    assert {c.id for c in client.v1.charges.list({"limit": 100}, _as(ALPHA)).data} == {
        "ch_A1", "ch_A2", "ch_A3", "ch_A4", "ch_A5"}
    assert client.v1.charges.list({"limit": 100}).data == []  # the platform holds no charges
    with pytest.raises(stripe.InvalidRequestError) as missing:  # other accounts' objects are invisible
        client.v1.charges.retrieve("ch_A1", options=_as(BETA))
    assert missing.value.http_status == 404


def test_unknown_connected_account_is_refused(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.PermissionError) as refused:
        client.v1.charges.list(options=_as("acct_unknown"))
    assert "acct_unknown" in str(refused.value)


def test_platform_lists_and_retrieves_connected_accounts(client: stripe.StripeClient) -> None:
    accounts = client.v1.accounts.list()
    assert {a.id for a in accounts.data} == {ALPHA, BETA} and not accounts.has_more
    assert client.v1.accounts.retrieve(ALPHA).metadata["ez360_company"] == "alpha"
    with pytest.raises(stripe.InvalidRequestError):
        client.v1.accounts.retrieve("acct_nope")


def test_retrieve_returns_the_object_and_unknown_id_is_resource_missing(client: stripe.StripeClient) -> None:
    charge = client.v1.charges.retrieve("ch_A2", options=_as(ALPHA))
    assert charge.amount == 2500 and charge.metadata["invoice_number"] == "INV-0002"
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.charges.retrieve("ch_nope", options=_as(ALPHA))
    assert missing.value.code == "resource_missing" and missing.value.http_status == 404
    assert "ch_nope" in str(missing.value)


def test_unknown_cursor_is_a_resource_missing_error(client: stripe.StripeClient) -> None:
    with pytest.raises(stripe.InvalidRequestError) as missing:
        client.v1.charges.list({"starting_after": "ch_nope"}, _as(ALPHA))
    assert missing.value.code == "resource_missing" and missing.value.param == "starting_after"


@pytest.mark.parametrize("limit", [0, 101, -5])
def test_limit_out_of_range_is_rejected_naming_the_parameter(client: stripe.StripeClient, limit: int) -> None:
    with pytest.raises(stripe.InvalidRequestError) as bad:
        client.v1.charges.list({"limit": limit}, _as(ALPHA))
    assert bad.value.param == "limit" and bad.value.http_status == 400


def test_bad_api_key_raises_authentication_error(base_url: str) -> None:
    wrong = stripe.StripeClient("sk_test_wrong_key_123456", base_addresses={"api": base_url},
                                max_network_retries=0)
    with pytest.raises(stripe.AuthenticationError) as refused:
        wrong.v1.charges.list(options=_as(ALPHA))
    assert refused.value.http_status == 401 and "Invalid API Key" in str(refused.value)
    assert "wrong_key" not in str(refused.value)  # the key is masked, as Stripe does


def test_missing_key_gets_stripes_error_envelope_and_a_request_id(base_url: str) -> None:
    response = httpx.get(f"{base_url}/v1/charges")
    assert response.status_code == 401
    assert response.json()["error"]["type"] == "invalid_request_error"
    assert response.headers["Request-Id"].startswith("req_")


def test_basic_auth_with_the_key_as_username_is_accepted(base_url: str) -> None:
    response = httpx.get(f"{base_url}/v1/accounts", auth=(STRIPE_KEY, ""))
    assert response.status_code == 200
    assert response.json()["object"] == "list" and response.json()["url"] == "/v1/accounts"


def test_unknown_route_and_unknown_parameter_are_stripe_errors(base_url: str) -> None:
    headers = {"Authorization": f"Bearer {STRIPE_KEY}", "Stripe-Account": ALPHA}
    route = httpx.get(f"{base_url}/v1/nothing_here", headers=headers)
    assert route.status_code == 404 and "Unrecognized request URL" in route.json()["error"]["message"]
    param = httpx.get(f"{base_url}/v1/charges", params={"colour": "red"}, headers=headers)
    assert param.status_code == 400 and param.json()["error"]["param"] == "colour"
    write = httpx.post(f"{base_url}/v1/charges", headers=headers)
    assert write.status_code == 405 and "error" in write.json()


def test_created_range_filters(client: stripe.StripeClient) -> None:
    window = client.v1.charges.list({"created": {"gte": T0 + 200, "lt": T0 + 400}}, _as(ALPHA))
    assert sorted(c.id for c in window.data) == ["ch_A2", "ch_A3", "ch_A4"]
    exact = client.v1.charges.list({"created": T0 + 300}, _as(ALPHA))
    assert sorted(c.id for c in exact.data) == ["ch_A3", "ch_A4"]


def test_balance_transactions_filter_by_payout_and_type(client: stripe.StripeClient) -> None:
    settled = client.v1.balance_transactions.list({"payout": "po_A1", "limit": 100}, _as(ALPHA))
    assert sorted(t.source for t in settled.data) == ["ch_A1", "ch_A2", "ch_A3", "re_A1"]
    payout = client.v1.payouts.retrieve("po_A1", options=_as(ALPHA))
    assert payout.amount == sum(t.net for t in settled.data)
    payouts = client.v1.balance_transactions.list({"type": "payout"}, _as(ALPHA))
    assert [t.id for t in payouts.data] == ["txn_po_A1"]


def test_refunds_filter_by_charge(client: stripe.StripeClient) -> None:
    assert [r.id for r in client.v1.refunds.list({"charge": "ch_A2"}, _as(ALPHA)).data] == ["re_A1"]
    assert client.v1.refunds.list({"charge": "ch_A1"}, _as(ALPHA)).data == []


def test_subscriptions_hide_canceled_unless_asked_like_stripe(client: stripe.StripeClient) -> None:
    assert [s.id for s in client.v1.subscriptions.list(options=_as(ALPHA)).data] == ["sub_A1"]
    every = client.v1.subscriptions.list({"status": "all"}, _as(ALPHA))
    assert sorted(s.id for s in every.data) == ["sub_A1", "sub_A2"]
