"""The Stripe connector: a dlt source reading every connected account through the official stripe SDK.

The same code reads the local sandbox (`api_base=http://127.0.0.1:12111`) and the real Stripe
(`api_base=None`). Loads are incremental on `created`: the largest `created` seen so far is kept in
dlt state and sent back as `created[gte]`, and dlt drops the already-loaded objects that share the
boundary second, so a re-run with nothing new loads nothing.

Known limits of `created`-based increments (Stripe has no `updated` filter): changes to an object
after its first load (a payout going from pending to paid, a charge being refunded) are not re-read,
and the cursor is shared by all accounts, so an account connected after the first load needs a
`refresh="drop_resources"` run to backfill its history. Stripe's Events API is the cure for both.
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Callable, Iterator
from typing import Any

# dlt must never phone home from this platform; set before dlt is imported.
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

import dlt  # noqa: E402
import stripe  # noqa: E402
from dlt.sources import DltResource  # noqa: E402

OBJECT_TYPES = ("customers", "payment_intents", "charges", "refunds", "disputes", "payouts",
                "balance_transactions", "subscriptions")
STRIPE_RESOURCES = ("accounts", *OBJECT_TYPES)  # = the raw tables this source lands
# Embedded lists that repeat rows another resource already loads (some only in older API versions).
DUPLICATE_SUBLISTS: dict[str, frozenset[str]] = {
    "charges": frozenset({"refunds"}),
    "disputes": frozenset({"balance_transactions"}),
    "payment_intents": frozenset({"charges"}),
    "customers": frozenset({"subscriptions", "sources"}),
}
# Id references that may be null in every row of a load; declared so the column always exists downstream.
RELATION_COLUMNS: dict[str, tuple[str, ...]] = {
    "charges": ("customer", "payment_intent", "balance_transaction", "metadata__invoice_number",
                "metadata__ez360_payment_ref"),
    "payment_intents": ("customer", "latest_charge"),
    "refunds": ("charge", "payment_intent", "balance_transaction"),
    "disputes": ("charge", "payment_intent"),
    "payouts": ("balance_transaction",),
    "balance_transactions": ("source", "payout"),
    "subscriptions": ("customer",),
}
# Stripe hides canceled subscriptions from the list unless asked; a ledger needs all of them.
EXTRA_LIST_PARAMS: dict[str, dict[str, Any]] = {"subscriptions": {"status": "all"}}
PAGE_SIZE = 100  # Stripe's maximum


def make_client(api_key: str, api_base: str | None = None) -> stripe.StripeClient:
    base = {"api": api_base.rstrip("/")} if api_base else None
    return stripe.StripeClient(api_key, base_addresses=base, max_network_retries=3)  # type: ignore[arg-type]


def _record(obj: stripe.StripeObject, account_id: str, object_type: str) -> dict[str, Any]:
    row = obj.to_dict()
    for key in DUPLICATE_SUBLISTS.get(object_type, ()):
        row.pop(key, None)
    row["account_id"] = account_id
    return row


def _pages(client: stripe.StripeClient, object_type: str, params: dict[str, Any],
           account_id: str | None) -> Iterator[list[stripe.StripeObject]]:
    """One list per page; the SDK's next_page keeps the filters and the Stripe-Account header."""
    service = getattr(client.v1, object_type)
    options: dict[str, Any] = {"stripe_account": account_id} if account_id else {}
    page = service.list({"limit": PAGE_SIZE, **params}, options)
    while True:
        if page.data:
            yield page.data
        if not page.has_more:
            return
        page = page.next_page()


def _connected_accounts(client: stripe.StripeClient,
                        accounts: list[str] | None) -> Callable[[], list[stripe.StripeObject]]:
    cache: list[stripe.StripeObject] = []

    def read() -> list[stripe.StripeObject]:
        # Lazily and once per source instance: building the source must not touch the network.
        if not cache:
            if accounts is not None:
                cache.extend(client.v1.accounts.retrieve(account_id) for account_id in accounts)
            else:
                cache.extend(a for page in _pages(client, "accounts", {}, None) for a in page)
        return cache

    return read


def _row_hash(row: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()


def _object_resource(client: stripe.StripeClient, object_type: str,
                     connected: Callable[[], list[stripe.StripeObject]]) -> DltResource:
    def read(created: dlt.sources.incremental[int] = dlt.sources.incremental("created")) -> Iterator[Any]:
        params = dict(EXTRA_LIST_PARAMS.get(object_type, {}))
        if created.last_value is not None:
            params["created"] = {"gte": created.last_value}
        for account_id in (a.id for a in connected()):
            for page in _pages(client, object_type, params, account_id):
                yield [_record(obj, account_id, object_type) for obj in page]

    columns = {name: {"data_type": "text", "nullable": True} for name in RELATION_COLUMNS.get(object_type, ())}
    return dlt.resource(read, name=object_type, primary_key="id", write_disposition="merge", columns=columns)


@dlt.source(name="stripe")
def stripe_source(api_key: str, api_base: str | None = None,
                  accounts: list[str] | None = None) -> list[DltResource]:
    """Stripe objects of every connected account (or just `accounts`), one resource per object type.

    Each row carries `account_id`, the connected account it was read from.
    """
    client = make_client(api_key, api_base)
    connected = _connected_accounts(client, accounts)

    @dlt.resource(name="accounts", primary_key="id", write_disposition="merge")
    def accounts_resource() -> Iterator[list[dict[str, Any]]]:
        # Accounts are few and mutable (names, settings) and have no useful cursor: read them all,
        # pass on only those whose content changed since the last run, so an idle re-run loads nothing.
        seen = dlt.current.resource_state().setdefault("row_hashes", {})
        rows = [_record(a, a.id, "accounts") for a in connected()]
        changed = [row for row in rows if seen.get(row["id"]) != _row_hash(row)]
        seen.update({row["id"]: _row_hash(row) for row in changed})
        yield changed

    return [accounts_resource, *(_object_resource(client, t, connected) for t in OBJECT_TYPES)]
