"""The ERPNext sandbox answers Frappe's REST API as Frappe does, with exact decimal currency values."""

from __future__ import annotations

import json
from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import httpx
import pytest

from ingest.sandboxes.frappe_server import create_app
from tests.support.live_server import serve_app
from tests.support.sandbox_data import ERP_KEY, ERP_SECRET, build_erpnext, write_erpnext_json

AUTH = {"Authorization": f"token {ERP_KEY}:{ERP_SECRET}"}


def _data() -> dict[str, Any]:
    data = build_erpnext()
    # 25 extra customers, to see the default page length (20) at work.
    data["doctypes"]["Customer"] += [
        {"name": f"Bulk {i:02d}", "customer_name": f"Bulk {i:02d}", "customer_group": "Bulk",
         "modified": f"2026-02-01 00:00:{i:02d}.000000", "creation": "2026-02-01 00:00:00.000000",
         "docstatus": 0} for i in range(25)]
    return data


@pytest.fixture(scope="module")
def api(tmp_path_factory: pytest.TempPathFactory) -> Iterator[httpx.Client]:
    path = write_erpnext_json(tmp_path_factory.mktemp("erpnext"), _data())
    with serve_app(create_app(path)) as url, httpx.Client(base_url=url, headers=AUTH) as client:
        yield client


def _list(api: httpx.Client, doctype: str, **params: Any) -> list[dict[str, Any]]:
    query = {k: json.dumps(v) if k in ("fields", "filters", "or_filters") else v for k, v in params.items()}
    response = api.get(f"/api/resource/{doctype}", params=query)
    assert response.status_code == 200, response.text
    return json.loads(response.content, parse_float=Decimal)["data"]


def test_default_is_names_only_twenty_rows_newest_modified_first(api: httpx.Client) -> None:
    rows = _list(api, "Customer")
    assert len(rows) == 20 and all(list(row) == ["name"] for row in rows)
    assert rows[0]["name"] == "Bulk 24" and rows[1]["name"] == "Bulk 23"


def test_page_length_zero_means_everything_and_limit_start_pages(api: httpx.Client) -> None:
    everything = _list(api, "Customer", limit_page_length=0, order_by="name asc")
    assert len(everything) == 27
    pages = [_list(api, "Customer", limit_page_length=10, limit_start=s, order_by="name asc") for s in (0, 10, 20)]
    assert [len(p) for p in pages] == [10, 10, 7]
    assert [r["name"] for p in pages for r in p] == [r["name"] for r in everything]


def test_star_gives_parent_columns_and_the_document_gives_child_tables(api: httpx.Client) -> None:
    [invoice] = _list(api, "Sales Invoice", fields=["*"], filters=[["name", "=", "ACC-SINV-2026-00001"]])
    assert invoice["customer"] == "Acme" and "items" not in invoice
    doc = api.get("/api/resource/Sales Invoice/ACC-SINV-2026-00001").json()["data"]
    assert doc["items"][0]["item_code"] == "Consulting"


def test_currency_values_leave_exactly_as_written(api: httpx.Client) -> None:
    response = api.get("/api/resource/GL Entry", params={"fields": '["name", "debit", "credit"]',
                                                         "limit_page_length": 0})
    assert '"debit":1234.5,' in response.text and '"debit":0.1,' in response.text
    assert '"debit":1234.56,' in response.text and '"debit":5.00,' in response.text
    debits = {r["name"]: r["debit"] for r in json.loads(response.content, parse_float=Decimal)["data"]}
    assert debits["ACC-GLE-2026-00001"] == Decimal("1234.5")
    assert debits["ACC-GLE-2026-00003"] + debits["ACC-GLE-2026-00006"] == Decimal("0.3")


def test_filters_in_list_and_dict_forms(api: httpx.Client) -> None:
    def names(**params: Any) -> list[str]:
        return sorted(r["name"] for r in _list(api, "GL Entry", limit_page_length=0, **params))

    assert names(filters=[["debit", ">", 1]]) == ["ACC-GLE-2026-00001", "ACC-GLE-2026-00005",
                                                  "ACC-GLE-2026-00007"]
    assert names(filters=[["GL Entry", "debit", ">=", "1234.5"]]) == ["ACC-GLE-2026-00001", "ACC-GLE-2026-00005"]
    assert names(filters={"company": "Beta GmbH"}) == ["ACC-GLE-2026-00006"]
    assert names(filters={"voucher_type": ["!=", "Sales Invoice"], "company": "Alpha Consulting"}) == [
        "ACC-GLE-2026-00005", "ACC-GLE-2026-00007"]
    assert names(filters=[["voucher_no", "like", "acc-pay-%"]]) == ["ACC-GLE-2026-00005", "ACC-GLE-2026-00006"]
    assert names(filters=[["account", "in", ["Sales - AC", "Stripe Clearing - BG"]]]) == [
        "ACC-GLE-2026-00002", "ACC-GLE-2026-00004", "ACC-GLE-2026-00006", "ACC-GLE-2026-00007"]
    assert len(names(filters=[["account", "not in", "Sales - AC,Debtors - AC"]])) == 2
    assert names(filters=[["posting_date", "between", ["2026-01-06", "2026-01-07"]]]) == [
        "ACC-GLE-2026-00005", "ACC-GLE-2026-00006"]
    assert names(filters=[["modified", ">=", "2026-01-08 10:00:00.000000"]]) == ["ACC-GLE-2026-00007"]
    assert names(filters=[["modified", "between", ["2026-01-08", "2026-01-08"]]]) == ["ACC-GLE-2026-00007"]


def test_order_by_several_fields(api: httpx.Client) -> None:
    rows = _list(api, "GL Entry", fields=["name", "debit"], order_by="debit desc, name asc", limit_page_length=3)
    assert [r["name"] for r in rows] == ["ACC-GLE-2026-00005", "ACC-GLE-2026-00001", "ACC-GLE-2026-00007"]


def test_field_alias(api: httpx.Client) -> None:
    [row] = _list(api, "Company", fields=["name", "abbr as short"], filters={"name": "Beta GmbH"})
    assert row == {"name": "Beta GmbH", "short": "BG"}


@pytest.mark.parametrize("headers", [{}, {"Authorization": f"token {ERP_KEY}:wrong"},
                                     {"Authorization": "token nobody:nothing"}, {"Authorization": "Bearer x"}])
def test_missing_or_bad_token_is_an_authentication_error(api: httpx.Client, headers: dict[str, str]) -> None:
    response = httpx.get(f"{api.base_url}/api/resource/GL Entry", headers=headers)
    assert response.status_code == 401 and response.json()["exc_type"] == "AuthenticationError"


def test_basic_auth_with_key_and_secret_is_accepted(api: httpx.Client) -> None:
    response = httpx.get(f"{api.base_url}/api/resource/Company", auth=(ERP_KEY, ERP_SECRET))
    assert response.status_code == 200 and len(response.json()["data"]) == 2


def test_unknown_doctype_and_unknown_document_are_does_not_exist(api: httpx.Client) -> None:
    doctype = api.get("/api/resource/Spaceship")
    assert doctype.status_code == 404 and doctype.json()["exc_type"] == "DoesNotExistError"
    doc = api.get("/api/resource/GL Entry/ACC-GLE-0000")
    assert doc.status_code == 404 and "ACC-GLE-0000" in doc.json()["exception"]


@pytest.mark.parametrize("params, expected", [
    ({"fields": "[name"}, "Invalid JSON in 'fields'"),
    ({"filters": "{oops"}, "Invalid JSON in 'filters'"),
    ({"fields": '["no_such_field"]'}, "no_such_field"),
    ({"filters": '[["debit", "~", 1]]'}, "Unsupported operator"),
    ({"filters": '[["debit"]]'}, "[field, operator, value]"),
    ({"limit_page_length": "ten"}, "limit_page_length"),
    ({"order_by": "debit sideways"}, "order_by"),
])
def test_invalid_requests_answer_417_with_a_clear_message(api: httpx.Client, params: dict[str, str],
                                                          expected: str) -> None:
    response = api.get("/api/resource/GL Entry", params=params)
    assert response.status_code == 417
    assert expected in response.json()["exception"]
