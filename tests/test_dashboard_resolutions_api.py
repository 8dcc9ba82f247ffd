"""The reconciliation resolutions API the finance workbench writes through: append-only, audited, `reconcile`
only (finance, admin, owner), tenant-scoped, validated; on SQLite and PostgreSQL."""

from __future__ import annotations

import pytest

from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.services import reconciliation
from tests.support.security_world import build_world

PAIR = "ops_payment~stripe_charge"
ITEM = "ops_payment~stripe_charge:p1"


def _url(world, slug: str = "acme") -> str:
    return f"/api/v1/companies/{world.companies[slug]}/reconciliation/resolutions"


@pytest.fixture
def world(ops_db):
    """On SQLite and PostgreSQL (the main flow only: the rest is engine-independent route logic)."""
    return build_world(ops_db)  # owners and admins have 2FA on (their role requires it)


@pytest.fixture(scope="module")
def sqlite_world(tmp_path_factory):
    """One world for the route-logic tests (each uses its own item key)."""
    return build_world(f"sqlite:///{tmp_path_factory.mktemp('resolutions') / 'ops.sqlite3'}")


def test_finance_records_decisions_that_are_audited_listed_newest_first_and_reopenable(world):
    finance = world.client()
    assert finance.login(world.email("acme", "finance")).status_code == 200
    first = finance.post(_url(world), json={"pair": PAIR, "item_key": ITEM, "action": "linked",
                                            "linked_key": "ch_9", "note": "same customer, charged twice"})
    assert first.status_code == 201, first.text
    assert first.json()["user_id"] == world.users["acme:finance"] and first.json()["linked_key"] == "ch_9"
    second = finance.post(_url(world), json={"pair": PAIR, "item_key": ITEM, "action": "reopened",
                                             "note": "wrong charge picked"})
    assert second.status_code == 201

    listed = finance.get(_url(world)).json()["items"]
    assert [(r["action"], r["id"]) for r in listed] == [("reopened", second.json()["id"]),
                                                        ("linked", first.json()["id"])]
    audit = finance.get(f"/api/v1/companies/{world.companies['acme']}/audit-log",
                        params={"entity_type": "reconciliation_resolution"}).json()["items"]
    assert {(a["entity_id"], a["action"], a["actor_user_id"]) for a in audit} == {
        (first.json()["id"], "create", world.users["acme:finance"]),
        (second.json()["id"], "create", world.users["acme:finance"])}
    assert next(a for a in audit if a["entity_id"] == first.json()["id"])["after"]["note"] == \
        "same customer, charged twice"
    with make_sessionmaker(make_engine(world.url))() as db:
        assert reconciliation.latest(db, world.companies["acme"], PAIR, ITEM) is None  # reopened: no decision


def test_only_finance_admins_and_owners_of_the_company_may_decide(sqlite_world):
    world = sqlite_world
    body = {"pair": PAIR, "item_key": f"{ITEM}-roles", "action": "resolved", "note": "explained"}
    for role, status in (("staff", 403), ("viewer", 403), ("admin", 201), ("owner", 201)):
        client = world.client()
        client.login(world.email("acme", role))
        assert client.post(_url(world), json=body).status_code == status, role
        assert client.get(_url(world)).status_code == (200 if status == 201 else 403), role
    other = world.client()
    other.login(world.email("globex", "finance"))
    assert other.post(_url(world, "acme"), json=body).status_code == 404
    assert other.get(_url(world, "acme")).status_code == 404
    assert other.get(_url(world, "globex"), params={"item_key": f"{ITEM}-roles"}).json()["items"] == []


def test_a_decision_needs_a_note_a_known_pair_and_action_and_a_candidate_when_linking(sqlite_world):
    world = sqlite_world
    finance = world.client()
    finance.login(world.email("acme", "finance"))
    bad = [{"pair": PAIR, "item_key": f"{ITEM}-checks", "action": "resolved", "note": "  "},
           {"pair": "nonsense~pair", "item_key": f"{ITEM}-checks", "action": "resolved", "note": "x"},
           {"pair": PAIR, "item_key": f"{ITEM}-checks", "action": "deleted", "note": "x"},
           {"pair": PAIR, "item_key": f"{ITEM}-checks", "action": "linked", "note": "x"},
           {"pair": PAIR, "item_key": f"{ITEM}-checks", "action": "resolved", "note": "x" * 2001}]
    for body in bad:
        assert finance.post(_url(world), json=body).status_code == 422, body
    reopen = finance.post(_url(world), json={"pair": PAIR, "item_key": f"{ITEM}-checks", "action": "reopened",
                                             "note": "x"})
    assert reopen.status_code == 409 and "no decision to reopen" in reopen.json()["detail"]
    no_csrf = world.client()
    no_csrf.login(world.email("acme", "finance"))
    no_csrf.csrf = None
    assert no_csrf.post(_url(world), json={"pair": PAIR, "item_key": f"{ITEM}-checks", "action": "resolved",
                                           "note": "x"}).status_code == 403
    assert finance.get(_url(world), params={"item_key": f"{ITEM}-checks"}).json()["items"] == []  # none written


def test_decisions_are_never_changed_or_deleted_through_the_api(sqlite_world):
    world = sqlite_world
    finance = world.client()
    finance.login(world.email("acme", "finance"))
    row = finance.post(_url(world), json={"pair": PAIR, "item_key": f"{ITEM}-append", "action": "written_off",
                                          "note": "0.35 USD fee"}).json()
    for method in ("PUT", "PATCH", "DELETE"):
        assert finance.request(method, f"{_url(world)}/{row['id']}", json={}).status_code in (404, 405)
        assert finance.request(method, _url(world), json={}).status_code == 405
    listed = finance.get(_url(world), params={"item_key": f"{ITEM}-append"}).json()["items"]
    assert [r["action"] for r in listed] == ["written_off"]
