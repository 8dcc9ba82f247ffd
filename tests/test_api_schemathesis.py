"""Property-based API testing with schemathesis against the served OpenAPI document, on SQLite and PostgreSQL:
no 5xx, and every answer (status, content type, body) conforms to the document."""

from __future__ import annotations

import pytest
import schemathesis
from hypothesis import HealthCheck, given, settings
from schemathesis.checks import not_a_server_error
from schemathesis.specs.openapi.checks import (
    content_type_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from tests.support.integrity import build_api_world

EXAMPLES = 25
CHECKS = [not_a_server_error, status_code_conformance, content_type_conformance, response_schema_conformance]


@pytest.fixture
def api(ops_db):
    world = build_api_world(ops_db)
    client = world.call("POST", "/clients", json={"name": "Acme Robotics"}).json()
    project = world.call("POST", "/projects", json={"client_id": client["id"], "name": "P", "hourly_rate": "10"})
    invoice = world.call("POST", "/invoices", json={"client_id": client["id"], "lines": [
        {"description": "x", "quantity": 1, "unit_price": "10"}]}).json()
    world.call("POST", f"/invoices/{invoice['id']}/send", json={"issue_date": "2026-01-31"})
    assert project.status_code == 201
    return world


def test_api_conforms_to_its_openapi_document(api):
    """Every operation of the whole API, a bounded number of generated requests each (positive and negative
    data)."""
    schema = schemathesis.openapi.from_asgi("/openapi.json", api.client.app)
    failures, operations = [], 0
    for result in schema.get_all_operations():
        operation = result.ok()
        operations += 1

        @settings(max_examples=EXAMPLES, deadline=None, suppress_health_check=list(HealthCheck), derandomize=True,
                  database=None)
        @given(case=operation.as_strategy())
        def run(case):
            if "company_id" in (case.path_parameters or {}):
                case.path_parameters["company_id"] = api.company_id  # explore inside the token's company
            case.call_and_validate(headers=api.headers("owner"), checks=CHECKS)

        try:
            run()
        except BaseException as exc:  # noqa: BLE001 - collect every operation's failure, report them together
            if isinstance(exc, KeyboardInterrupt | SystemExit):
                raise
            failures.append(f"{operation.label}: {exc}"[:2000])
    assert operations > 80  # the whole document: records, money, accounts, tokens, Stripe, health
    assert not failures, "\n\n".join(failures)


def test_every_request_body_documents_an_example(tmp_path):
    from ez360.core.settings import Settings
    from operational_api.app import create_app

    doc = create_app(Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'o.sqlite3'}")).openapi()
    components = doc["components"]["schemas"]
    bodies = 0
    for path, methods in doc["paths"].items():
        for method, operation in methods.items():
            if "requestBody" not in operation:
                continue
            ref = operation["requestBody"]["content"]["application/json"]["schema"]
            ref = ref.get("$ref") or next(s["$ref"] for s in ref.get("anyOf", []) if "$ref" in s)
            schema = components[ref.rsplit("/", 1)[1]]
            assert schema.get("examples"), f"{method.upper()} {path} has no request example"
            bodies += 1
        assert "summary" in next(iter(methods.values())), path
    assert bodies >= 35
    problem = doc["paths"]["/api/v1/companies/{company_id}/invoices/{invoice_id}"]["patch"]["responses"]["409"]
    assert "application/problem+json" in problem["content"]


# Arrays that are not record lists: a report, an alerting query, and the caller's own sessions.
NOT_RECORD_LISTS = {"/api/v1/companies/{company_id}/ledger/trial-balance",
                    "/api/v1/companies/{company_id}/stripe/events", "/api/v1/account/sessions"}


def test_every_list_is_a_cursor_page_with_limit_and_sort(tmp_path):
    from ez360.core.settings import Settings
    from operational_api.app import create_app

    doc = create_app(Settings(_env_file=None, database_url=f"sqlite:///{tmp_path / 'o.sqlite3'}")).openapi()
    pages = 0
    for path, methods in doc["paths"].items():
        get = methods.get("get")
        if not get or path in NOT_RECORD_LISTS:
            continue
        schema = get["responses"]["200"]["content"]["application/json"]["schema"]
        assert schema.get("type") != "array", f"GET {path} returns a bare array: make it a cursor page"
        if schema.get("$ref", "").rsplit("/", 1)[-1].startswith("Page_"):
            params = {p["name"] for p in get.get("parameters", [])}
            assert {"limit", "cursor", "sort"} <= params, f"GET {path} lacks {({'limit', 'cursor', 'sort'} - params)}"
            pages += 1
    assert pages >= 15
