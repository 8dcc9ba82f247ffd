"""Tenant isolation matrix over every company route the app has, discovered from the app (so routes that other
features add later are covered too): a user of company A gets 404 on company B, for every verb; a member of B
whose role lacks the route's permission gets 403; B's objects addressed through A's URL answer exactly like
objects that do not exist; and a company route that declares no permission fails this test.

The matrix runs on SQLite and on PostgreSQL, each on one world seeded once for the module; every seed step must
succeed (a record kind that silently failed to seed would leave its routes' cross-company check untested)."""

from __future__ import annotations

import re
from datetime import date
from decimal import Decimal

import pytest
from fastapi import APIRouter, Depends, FastAPI
from sqlalchemy import Integer, select

from operational_api.api.context import company_principal, require
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.db.models import Base, Company, User
from operational_api.permissions import PERMISSIONS
from operational_api.security.tokens import issue_token
from operational_api.services.companies import ROLES
from tests.support.postgres import temporary_database
from tests.support.routes import company_endpoints
from tests.support.security_world import build_world

MISSING = 10**6  # an id no table holds


def undeclared(app) -> list[str]:
    """Company routes whose dependency tree declares no permission from the matrix."""
    bad = []
    for e in company_endpoints(app):
        declared = e.permissions()
        if not declared or not all(p in PERMISSIONS for p in declared) or not e.depends_on(company_principal):
            bad.append(f"{e.method} {e.path}")
    return bad


def _seed_objects(world, company_id: int) -> list[str]:
    """One of each kind of record in company B, through the service layer, each step in its own transaction;
    returns the names of the steps done (all of them, or the step that failed raises)."""
    from operational_api.services import invitations, invoicing, ledger, payments, records
    engine = make_engine(world.url)
    sm = make_sessionmaker(engine)
    steps = []

    def step(fn):
        steps.append(fn)
        return fn

    state = {}

    @step
    def client(db, c):
        state["client"] = records.create_client(db, c, name="B client", email="ap@b.test")

    @step
    def project(db, c):
        state["project"] = records.create_project(db, c, state["client"], name="B project", hourly_rate_minor=100)

    @step
    def time_entry(db, c):
        user = db.scalar(select(User).where(User.email == "staff@globex.test"))
        records.log_time(db, c, state["project"], user, work_date=date(2026, 3, 2), hours=Decimal("1.5"),
                         cost_rate_minor=50)

    @step
    def expense(db, c):
        category = next(iter(records.EXPENSE_ACCOUNTS))
        records.record_expense(db, c, category=category, amount_minor=1000, incurred_on=date(2026, 3, 2))

    @step
    def invoice(db, c):
        inv = invoicing.create_invoice(db, c, state["client"], [invoicing.LineInput("work", Decimal(1), 5000)])
        invoicing.send_invoice(db, c, inv, date(2026, 3, 3))
        state["invoice"] = inv

    @step
    def credit_note(db, c):
        invoicing.issue_credit_note(db, c, state["invoice"], issue_date=date(2026, 3, 4), amount_minor=100,
                                    reason="test")

    @step
    def payment(db, c):
        state["payment"] = payments.record_payment(db, c, state["client"], method="bank", currency=c.base_currency,
                                                   amount_minor=700, received_on=date(2026, 3, 5), allocations=[])

    @step
    def refund(db, c):
        payments.record_refund(db, c, state["payment"], amount_minor=100, refunded_on=date(2026, 3, 6))

    @step
    def journal_entry(db, c):
        ledger.draft_entry(db, c, date(2026, 3, 7), "B draft", c.base_currency,
                           [ledger.Leg(ledger.BANK, debit_minor=10), ledger.Leg(ledger.REVENUE, credit_minor=10)])

    @step
    def closed_period(db, c):
        ledger.close_period(db, c, "2026-01")

    @step
    def token(db, c):
        owner = db.scalar(select(User).where(User.email == "owner@globex.test"))
        issue_token(db, c, owner, "viewer", "B token")

    @step
    def invitation(db, c):
        owner = db.scalar(select(User).where(User.email == "owner@globex.test"))
        invitations.invite(db, world.settings, c, owner, email="newcomer@b.test", role="staff", inviter_role="owner")

    done = []
    for fn in steps:
        with sm() as db, db.begin():
            company = db.get(Company, company_id)
            for key, row in list(state.items()):
                state[key] = db.merge(row)
            fn(db, company)
        done.append(fn.__name__)
    engine.dispose()
    return done


def _ids_by_table(url: str, company_id: int) -> dict[str, list[int]]:
    """For every company-scoped table: ids of company B's rows that company A does not also use."""
    engine = make_engine(url)
    found = {}
    with make_sessionmaker(engine)() as db:
        for mapper in Base.registry.mappers:
            table = mapper.local_table
            cols = table.columns
            if "company_id" not in cols or "id" not in cols or not isinstance(cols["id"].type, Integer):
                continue
            ids = db.scalars(select(cols["id"]).where(cols["company_id"] == company_id).limit(50)).all()
            others = set(db.scalars(select(cols["id"]).where(cols["company_id"] != company_id)).all())
            mine = [i for i in ids if i not in others]
            if mine:
                found[table.name] = mine[:1]
    engine.dispose()
    return found


def _tables_for(path: str, param: str, tables: set[str]) -> list[str]:
    """Which tables a path parameter may name: by the path segment before it (`/time-entries/{entry_id}`
    -> time_entries; `/ledger/entries/{entry_id}` -> journal_entries and time_entries, both tried)."""
    if not param.endswith("_id"):
        return []  # e.g. {period}: a value, not a row id
    before = path.split("{" + param)[0].rstrip("/").rsplit("/", 1)[-1].replace("-", "_")
    base = param.removesuffix("_id")
    hits = [t for t in tables if t == before or t.endswith("_" + before) or t.startswith(before.rstrip("s"))]
    return hits or [t for t in tables if t.rstrip("s").endswith(base)]


def _example(schema: dict, spec: dict, depth: int = 0):
    """A minimal JSON value that satisfies `schema` (for request bodies of routes this test did not write)."""
    if "$ref" in schema:
        name = schema["$ref"].rsplit("/", 1)[-1]
        return _example(spec["components"]["schemas"][name], spec, depth + 1)
    for key in ("anyOf", "oneOf", "allOf"):
        if key in schema:
            options = [s for s in schema[key] if s.get("type") != "null"] or schema[key]
            return _example(options[0], spec, depth + 1)
    if "enum" in schema:
        return schema["enum"][0]
    if "default" in schema:
        return schema["default"]
    kind, fmt = schema.get("type"), schema.get("format", "")
    if kind == "object" or "properties" in schema:
        required = schema.get("required", [])
        return {k: _example(v, spec, depth + 1) for k, v in schema.get("properties", {}).items() if k in required}
    if kind == "array":
        return [_example(schema["items"], spec, depth + 1)] if schema.get("minItems") and depth < 6 else []
    if kind == "integer":
        return max(1, schema.get("minimum", 1))
    if kind == "number":
        return "1" if "pattern" in schema else 1
    if kind == "boolean":
        return False
    if fmt == "date":
        return "2026-03-10"
    if fmt == "date-time":
        return "2026-03-10T10:00:00Z"
    if fmt == "email":
        return "x@example.test"
    if "pattern" in schema and re.fullmatch(schema["pattern"], "USD"):
        return "USD"
    return "x" * max(1, schema.get("minLength", 1))


def _body(app, endpoint) -> dict | None:
    if endpoint.method in ("GET", "DELETE"):
        return None
    spec = app.openapi()
    operation = spec["paths"].get(endpoint.path, {}).get(endpoint.method.lower(), {})
    schema = operation.get("requestBody", {}).get("content", {}).get("application/json", {}).get("schema")
    return _example(schema, spec) if schema else {}


def _matrix(url: str):
    world = build_world(url)
    seeded = _seed_objects(world, world.companies["globex"])
    assert len(seeded) == 12, seeded
    b_objects = _ids_by_table(url, world.companies["globex"])
    browsers = {}
    for company, role in [("acme", "owner"), *[("globex", r) for r in ROLES]]:
        browser = world.client()
        assert browser.login(world.email(company, role)).status_code == 200
        browsers[f"{company}:{role}"] = browser
    return world, browsers, b_objects


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def matrix(request, tmp_path_factory):
    """One seeded world per engine, shared by the module's tests."""
    if request.param == "sqlite":
        yield _matrix(f"sqlite:///{tmp_path_factory.mktemp('iso') / 'ops.sqlite3'}")
        return
    with temporary_database() as url:
        world, browsers, b_objects = _matrix(url)
        yield world, browsers, b_objects
        for browser in browsers.values():  # release the apps' connections before the database is dropped
            browser.http.app.state.engine.dispose()


def test_every_company_route_declares_a_permission_from_the_matrix(matrix):
    world, browsers, _ = matrix
    app = browsers["acme:owner"].http.app
    assert len(company_endpoints(app)) >= 5  # the discovery really sees the included routers
    assert undeclared(app) == []


def test_a_route_without_a_declared_permission_is_caught():
    router = APIRouter()

    @router.get("/api/v1/companies/{company_id}/leaky")
    def leaky(company_id: int):
        return {}

    @router.get("/api/v1/companies/{company_id}/fine")
    def fine(principal=Depends(require("company:read"))):
        return {}

    app = FastAPI()
    app.include_router(router)
    assert undeclared(app) == ["GET /api/v1/companies/{company_id}/leaky"]


def _params(endpoint, company_id, objects=None):
    values = {"company_id": company_id}
    for p in endpoint.params:
        if p != "company_id":
            values[p] = objects.get(p, MISSING) if objects else (MISSING if p.endswith("_id") else "2026-01")
    return values


def test_a_user_of_company_a_gets_404_on_company_b_for_every_route_and_verb(matrix):
    world, browsers, b_objects = matrix
    outsider = browsers["acme:owner"]
    token = None
    engine = make_engine(world.url)
    with make_sessionmaker(engine)() as db, db.begin():
        token = issue_token(db, db.get(Company, world.companies["acme"]), db.get(User, world.users["acme:owner"]),
                            "owner", "matrix")[1]
    engine.dispose()
    app = outsider.http.app
    tables = set(b_objects)
    failures = []
    for e in company_endpoints(app):
        objects = {p: b_objects[t][0] for p in e.params for t in _tables_for(e.path, p, tables)[:1]}
        url = e.url(**_params(e, world.companies["globex"], objects))
        body = _body(app, e)
        for via, response in (("session", outsider.request(e.method, url, json=body)),
                              ("token", outsider.http.request(e.method, url, json=body,
                                                              headers={"Authorization": f"Bearer {token}"}))):
            if response.status_code != 404:
                failures.append(f"{via} {e.method} {url}: {response.status_code}")
    assert failures == []


def test_a_member_without_the_routes_permission_gets_403_for_every_route_and_verb(matrix):
    world, browsers, _ = matrix
    app = browsers["acme:owner"].http.app
    failures, checked = [], 0
    for e in company_endpoints(app):
        permissions = set(e.permissions())
        lacking = [r for r in ROLES if not all(r in PERMISSIONS[p] for p in permissions)]
        for role in lacking:
            response = browsers[f"globex:{role}"].request(e.method, e.url(**_params(e, world.companies["globex"])),
                                                          json=_body(app, e))
            checked += 1
            if response.status_code != 403:
                failures.append(f"{role} {e.method} {e.path}: {response.status_code}")
    assert failures == [] and checked > 0


def test_company_bs_objects_through_company_as_urls_answer_like_missing_ones(matrix):
    world, browsers, b_objects = matrix
    owner = browsers["acme:owner"]
    app = owner.http.app
    tables = set(b_objects)
    failures, checked = [], 0
    for e in company_endpoints(app):
        id_params = [p for p in e.params if p != "company_id"]
        for p in id_params:
            for table in _tables_for(e.path, p, tables):
                values = _params(e, world.companies["acme"])
                values[p] = b_objects[table][0]
                body = _body(app, e)
                theirs = owner.request(e.method, e.url(**values), json=body)
                values[p] = MISSING
                missing = owner.request(e.method, e.url(**values), json=body)
                checked += 1
                strict = e.method in ("GET", "DELETE")
                if theirs.status_code != missing.status_code or (strict and theirs.status_code != 404) \
                        or theirs.status_code not in (404, 422):
                    failures.append(f"{e.method} {e.path} with {table} {b_objects[table][0]}: "
                                    f"{theirs.status_code} (missing id: {missing.status_code})")
    assert failures == [] and checked > 0


def test_b_has_objects_for_the_cross_object_check(matrix):
    _, _, b_objects = matrix
    assert {"clients", "projects", "time_entries", "expenses", "invoices", "credit_notes", "payments", "refunds",
            "journal_entries", "api_tokens", "memberships", "invitations"} <= set(b_objects), sorted(b_objects)


