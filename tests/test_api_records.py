"""Records through the API on SQLite and PostgreSQL: clients, projects, time and expenses with soft delete and
restore; cursor pages, filters and sorting; money validation; plan limits; problem documents."""

from __future__ import annotations

import re

import pytest

from tests.support.integrity import build_api_world


@pytest.fixture
def api(ops_db):
    return build_api_world(ops_db)


def _client(api, name="Acme Robotics", currency=None, role="owner"):
    body = {"name": name, "email": "ap@example.org"}
    if currency:
        body["currency"] = currency
    response = api.call("POST", "/clients", role, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def test_client_soft_delete_hides_it_from_lists_and_restore_brings_it_back(api):
    client = _client(api)
    assert client["created_by_id"] == api.user_ids["owner"]
    deleted = api.call("DELETE", f"/clients/{client['id']}")
    assert deleted.status_code == 200 and deleted.json()["deleted_at"]
    assert api.call("GET", "/clients").json()["items"] == []
    only = api.call("GET", "/clients", params={"deleted": "only"}).json()["items"]
    assert [c["id"] for c in only] == [client["id"]]
    again = api.call("DELETE", f"/clients/{client['id']}")
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"
    restored = api.call("POST", f"/clients/{client['id']}/restore")
    assert restored.status_code == 200 and restored.json()["deleted_at"] is None
    assert [c["id"] for c in api.call("GET", "/clients").json()["items"]] == [client["id"]]


def test_lists_page_with_a_cursor_filter_and_sort_without_repeating_rows(api):
    names = [f"Client {i:02d}" for i in range(7)]
    for name in reversed(names):
        _client(api, name, currency="EUR" if name.endswith(("1", "3")) else None)
    seen, cursor = [], None
    while True:
        params = {"limit": 3, "sort": "name"} | ({"cursor": cursor} if cursor else {})
        page = api.call("GET", "/clients", params=params).json()
        seen += [c["name"] for c in page["items"]]
        cursor = page["next_cursor"]
        if not cursor:
            break
    assert seen == names
    desc = api.call("GET", "/clients", params={"sort": "-name", "limit": 2}).json()
    assert [c["name"] for c in desc["items"]] == ["Client 06", "Client 05"]
    eur = api.call("GET", "/clients", params={"currency": "EUR"}).json()["items"]
    assert sorted(c["name"] for c in eur) == ["Client 01", "Client 03"]
    bad = api.call("GET", "/clients", params={"cursor": "not-a-cursor"})
    assert bad.status_code == 400 and bad.json()["title"] == "Bad Request"
    mixed = api.call("GET", "/clients", params={"cursor": desc["next_cursor"], "sort": "name"})
    assert mixed.status_code == 400


def test_another_companys_records_answer_404(api):
    client = _client(api)
    response = api.client.get(api.path(f"/clients/{client['id']}", api.other_company_id),
                              headers=api.headers("outsider"))
    assert response.status_code == 404
    assert api.client.get(api.path("/clients", api.other_company_id), headers=api.headers()).status_code == 404


def test_money_with_too_many_decimals_or_an_unknown_currency_is_refused_naming_the_field(api):
    client = _client(api)
    response = api.call("POST", "/projects", json={"client_id": client["id"], "name": "P", "hourly_rate": "150.005"})
    assert response.status_code == 422
    problem = response.json()
    assert problem["errors"][0]["loc"] == ["body", "hourly_rate"]
    assert "more than 2 decimal places allowed for USD" in problem["errors"][0]["msg"]
    jpy = api.call("POST", "/clients", json={"name": "Tokyo", "currency": "JPY"}).json()
    yen = api.call("POST", "/projects", json={"client_id": jpy["id"], "name": "P", "hourly_rate": "1500.5"})
    assert yen.status_code == 422 and "0 decimal places allowed for JPY" in yen.json()["errors"][0]["msg"]
    unknown = api.call("POST", "/clients", json={"name": "X", "currency": "XYZ"})
    assert unknown.status_code == 422 and "unknown currency 'XYZ'" in unknown.json()["detail"]
    expense = api.call("POST", "/expenses", json={"category": "travel", "amount": 12.345, "incurred_on": "2026-01-02"})
    assert expense.status_code == 422 and expense.json()["errors"][0]["loc"] == ["body", "amount"]


def test_money_goes_out_as_exact_decimal_strings_in_the_currencys_precision(api):
    kwd = api.call("POST", "/clients", json={"name": "Gulf", "currency": "KWD"}).json()
    project = api.call("POST", "/projects", json={"client_id": kwd["id"], "name": "P", "hourly_rate": 45.5,
                                                  "budget": "1000.125"}).json()
    assert (project["hourly_rate"], project["budget"], project["currency"]) == ("45.500", "1000.125", "KWD")
    expense = api.call("POST", "/expenses", json={"category": "software", "amount": 0.1, "incurred_on": "2026-01-02"})
    assert expense.json()["amount"] == "0.10"


def test_project_status_follows_its_life_cycle(api):
    client = _client(api)
    project = api.call("POST", "/projects", json={"client_id": client["id"], "name": "P", "hourly_rate": "100"}).json()
    for status, expected in (("on_hold", 200), ("active", 200), ("completed", 200), ("cancelled", 409),
                             ("active", 200), ("cancelled", 200), ("active", 409)):
        response = api.call("PATCH", f"/projects/{project['id']}", json={"status": status})
        assert response.status_code == expected, (status, response.text)


def test_time_entries_take_the_project_rate_and_staff_change_only_their_own(api):
    client = _client(api)
    project = api.call("POST", "/projects", json={"client_id": client["id"], "name": "P", "hourly_rate": "120"}).json()
    mine = api.call("POST", "/time-entries", "staff", json={"project_id": project["id"], "work_date": "2026-02-03",
                                                          "hours": "7.5", "cost_rate": "60"})
    assert mine.status_code == 201 and mine.json()["rate"] == "120.00" and mine.json()["hours"] == "7.50"
    theirs = api.call("POST", "/time-entries", "finance", json={"project_id": project["id"],
                                                              "work_date": "2026-02-03", "hours": 2})
    assert theirs.status_code == 201
    assert api.call("PATCH", f"/time-entries/{theirs.json()['id']}", "staff", json={"hours": 1}).status_code == 403
    assert api.call("PATCH", f"/time-entries/{mine.json()['id']}", "staff", json={"hours": 1}).status_code == 200
    too_long = api.call("POST", "/time-entries", json={"project_id": project["id"], "work_date": "2026-02-03",
                                                       "hours": "25"})
    assert too_long.status_code == 422
    assert api.call("DELETE", f"/time-entries/{mine.json()['id']}", "staff").json()["deleted_at"]
    listed = api.call("GET", "/time-entries", params={"project_id": project["id"]}).json()["items"]
    assert [t["id"] for t in listed] == [theirs.json()["id"]]


def test_deleting_an_expense_reverses_its_posting_and_restoring_posts_it_again(api):
    expense = api.call("POST", "/expenses", json={"category": "travel", "amount": "320.00",
                                                  "incurred_on": "2026-03-04", "attachment_ref": "r/1.pdf"}).json()
    def travel_balance():
        rows = api.call("GET", "/ledger/trial-balance").json()
        return next((r["balance"] for r in rows if r["code"] == "6300"), "0.00")
    assert travel_balance() == "320.00"
    api.call("DELETE", f"/expenses/{expense['id']}")
    assert travel_balance() == "0.00"
    api.call("POST", f"/expenses/{expense['id']}/restore")
    assert travel_balance() == "320.00"
    changed = api.call("PATCH", f"/expenses/{expense['id']}", json={"amount": "300"})
    assert changed.json()["amount"] == "300.00" and travel_balance() == "300.00"


def test_plan_limits_answer_a_problem_naming_the_plan_and_the_limit(ops_db):
    api = build_api_world(ops_db, plan="free")
    for i in range(10):
        _client(api, f"C{i}")
    refused = api.call("POST", "/clients", json={"name": "One too many"})
    assert refused.status_code == 402
    assert "Free plan (Production Baseline v1) allows at most 10 clients" in refused.json()["detail"]
    clients = api.call("GET", "/clients", params={"limit": 3}).json()["items"]
    for i in range(3):
        ok = api.call("POST", "/projects", json={"client_id": clients[0]["id"], "name": f"P{i}", "hourly_rate": 1})
        assert ok.status_code == 201
    project = api.call("POST", "/projects", json={"client_id": clients[0]["id"], "name": "P3", "hourly_rate": 1})
    assert project.status_code == 402 and "at most 3 active projects" in project.json()["detail"]
    api.call("POST", "/invitations", json={"email": "t@acme.test", "role": "staff"})  # open invitations count
    third = api.call("POST", "/invitations", json={"email": "u@acme.test", "role": "staff"})
    assert third.status_code == 402 and "at most 2 users" in third.json()["detail"]
    plan = api.call("GET", "/plan").json()
    assert plan["clients"] == {"limit": 10, "used": 10} and plan["plan_set"] == "Production Baseline v1"


def test_company_settings_validate_the_invoice_number_format(api):
    ok = api.call("PATCH", "/settings", json={"invoice_number_format": "{prefix}{year}-{seq:04d}",
                                              "payment_terms_days": 14})
    assert ok.status_code == 200 and ok.json()["payment_terms_days"] == 14
    bad = api.call("PATCH", "/settings", json={"invoice_number_format": "{prefix}-{year}"})
    assert bad.status_code == 422 and "{seq}" in bad.json()["detail"]
    assert api.call("PATCH", "/settings", "finance", json={"payment_terms_days": 1}).status_code == 403


def test_a_signed_in_user_creates_a_company_and_becomes_its_owner(api):
    browser, csrf = api.signed_in("viewer")  # a session: an API token cannot create companies
    response = browser.post("/api/v1/companies", headers=csrf, json={
        "slug": "newco", "name": "NewCo", "base_currency": "JPY", "invoice_prefix": "NC"})
    assert response.status_code == 201, response.text
    assert response.json()["plan"] == "free"
    duplicate = browser.post("/api/v1/companies", headers=csrf, json={
        "slug": "newco", "name": "NewCo", "base_currency": "JPY", "invoice_prefix": "NC"})
    assert duplicate.status_code == 409


def test_onboarding_progress_and_usage_events_follow_what_the_company_does(api):
    start = api.call("GET", "/onboarding").json()
    assert start["total"] == 6 and {s["key"] for s in start["steps"] if s["done"]} == {"invite_teammate"}
    client = _client(api)
    api.call("POST", "/projects", json={"client_id": client["id"], "name": "P", "hourly_rate": 1})
    progress = api.call("GET", "/onboarding").json()
    assert {s["key"] for s in progress["steps"] if s["done"]} == {"add_client", "add_project", "invite_teammate"}
    assert progress["percent"] == 50
    events = api.call("GET", "/usage-events", params={"limit": 200}).json()["items"]
    names = [e["event_name"] for e in events]
    assert "client_created" in names and "project_created" in names
    steps = {e["properties"]["step"] for e in events if e["event_name"] == "onboarding_step_completed"}
    assert steps == {"add_client", "add_project", "invite_teammate"}
    assert api.call("GET", "/usage-events", "staff").status_code == 403


def test_a_listed_invoice_reads_exactly_as_the_invoice_itself(api):
    """The list page is written straight to JSON (issue 8); every field must read as the invoice's own answer,
    which goes through the response model: amounts at the currency's scale, times in UTC with Z, dates, nulls."""
    kwd = _client(api, "Gulf Trading", currency="KWD")
    made = []
    for lines in ([{"description": "Design", "quantity": "2.5", "unit_price": "120.125", "tax_rate_percent": "5"}],
                  [{"description": "Build", "quantity": "1", "unit_price": "900", "discount_percent": "12.5"},
                   {"description": "Support", "quantity": "0.75", "unit_price": "80"}]):
        answer = api.call("POST", "/invoices", json={"client_id": kwd["id"], "due_date": "2026-01-31", "lines": lines})
        assert answer.status_code == 201, answer.text
        made.append(answer.json()["id"])
    assert api.call("POST", f"/invoices/{made[0]}/send", json={"issue_date": "2026-01-02"}).status_code == 200
    listed = api.call("GET", "/invoices", params={"limit": 50}).json()["items"]
    assert sorted(i["id"] for i in listed) == sorted(made)
    for item in listed:
        assert item == api.call("GET", f"/invoices/{item['id']}").json()
    sent = next(i for i in listed if i["id"] == made[0])
    assert sent["sent_at"].endswith("Z") and re.fullmatch(r"\d+\.\d{3}", sent["total"])
