"""The Stripe connector: a dlt source reading Stripe's HTTP API with dlt's REST client.

Why not the stripe SDK here: the SDK does not retry HTTP 429 unless Stripe sends `Stripe-Should-Retry`, so a
rate-limited account never finishes, and it hides the pages and retries a data engineer wants to see. The
REST client gives one retry policy (`ingest.http`), exact decimals and counters; the wire protocol is
Stripe's own (Bearer key, `Stripe-Account` header, `limit`/`starting_after` cursors, `created[gte]`).

What is read, per account (`accounts`: the key's own account from `GET /v1/account`, always; connected
accounts only when configured):
- every object type in `objects`, incrementally on `created` (cursor per account and type, kept in dlt
  state; objects in the cursor's own second are skipped by id, so an idle re-run lands nothing);
- objects changed after their first load: the Events API (`GET /v1/events`, kept 30 days by Stripe) names
  them and each is re-read (`GET /v1/<type>/<id>`); when the previous run is older than the events kept, or
  the key may not read events, the mutable types (charges, refunds, disputes, payouts) created in the last
  `repull_days` are listed again instead;
- for every payout landed, the balance transactions it settles (`GET /v1/balance_transactions?payout=po_...`,
  automatic payouts only, as Stripe allows) into `payout_balance_transactions`.
Any failure (after the retries of `ingest.http`) fails the whole extraction, so nothing of it is loaded and no
cursor moves; a connected account or object type that Stripe refuses is reported and skipped (partial).
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import dlt
from dlt.extract import DltResource
from dlt.sources.helpers.rest_client.auth import BearerTokenAuth
from dlt.sources.helpers.rest_client.paginators import BasePaginator
from requests import Request, Response

from ingest.archive import ArchiveWriter
from ingest.http import ApiClient, HttpStats, RetryPolicy, SourceHttpError, decimal_json
from ingest.report import SourceRun
from ingest.tables import Landing, TableSpec, bigint, boolean, decimal, make_resource, required_text, text
from ingest.validation import NOT_AN_OBJECT, check, payload_key, reason

OBJECT_TYPES = ("customers", "payment_intents", "charges", "refunds", "disputes", "payouts",
                "balance_transactions", "subscriptions")
MUTABLE_TYPES = frozenset({"charges", "refunds", "disputes", "payouts"})
EVENT_RETENTION_SECONDS = 30 * 86400
DAY = 86400
PAGE_SIZE = 100  # Stripe's maximum
DEFAULT_API_BASE = "https://api.stripe.com"

# Embedded lists that repeat rows another table already lands (some only in older API versions).
DUPLICATE_SUBLISTS: dict[str, frozenset[str]] = {
    "charges": frozenset({"refunds"}),
    "disputes": frozenset({"balance_transactions"}),
    "payment_intents": frozenset({"charges"}),
    "customers": frozenset({"subscriptions", "sources"}),
}
# Stripe hides canceled subscriptions from the list unless asked; a ledger needs all of them.
EXTRA_LIST_PARAMS: dict[str, dict[str, Any]] = {"subscriptions": {"status": "all"}}
# Event `data.object.object` -> the table holding it.
EVENT_OBJECTS = {"customer": "customers", "payment_intent": "payment_intents", "charge": "charges",
                 "refund": "refunds", "dispute": "disputes", "payout": "payouts",
                 "balance_transaction": "balance_transactions", "subscription": "subscriptions"}

MONEY: dict[str, tuple[str, ...]] = {  # integer amounts; the required ones come first
    "payment_intents": ("amount", "amount_received", "amount_capturable"),
    "charges": ("amount", "amount_captured", "amount_refunded"),
    "refunds": ("amount",), "disputes": ("amount",), "payouts": ("amount",),
    "balance_transactions": ("amount", "fee", "net"),
    "customers": ("balance",),
}
REQUIRED: dict[str, tuple[str, ...]] = {
    "payment_intents": ("amount", "currency"), "charges": ("amount", "currency"),
    "refunds": ("amount", "currency"), "disputes": ("amount", "currency"), "payouts": ("amount", "currency"),
    "balance_transactions": ("amount", "fee", "net", "currency"),
}

_COMMON = {**text("account_id", "object"), **bigint("created"), **boolean("livemode")}
STRIPE_TABLES: dict[str, TableSpec] = {t.name: t for t in (
    TableSpec("accounts", ("id",), {**_COMMON, **text("connection", "default_currency", "country", "type", "email",
                                                      "business_profile__name", "metadata__ez360_company"),
                                    **boolean("charges_enabled", "payouts_enabled")}),
    TableSpec("customers", ("id",), {**_COMMON, **text("email", "name", "currency"), **bigint("balance"),
                                     **boolean("deleted")}),
    TableSpec("payment_intents", ("id",), {**_COMMON, **bigint(*MONEY["payment_intents"], "canceled_at"),
                                           **text("currency", "customer", "latest_charge", "status",
                                                  "cancellation_reason")}),
    TableSpec("charges", ("id",), {**_COMMON, **bigint(*MONEY["charges"]),
                                   **text("currency", "customer", "payment_intent", "balance_transaction", "status",
                                          "failure_code", "failure_message", "failure_balance_transaction",
                                          "description", "metadata__invoice_number",
                                          "metadata__ez360_payment_ref"),
                                   **boolean("captured", "paid", "refunded", "disputed")}),
    TableSpec("refunds", ("id",), {**_COMMON, **bigint("amount"),
                                   **text("currency", "charge", "payment_intent", "balance_transaction", "status",
                                          "reason", "failure_reason", "failure_balance_transaction")}),
    TableSpec("disputes", ("id",), {**_COMMON, **bigint("amount"),
                                    **text("currency", "charge", "payment_intent", "status", "reason"),
                                    **boolean("is_charge_refundable")}),
    TableSpec("payouts", ("id",), {**_COMMON, **bigint("amount", "arrival_date"), **boolean("automatic"),
                                   **text("currency", "method", "type", "status", "balance_transaction",
                                          "failure_code", "failure_message", "failure_balance_transaction",
                                          "original_payout", "reversed_by", "description")}),
    TableSpec("balance_transactions", ("id",), {**_COMMON, **bigint("amount", "fee", "net", "available_on"),
                                                **decimal("exchange_rate", scale=18),
                                                **text("currency", "type", "reporting_category", "source",
                                                       "status", "description")}),
    TableSpec("subscriptions", ("id",), {**_COMMON, **text("customer", "status", "currency"),
                                         **bigint("current_period_start", "current_period_end", "canceled_at",
                                                  "ended_at"),
                                         **boolean("cancel_at_period_end")}),
)}
PAYOUT_MEMBERS = TableSpec("payout_balance_transactions", ("payout_id", "balance_transaction_id"),
                           required_text("payout_id", "balance_transaction_id", "account_id"),
                           merge_key=("payout_id",))
STRIPE_RESOURCES = ("accounts", *OBJECT_TYPES)
TABLES = (*STRIPE_RESOURCES, PAYOUT_MEMBERS.name)  # = the raw tables this source lands (besides _quarantine)


def table_spec(table: str) -> TableSpec:
    return PAYOUT_MEMBERS if table == PAYOUT_MEMBERS.name else STRIPE_TABLES[table]


@dataclass(frozen=True)
class AccountSelection:
    """`EZ360_STRIPE_ACCOUNTS`: `self` (always implied), `connected`, and/or explicit `acct_...` ids."""

    connected: bool = False
    ids: tuple[str, ...] = ()

    @classmethod
    def parse(cls, setting: str) -> AccountSelection:
        parts = [p.strip() for p in setting.split(",") if p.strip()]
        unknown = [p for p in parts if p not in ("self", "connected") and not p.startswith("acct_")]
        if unknown:
            raise ValueError(f"EZ360_STRIPE_ACCOUNTS: {', '.join(unknown)} not understood; use self, connected "
                             "or acct_... ids, comma-separated")
        return cls("connected" in parts, tuple(dict.fromkeys(p for p in parts if p.startswith("acct_"))))


@dataclass
class StripeOptions:
    api_key: str
    api_base: str | None = None
    accounts: AccountSelection = field(default_factory=AccountSelection)
    objects: Sequence[str] = OBJECT_TYPES
    repull_days: int = 90
    policy: RetryPolicy = field(default_factory=RetryPolicy)
    clock: Callable[[], float] = time.time

    def __post_init__(self) -> None:
        unknown = [o for o in self.objects if o not in OBJECT_TYPES]
        if unknown:
            raise ValueError(f"unknown Stripe object types {unknown}; choose from {', '.join(OBJECT_TYPES)}")


class StripeCursor(BasePaginator):
    """Stripe list pagination: `has_more`, then `starting_after=<last id of the page>`."""

    def __init__(self) -> None:
        super().__init__()
        self.cursor: str | None = None

    def update_state(self, response: Response, data: list[Any] | None = None) -> None:
        ids = [r["id"] for r in data or [] if isinstance(r, dict) and isinstance(r.get("id"), str)]
        self.cursor = ids[-1] if ids else None
        self._has_next_page = bool(decimal_json(response).get("has_more")) and self.cursor is not None

    def update_request(self, request: Request) -> None:
        request.params["starting_after"] = self.cursor


class StripeApi:
    def __init__(self, options: StripeOptions, stats: HttpStats) -> None:
        self.client = ApiClient("Stripe", options.api_base or DEFAULT_API_BASE, BearerTokenAuth(options.api_key),
                                options.policy, stats)

    @staticmethod
    def _headers(account: str | None) -> dict[str, str] | None:
        return {"Stripe-Account": account} if account else None

    def pages(self, path: str, params: dict[str, Any], account: str | None) -> Iterator[list[dict[str, Any]]]:
        return self.client.pages(path, {"limit": PAGE_SIZE, **params}, StripeCursor(), headers=self._headers(account))

    def get(self, path: str, account: str | None = None) -> Any:
        return self.client.get_json(path, headers=self._headers(account))


def _row_hash(row: dict[str, Any]) -> str:
    return hashlib.sha256(json.dumps(row, sort_keys=True, default=str).encode()).hexdigest()


class _Accounts:
    """The accounts to read, resolved once per source instance and lazily (building a source is offline)."""

    def __init__(self, api: StripeApi, selection: AccountSelection, run: SourceRun) -> None:
        self.api, self.selection, self.run = api, selection, run
        self._rows: list[tuple[dict[str, Any], str]] | None = None

    def rows(self) -> list[tuple[dict[str, Any], str]]:
        if self._rows is None:
            own = self.api.get("/v1/account")  # the key's own account: failing here fails the load, loudly
            found: dict[str, tuple[dict[str, Any], str]] = {own["id"]: (own, "self")}
            if self.selection.connected:
                try:
                    for page in self.api.pages("/v1/accounts", {}, None):
                        found.update({a["id"]: (a, "connected") for a in page if a.get("id") not in found})
                except SourceHttpError as exc:
                    self.run.fail("accounts:connected", f"{exc} (EZ360_STRIPE_ACCOUNTS asks for connected "
                                  "accounts; a standard account has none: use `self`)")
            for account_id in self.selection.ids:
                if account_id in found:
                    continue
                try:
                    found[account_id] = (self.api.get(f"/v1/accounts/{account_id}"), "connected")
                except SourceHttpError as exc:
                    self.run.fail(f"account:{account_id}", str(exc))
            self._rows = list(found.values())
        return self._rows

    def ids(self) -> list[tuple[str, str | None]]:
        """(account id, Stripe-Account header value) pairs: the key's own account needs no header."""
        return [(a["id"], None if role == "self" else a["id"]) for a, role in self.rows()]


@dataclass
class _AccountChanges:
    ids: dict[str, set[str]] = field(default_factory=dict)  # table -> ids to re-read
    repull_since: int | None = None  # re-list mutable types created at or after this time


class _Changes:
    """What changed per account since the last run: from the Events API, or a bounded re-pull window."""

    def __init__(self, api: StripeApi, options: StripeOptions, run: SourceRun) -> None:
        self.api, self.options, self.run = api, options, run
        self._done: dict[str, _AccountChanges] = {}

    def for_account(self, account_id: str, header: str | None) -> _AccountChanges:
        # Called before anything of the account is listed, so no change can slip between listing and cursor.
        if account_id not in self._done:
            self._done[account_id] = self._read(account_id, header)
        return self._done[account_id]

    def _read(self, account_id: str, header: str | None) -> _AccountChanges:
        state = dlt.current.source_state().setdefault("events", {})
        now = int(self.options.clock())
        previous = state.get(account_id)
        changes = _AccountChanges()
        repull = now - self.options.repull_days * DAY
        try:
            if previous is None:  # first run: start the event cursor at the newest event, re-read nothing
                newest = next(iter(self.api.pages("/v1/events", {"limit": 1}, header)), [])
                cursor = {"created": newest[0]["created"], "ids": [newest[0]["id"]]} if newest else None
            else:
                if now - previous["synced_at"] > EVENT_RETENTION_SECONDS - DAY:
                    # events between the last run and 30 days ago are gone: re-read the recent window instead
                    changes.repull_since = repull
                    self.run.note("stripe: events window exceeded, mutable objects re-pulled")
                cursor = self._events(account_id, header, previous.get("cursor"), changes)
        except SourceHttpError as exc:
            if exc.status not in (401, 403, 404):
                raise
            # a restricted key without events access: fall back to the bounded re-pull every run
            changes.repull_since = repull
            cursor = previous.get("cursor") if previous else None
            self.run.note("stripe: events unavailable, mutable objects re-pulled")
        state[account_id] = {"cursor": cursor, "synced_at": now}
        return changes

    def _events(self, account_id: str, header: str | None, cursor: dict[str, Any] | None,
                changes: _AccountChanges) -> dict[str, Any] | None:
        params = {"created[gte]": cursor["created"]} if cursor else {}
        boundary = set(cursor["ids"]) if cursor else set()
        newest = cursor
        for page in self.api.pages("/v1/events", params, header):
            for event in page:
                if cursor and event.get("created") == cursor["created"] and event.get("id") in boundary:
                    continue
                if newest is None or event["created"] > newest["created"]:
                    newest = {"created": event["created"], "ids": [event["id"]]}
                elif event["created"] == newest["created"] and event["id"] not in newest["ids"]:
                    newest = {"created": newest["created"], "ids": [*newest["ids"], event["id"]]}
                self._collect(event, changes)
        return newest

    def _collect(self, event: dict[str, Any], changes: _AccountChanges) -> None:
        obj = (event.get("data") or {}).get("object") or {}
        table = EVENT_OBJECTS.get(obj.get("object", ""))
        if table is None or not isinstance(obj.get("id"), str):
            return
        if not str(event.get("type", "")).endswith(".created"):  # creations arrive through the lists
            changes.ids.setdefault(table, set()).add(obj["id"])
        if table in ("refunds", "disputes") and isinstance(obj.get("charge"), str):
            # a refund or dispute changes its charge (amount_refunded, refunded, disputed)
            changes.ids.setdefault("charges", set()).add(obj["charge"])


class _Reader:
    """Turns Stripe records into rows (or quarantine rows) and lands payout memberships."""

    def __init__(self, api: StripeApi, landing: Landing, run: SourceRun) -> None:
        self.api, self.landing, self.run = api, landing, run

    def land(self, table: str, records: list[Any], account_id: str, header: str | None) -> Iterator[Any]:
        rows = []
        for record in records:
            if not isinstance(record, dict):
                yield self.landing.quarantine(table, record, payload_key(record), [reason(NOT_AN_OBJECT, "record")])
                continue
            problems = check(record, required=("id", "created", *REQUIRED.get(table, ())),
                             ints=("created", *MONEY.get(table, ())), currencies=("currency", "default_currency"))
            if problems:
                key = record["id"] if isinstance(record.get("id"), str) else payload_key(record)
                yield self.landing.quarantine(table, record, key, problems)
                continue
            row = {k: v for k, v in record.items() if k not in DUPLICATE_SUBLISTS.get(table, ())}
            row["account_id"] = account_id
            rows.append(row)
        if rows:
            yield self.landing.rows(table, rows)
            if table == "payouts":
                yield from self.members(rows, account_id, header)

    def members(self, payouts: list[dict[str, Any]], account_id: str, header: str | None) -> Iterator[Any]:
        for payout in payouts:
            if payout.get("automatic") is False:
                self.run.note("stripe: manual payouts (Stripe lists no balance transactions for them)")
                continue
            links = [{"payout_id": payout["id"], "balance_transaction_id": txn["id"], "account_id": account_id}
                     for page in self.api.pages("/v1/balance_transactions", {"payout": payout["id"]}, header)
                     for txn in page if isinstance(txn, dict) and isinstance(txn.get("id"), str)]
            if links:
                yield self.landing.rows(PAYOUT_MEMBERS.name, links, own_table=False)


def _object_resource(table: str, api: StripeApi, accounts: _Accounts, changes: _Changes,
                     reader: _Reader) -> DltResource:
    path = f"/v1/{table}"

    def read() -> Iterator[Any]:
        cursors = dlt.current.resource_state().setdefault("cursors", {})
        for account_id, header in accounts.ids():
            changed = changes.for_account(account_id, header)
            cursor = cursors.get(account_id)
            params = dict(EXTRA_LIST_PARAMS.get(table, {}))
            if cursor:
                params["created[gte]"] = cursor["created"]
            boundary = set(cursor["ids"]) if cursor else set()
            newest = cursor
            seen: set[str] = set()
            for page in api.pages(path, params, header):
                fresh = [r for r in page if not (cursor and isinstance(r, dict) and r.get("id") in boundary
                                                 and r.get("created") == cursor["created"])]
                for r in fresh:
                    if isinstance(r, dict) and isinstance(r.get("created"), int) and isinstance(r.get("id"), str):
                        seen.add(r["id"])
                        if newest is None or r["created"] > newest["created"]:
                            newest = {"created": r["created"], "ids": [r["id"]]}
                        elif r["created"] == newest["created"] and r["id"] not in newest["ids"]:
                            newest = {"created": r["created"], "ids": [*newest["ids"], r["id"]]}
                yield from reader.land(table, fresh, account_id, header)
            cursors[account_id] = newest
            yield from _reread(table, changed, seen, account_id, header)

    def _reread(table: str, changed: _AccountChanges, seen: set[str], account_id: str,
                header: str | None) -> Iterator[Any]:
        if changed.repull_since is not None and table in MUTABLE_TYPES:
            params = {**EXTRA_LIST_PARAMS.get(table, {}), "created[gte]": changed.repull_since}
            for page in api.pages(path, params, header):
                fresh = [r for r in page if not (isinstance(r, dict) and r.get("id") in seen)]
                seen.update(r["id"] for r in fresh if isinstance(r, dict) and isinstance(r.get("id"), str))
                yield from reader.land(table, fresh, account_id, header)
        for object_id in sorted(changed.ids.get(table, set()) - seen):
            try:
                record = api.get(f"{path}/{object_id}", header)
            except SourceHttpError as exc:
                if exc.status != 404:
                    raise
                reader.run.note(f"stripe: {table} named by an event no longer exists")
                continue
            if record.get("deleted"):
                reader.run.note(f"stripe: {table} deleted upstream (row kept as last seen)")
                continue
            yield from reader.land(table, [record], account_id, header)

    variants = (PAYOUT_MEMBERS,) if table == "payouts" else ()
    return make_resource(STRIPE_TABLES[table], read, variants)


def _accounts_resource(accounts: _Accounts, landing: Landing) -> DltResource:
    def read() -> Iterator[Any]:
        # Accounts are few and mutable, with no useful cursor: read all, land only those whose content changed.
        seen = dlt.current.resource_state().setdefault("row_hashes", {})
        rows = [{**account, "account_id": account["id"], "connection": role} for account, role in accounts.rows()]
        changed = [row for row in rows if seen.get(row["id"]) != _row_hash(row)]
        seen.update({row["id"]: _row_hash(row) for row in changed})
        if changed:
            yield landing.rows("accounts", changed)

    return make_resource(STRIPE_TABLES["accounts"], read)


@dlt.source(name="stripe")
def stripe_source(options: StripeOptions, run: SourceRun | None = None,
                  archive: ArchiveWriter | None = None) -> list[DltResource]:
    """One resource per Stripe object type (plus `accounts`); every row carries `account_id`."""
    run = run or SourceRun("stripe")
    api = StripeApi(options, run.http)
    landing = Landing(run, archive)
    accounts = _Accounts(api, options.accounts, run)
    changes = _Changes(api, options, run)
    reader = _Reader(api, landing, run)
    return [_accounts_resource(accounts, landing),
            *(_object_resource(t, api, accounts, changes, reader) for t in OBJECT_TYPES
              if t in options.objects)]
