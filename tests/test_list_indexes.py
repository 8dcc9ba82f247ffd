"""Every list of a company stays on an index at 100k rows: for each filter and each sort a company list offers
(read from the OpenAPI document, so a filter or sort added later is checked too), the statements the API sends
are EXPLAINed on PostgreSQL and none may read a company table sequentially (issue 8).

One company holds 100,000 rows in every table behind a list, written with INSERT ... SELECT generate_series
(see SEED for how and why the triggers are off while it runs), with value distributions like a real company's
(rare statuses, actions and events stay rare); the statistics are fresh (ANALYZE), as autovacuum keeps them.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import date

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import event, func, select, text

from ez360.core.settings import Settings
from operational_api.app import create_app
from operational_api.db import schema
from operational_api.db.audit_trail import Actor, set_actor
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.db.models import Account, AuditHead, User
from operational_api.security.tokens import issue_token
from operational_api.services import companies
from tests.support.postgres import temporary_database

pytestmark = pytest.mark.postgres

N = 100_000
BIG = 10_000  # a table of at least this many rows must never be read sequentially
LIST_PREFIX = "/api/v1/companies/{company_id}/"
MIDDLE = date(2023, 6, 1)  # the seeded dates run from 2020 to 2026

# Filters whose name is not a column of the listed table: how to give them a value.
RANGE_FROM = {"from", "issued_from", "since"}
RANGE_TO = {"to", "issued_to", "until"}

# Rows are written with the integrity triggers and foreign-key checks off (session_replication_role = replica):
# this test is about query plans, the rows are shaped as the services write them (statuses, amounts, dates), and
# the triggers would triple the seeding time; the triggers themselves are proven by the integrity tests.
SEED = """
SET LOCAL session_replication_role = replica;

INSERT INTO users (email, full_name, password_hash, email_verified_at, is_active, created_at, updated_at)
SELECT 'member' || g || '@big.example.com', 'Member ' || g, 'x', now(), true, now(), now()
FROM generate_series(1, :n) g;

INSERT INTO memberships (company_id, user_id, role, created_at, updated_at)
SELECT :c, u.id, (ARRAY['admin','finance','staff','viewer','staff'])[1 + u.id % 5],
       timestamptz '2020-01-01' + u.id * interval '25 minutes', now()
FROM users u WHERE u.email LIKE 'member%@big.example.com';

INSERT INTO accounts (company_id, code, name, type)
SELECT :c, 'X' || lpad(g::text, 6, '0'), 'Account ' || (g * 7919 % :n),
       (ARRAY['asset','liability','equity','income','expense'])[1 + g % 5]
FROM generate_series(1, :n) g;

INSERT INTO clients (company_id, name, email, currency, deleted_at, created_at, updated_at)
SELECT :c, 'Client ' || (g * 7919 % :n), 'c' || g || '@example.org',
       (ARRAY['USD','USD','USD','EUR','GBP','USD','JPY','USD'])[1 + g % 8],
       CASE WHEN g % 50 = 0 THEN timestamptz '2025-01-01' END,
       timestamptz '2020-01-01' + g * interval '30 minutes', timestamptz '2020-01-01' + g * interval '31 minutes'
FROM generate_series(1, :n) g;

INSERT INTO projects (company_id, client_id, name, status, currency, budget_minor, hourly_rate_minor, deleted_at,
                      created_at, updated_at)
SELECT :c, c.id, 'Project ' || (c.id * 31 % :n), (ARRAY['active','on_hold','completed','cancelled'])[1 + c.id % 4],
       c.currency, (c.id * 7919 % 1000) * 10000, 15000, CASE WHEN c.id % 60 = 0 THEN timestamptz '2025-02-01' END,
       c.created_at, c.updated_at
FROM clients c WHERE c.company_id = :c;

INSERT INTO time_entries (company_id, project_id, user_id, work_date, hours, billable, currency, rate_minor,
                          cost_rate_minor, description, deleted_at, created_at, updated_at)
SELECT :c, p.id, :member + p.id % 500, date '2020-01-01' + (p.id * 7 % 2400), 1 + p.id % 8, p.id % 3 > 0,
       p.currency, 15000, 6500, 'Work', CASE WHEN p.id % 70 = 0 THEN timestamptz '2025-03-01' END,
       p.created_at, p.updated_at
FROM projects p WHERE p.company_id = :c;

INSERT INTO expenses (company_id, project_id, category, vendor, currency, amount_minor, incurred_on, billable,
                      deleted_at, created_at, updated_at)
SELECT :c, CASE WHEN p.id % 2 = 0 THEN p.id END,
       (ARRAY['software','travel','office','contractors','other'])[1 + p.id % 5], 'Vendor ' || p.id % 300,
       p.currency, 1000 + p.id * 7919 % 500000, date '2020-01-01' + (p.id * 13 % 2400), p.id % 4 = 0,
       CASE WHEN p.id % 80 = 0 THEN timestamptz '2025-04-01' END, p.created_at, p.updated_at
FROM projects p WHERE p.company_id = :c;

-- a tenth drafts (a third of them deleted); of the sent ones 7 in 10 paid, 1 half paid, 1 credited in full (void)
INSERT INTO invoices (company_id, client_id, project_id, number, status, currency, issue_date, due_date,
                      subtotal_minor, tax_minor, total_minor, amount_paid_minor, credited_minor, sent_at, notes,
                      deleted_at, created_at, updated_at)
SELECT :c, p.client_id, p.id, CASE WHEN k > 0 THEN 'BIG-' || p.id END,
       (ARRAY['draft','sent','partially_paid','void','paid','paid','paid','paid','paid','paid','paid'])[1 + k],
       p.currency, CASE WHEN k > 0 THEN date '2020-01-01' + (p.id * 2400 / :n) END,
       CASE WHEN k > 0 THEN date '2020-01-31' + (p.id * 2400 / :n) END, total, 0, total,
       CASE WHEN k = 2 THEN total / 2 WHEN k > 3 THEN total ELSE 0 END, CASE WHEN k = 3 THEN total ELSE 0 END,
       CASE WHEN k > 0 THEN p.created_at END, '', CASE WHEN k = 0 AND p.id % 3 = 0 THEN timestamptz '2025-05-01' END,
       p.created_at, p.updated_at
FROM (SELECT *, id % 10 AS k, 10000 + id % 900 * 100 AS total FROM projects WHERE company_id = :c) p;

INSERT INTO payments (company_id, client_id, method, currency, amount_minor, received_on, reference,
                      stripe_charge_id, created_at, updated_at)
SELECT :c, i.client_id, (ARRAY['bank','bank','card','cash','stripe'])[1 + i.id % 5], i.currency,
       i.amount_paid_minor, i.issue_date + 20, 'REF-' || i.id, CASE WHEN i.id % 5 = 4 THEN 'ch_' || i.id END,
       i.created_at + interval '20 days', i.updated_at
FROM invoices i WHERE i.company_id = :c AND i.amount_paid_minor > 0;
INSERT INTO payments (company_id, client_id, method, currency, amount_minor, received_on, reference, created_at,
                      updated_at)
SELECT :c, c.id, 'bank', c.currency, 5000, date '2020-01-01' + (c.id % 2400), 'ADV-' || c.id, c.created_at,
       c.updated_at
FROM clients c WHERE c.company_id = :c
LIMIT :n - (SELECT count(*) FROM payments WHERE company_id = :c);
INSERT INTO payment_allocations (company_id, payment_id, invoice_id, amount_minor, created_at)
SELECT :c, p.id, substr(p.reference, 5)::int, p.amount_minor, p.created_at
FROM payments p WHERE p.company_id = :c AND p.reference LIKE 'REF-%';

INSERT INTO credit_notes (company_id, invoice_id, client_id, number, currency, issue_date, reason, net_minor,
                          tax_minor, total_minor, created_at)
SELECT :c, i.id, i.client_id, 'CN-' || i.id, i.currency, coalesce(i.issue_date, date '2024-01-01') + 3, '',
       100, 0, 100, i.created_at + interval '3 days'
FROM invoices i WHERE i.company_id = :c;

INSERT INTO refunds (company_id, payment_id, currency, amount_minor, refunded_on, reason, created_at)
SELECT :c, p.id, p.currency, 1, p.received_on + (g % 30), '', p.created_at + g * interval '1 hour'
FROM (SELECT * FROM payments WHERE company_id = :c ORDER BY id LIMIT 1000) p, generate_series(1, :n / 1000) g;

INSERT INTO journal_entries (company_id, entry_date, memo, currency, status, source_type, source_id, posted_at,
                             created_at, updated_at)
SELECT :c, date '2020-01-01' + (g * 2400 / :n), 'Entry ' || g, (ARRAY['USD','USD','EUR','GBP'])[1 + g % 4],
       CASE WHEN g % 3 > 0 THEN 'posted' ELSE 'draft' END, (ARRAY['invoice','payment','expense','manual'])[1 + g % 4],
       g, CASE WHEN g % 3 > 0 THEN timestamptz '2020-01-01' + g * interval '30 minutes' END,
       timestamptz '2020-01-01' + g * interval '30 minutes', timestamptz '2020-01-01' + g * interval '30 minutes'
FROM generate_series(1, :n) g;
INSERT INTO journal_lines (company_id, journal_entry_id, account_id, debit_minor, credit_minor)
SELECT :c, e.id, :account, CASE WHEN s = 1 THEN 500 ELSE 0 END, CASE WHEN s = 2 THEN 500 ELSE 0 END
FROM journal_entries e, generate_series(1, 2) s WHERE e.company_id = :c;

INSERT INTO closed_periods (company_id, period, closed_at)
SELECT :c, to_char(date '0001-01-01' + g * interval '1 month', 'YYYY-MM'),
       timestamptz '2020-01-01' + g * interval '10 minutes'
FROM generate_series(0, :n - 1) g;

INSERT INTO api_tokens (company_id, user_id, role, name, token_hash, display_prefix, created_at, expires_at)
SELECT :c, :owner, 'viewer', 'Token ' || g, md5(g::text) || md5((g + 1)::text), 'ez360_' || g % 1000,
       timestamptz '2020-01-01' + g * interval '20 minutes', timestamptz '2021-01-01' + g * interval '25 minutes'
FROM generate_series(1, :n) g;

INSERT INTO audit_log (company_id, seq, occurred_at, actor_user_id, actor, request_id, action, entity_type,
                       entity_id, before, after, prev_hash, hash)
SELECT :c, :seq + g, timestamptz '2020-01-01' + g * interval '25 minutes', CASE WHEN g % 7 > 0 THEN :owner END,
       'user:' || :owner, 'req-' || g / 4,
       CASE WHEN g % 1000 < 3 THEN 'restore' WHEN g % 1000 < 10 THEN 'delete' WHEN g % 1000 < 150 THEN 'transition'
            WHEN g % 1000 < 400 THEN 'update' ELSE 'create' END,
       (ARRAY['invoice','payment','client','journal_entry','expense','project','invoice_line'])[1 + g % 7],
       g / 7, NULL, '{}', md5(g::text) || md5(g::text), md5((g + 1)::text) || md5((g + 1)::text)
FROM generate_series(1, :n) g;

INSERT INTO invitations (company_id, email, role, token_hash, status, invited_by_user_id, created_at, expires_at,
                         responded_at)
SELECT :c, 'invitee' || g || '@example.org', 'staff', md5('i' || g) || md5('j' || g),
       CASE WHEN g % 50 = 0 THEN 'pending' WHEN g % 7 = 0 THEN 'declined' ELSE 'accepted' END, :owner,
       now() - (:n - g) * interval '5 minutes', now() + interval '7 days' - (:n - g) * interval '5 minutes',
       CASE WHEN g % 50 > 0 THEN now() END
FROM generate_series(1, :n) g;

INSERT INTO usage_events (company_id, user_id, event_name, occurred_at, properties)
SELECT :c, m.user_id, (ARRAY['login','invoice_sent','payment_recorded','time_logged','report_viewed',
       'client_created','expense_recorded'])[1 + m.id % 7], m.created_at, '{}'
FROM memberships m WHERE m.company_id = :c LIMIT :n;

INSERT INTO reconciliation_resolutions (company_id, pair, item_key, action, linked_key, note, user_id, created_at)
SELECT :c, (ARRAY['ops_payment~stripe_charge','stripe_balance_transaction~stripe_payout',
       'stripe_payout~erp_bank_transaction','stripe_charge~erp_payment_entry',
       'ops_invoice~erp_sales_invoice'])[1 + g % 5],
       'item-' || (g * 7919 % :n),
       (ARRAY['resolved','accepted_difference','written_off','linked','reopened'])[1 + g % 5],
       NULL, 'reviewed', :owner, timestamptz '2024-01-01' + g * interval '7 minutes'
FROM generate_series(1, :n) g;
"""


@dataclass(frozen=True)
class World:
    url: str
    company_id: int
    client: TestClient
    headers: dict[str, str]
    engine: object


@pytest.fixture(scope="module")
def world():
    with temporary_database() as url:
        schema.upgrade(url)
        engine = make_engine(url)
        with make_sessionmaker(engine)() as s, s.begin():
            set_actor(s, Actor(None, "system:test"))
            company = companies.create_company(s, slug="big", name="Big Ltd", base_currency="USD",
                                               invoice_prefix="BIG", plan="business")
            owner = companies.create_user(s, email="owner@big.example.com", full_name="Owner", password_hash="x")
            companies.add_member(s, company, owner, "owner")
            _, token = issue_token(s, company, owner, "owner", "list-indexes")
            company_id, owner_id = company.id, owner.id
            account = s.scalar(select(Account.id).where(Account.company_id == company_id).limit(1))
            member = s.scalar(select(func.max(User.id))) + 1  # the first of the users the seed adds
        with make_sessionmaker(engine)() as s:  # the audit chain is sealed at COMMIT: its head after the block
            seq = s.scalar(select(AuditHead.last_seq).where(AuditHead.company_id == company_id)) or 0
        values = {"c": company_id, "n": N, "owner": owner_id, "seq": seq, "account": account, "member": member}
        with engine.begin() as conn:
            # the plain indexes are dropped for the bulk load and rebuilt from their own definitions afterwards
            # (one sort per index instead of 100k insertions into each of ~70 indexes)
            indexes = conn.execute(text("SELECT indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' "
                                        "AND indexdef NOT LIKE 'CREATE UNIQUE%'")).all()
            for name, _ in indexes:
                conn.execute(text(f'DROP INDEX "{name}"'))
            for statement in filter(str.strip, SEED.split(";\n")):
                conn.execute(text(statement), values)
            for _, definition in indexes:
                conn.execute(text(definition))
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("ANALYZE"))
        app = create_app(Settings(_env_file=None, database_url=url))
        with TestClient(app) as client:
            yield World(url, company_id, client, {"Authorization": f"Bearer {token}"}, app.state.engine)
        app.state.engine.dispose()
        engine.dispose()


@dataclass(frozen=True)
class ListRoute:
    path: str
    sorts: list[str]
    default_sort: str
    filters: dict[str, dict]  # query parameter -> its OpenAPI schema
    path_params: list[str]


def company_lists(app) -> list[ListRoute]:
    """Every cursor-paged GET under a company, with its sorts and filters, from the OpenAPI document."""
    routes = []
    for path, methods in app.openapi()["paths"].items():
        get = methods.get("get")
        if not get or not path.startswith(LIST_PREFIX):
            continue
        ref = get["responses"]["200"]["content"]["application/json"]["schema"].get("$ref", "")
        if not ref.rsplit("/", 1)[-1].startswith("Page_"):
            continue
        params = {p["name"]: p for p in get.get("parameters", [])}
        sort = params.pop("sort")["schema"]
        sorts = re.fullmatch(r"\^-\?\((.*)\)\$", sort["pattern"]).group(1).split("|")
        for name in ("limit", "cursor"):
            params.pop(name)
        path_params = [n for n, p in params.items() if p["in"] == "path" and n != "company_id"]
        filters = {n: _schema(p["schema"]) for n, p in params.items() if p["in"] == "query"}
        routes.append(ListRoute(path, sorts, sort["default"], filters, path_params))
    return routes


def _schema(schema: dict) -> dict:
    """The non-null alternative of an optional parameter's schema."""
    for option in schema.get("anyOf", [schema]):
        if option.get("type") != "null":
            return {**option, "default": schema.get("default")}
    return schema


class Statements:
    """The statements the API sent to PostgreSQL for one request."""

    def __init__(self, engine):
        self.engine, self.sent = engine, []

    def __enter__(self):
        event.listen(self.engine, "before_cursor_execute", self._record)
        return self.sent

    def __exit__(self, *exc):
        event.remove(self.engine, "before_cursor_execute", self._record)

    def _record(self, conn, cursor, statement, parameters, context, executemany):
        if statement.lstrip().upper().startswith("SELECT"):
            self.sent.append(cursor.mogrify(statement, parameters).decode())


def listed_table(statements: list[str]) -> str:
    page = [s for s in statements if re.search(r"\bLIMIT\b", s) and "ORDER BY" in s]
    assert page, f"no paged SELECT among {statements}"
    return re.search(r"\bFROM (\w+)", page[-1]).group(1)


def sequential_scans(world: World, statement: str, sizes: dict[str, int]) -> list[str]:
    with world.engine.connect() as conn:
        plan = conn.exec_driver_sql("EXPLAIN (FORMAT JSON) " + statement.replace("%", "%%")).scalar()
    plan = plan if isinstance(plan, list) else json.loads(plan)
    found, stack = [], [plan[0]["Plan"]]
    while stack:
        node = stack.pop()
        if node["Node Type"] == "Seq Scan" and sizes.get(node["Relation Name"], 0) >= BIG:
            found.append(node["Relation Name"])
        stack.extend(node.get("Plans", []))
    return found


def filter_values(world: World, route: ListRoute, table: str, name: str, schema: dict) -> list[object]:
    """Values a user would filter by: taken from the data when the filter names a column of the table."""
    if "enum" in schema:
        return list(schema["enum"])
    kind = schema.get("type")
    if kind == "boolean":
        return [True, False]
    if name in RANGE_FROM or name in RANGE_TO:
        return [MIDDLE.isoformat() + ("T00:00:00Z" if schema.get("format") == "date-time" else "")]
    if name == "q":
        return ["Client 12"]
    with world.engine.connect() as conn:
        columns = {r[0] for r in conn.execute(text("SELECT column_name FROM information_schema.columns "
                                                   "WHERE table_name = :t"), {"t": table})}
        assert name in columns, (f"{route.path}: filter {name!r} is no column of {table}; teach this test how to "
                                 "give it a value")
        value = conn.execute(text(f"SELECT {name} FROM {table} WHERE company_id = :c AND {name} IS NOT NULL "
                                  f"ORDER BY id OFFSET 777 LIMIT 1"), {"c": world.company_id}).scalar()
    assert value is not None, f"{table}.{name} has no value to filter by"
    return [value]


def path_value(world: World, name: str) -> int:
    """The first parent row (e.g. the payment whose refunds are listed; the seed gives it 100)."""
    with world.engine.connect() as conn:
        return conn.execute(text(f"SELECT id FROM {name.removesuffix('_id')}s WHERE company_id = :c ORDER BY id "
                                 "LIMIT 1"), {"c": world.company_id}).scalar()


def test_every_company_list_filter_and_sort_reads_through_an_index_at_100k_rows(world):
    with world.engine.connect() as conn:
        sizes = dict(conn.execute(text("SELECT relname, n_live_tup FROM pg_stat_user_tables")).all())
    routes = company_lists(world.client.app)
    assert len(routes) >= 15, [r.path for r in routes]
    failures, explained, checked_tables = [], set(), set()

    def check(route: ListRoute, url: str, params: dict) -> dict:
        with Statements(world.engine) as sent:
            answer = world.client.get(url, params=params, headers=world.headers)
        assert answer.status_code == 200, (url, params, answer.text)
        for statement in sent:
            if statement in explained:
                continue
            explained.add(statement)
            for table in sequential_scans(world, statement, sizes):
                failures.append(f"{route.path} {params}: Seq Scan on {table}\n    {statement}")
        checked_tables.add(listed_table(sent))
        return answer.json()

    for route in routes:
        url = route.path.replace("{company_id}", str(world.company_id))
        for name in route.path_params:
            url = url.replace("{" + name + "}", str(path_value(world, name)))
        with Statements(world.engine) as sent:
            world.client.get(url, headers=world.headers)
        table = listed_table(sent)
        assert sizes.get(table, 0) >= N * 0.9 or route.path_params, f"{route.path}: {table} was not seeded at 100k"
        values = {name: filter_values(world, route, table, name, schema) for name, schema in route.filters.items()}
        for sort in route.sorts:
            for order in (sort, "-" + sort):
                page = check(route, url, {"sort": order, "limit": 50})
                if page["next_cursor"]:  # the second page: the keyset condition must stay on the index
                    check(route, url, {"sort": order, "limit": 50, "cursor": page["next_cursor"]})
        for name, options in values.items():  # every value of every filter under the default sort
            for value in options:
                check(route, url, {"sort": route.default_sort, name: value, "limit": 50})
    assert not failures, f"{len(failures)} list queries read a table sequentially:\n" + "\n".join(failures)
    assert {"invoices", "payments", "clients", "journal_entries", "audit_log"} <= checked_tables
