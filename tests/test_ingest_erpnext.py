"""The ERPNext ingest: exact decimals, child tables, cancelled documents kept, partial loads, quarantine."""

from __future__ import annotations

from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from ez360.core.settings import Settings
from ingest.erpnext_source import table_name
from ingest.report import IngestFailed
from ingest.runner import run_source
from ingest.sandboxes import frappe_server
from tests.support.live_server import serve_app
from tests.support.raw_tables import Raw
from tests.support.sandbox_data import ERP_KEY, ERP_SECRET, build_erpnext, gl_entry, write_erpnext_json

D = Decimal


def erp_settings(tmp_path: Path, url: str, warehouse_url: str = "", **values: Any) -> Settings:
    return Settings(_env_file=None, **{"var_dir": tmp_path / "var", "warehouse_url": warehouse_url,
                                       "erpnext_url": url, "erpnext_api_key": ERP_KEY, "erpnext_api_secret": ERP_SECRET,
                                       "sandboxes": "off", "ingest_backoff_seconds": 0.01, **values})


def world() -> dict[str, Any]:
    """The small ERPNext world plus a cancelled invoice (with ERPNext's reversal GL rows) and payment references."""
    data = build_erpnext()
    docs = data["doctypes"]
    cancelled = {**docs["Sales Invoice"][2], "name": "ACC-SINV-2026-00004", "docstatus": 2, "status": "Cancelled",
                 "modified": "2026-01-05 12:00:00.000000",
                 "items": [{"name": "item-4a", "item_code": "Audit", "qty": D("2"), "rate": D("12.5"),
                            "amount": D("25")}]}
    docs["Sales Invoice"].append(cancelled)
    for n, (debit, credit) in enumerate([("25", "0"), ("0", "25"), ("0", "25"), ("25", "0")], start=1):
        entry = gl_entry(f"ACC-GLE-2026-0010{n}", "2026-01-05 12:00:00.000000", "Beta GmbH",
                         "Debtors - BG" if n in (1, 3) else "Sales - BG", debit, credit, "Sales Invoice",
                         "ACC-SINV-2026-00004")
        entry["is_cancelled"] = 1  # the original lines and their reversal are both marked cancelled
        docs["GL Entry"].append(entry)
    docs["Payment Entry"][0]["references"] = [
        {"name": "per-1", "reference_doctype": "Sales Invoice", "reference_name": "ACC-SINV-2026-00001",
         "allocated_amount": D("1234.5")}]
    return data


def expected(data: dict[str, Any]) -> dict[str, int]:
    counts = {table_name(d): len(docs) for d, docs in data["doctypes"].items()}
    counts["sales_invoice_item"] = sum(len(d.get("items", [])) for d in data["doctypes"]["Sales Invoice"])
    counts["payment_entry_reference"] = sum(len(d.get("references", [])) for d in data["doctypes"]["Payment Entry"])
    counts["journal_entry_account"] = sum(len(d.get("accounts", [])) for d in data["doctypes"]["Journal Entry"])
    return counts


def assert_exact(raw: Raw, data: dict[str, Any]) -> None:
    for table, count in expected(data).items():
        names = [r["name"] for r in raw.rows("raw_erpnext", table, "name")]
        assert len(names) == len(set(names)) == count, table
    gl = data["doctypes"]["GL Entry"]
    assert {r["name"]: (r["debit"], r["credit"]) for r in raw.rows("raw_erpnext", "gl_entry", "name, debit, credit")} \
        == {e["name"]: (D(e["debit"]), D(e["credit"])) for e in gl}
    items = raw.rows("raw_erpnext", "sales_invoice_item", "name, parent, parenttype, parentfield, idx, qty, amount")
    assert sorted((i["name"], i["parent"], i["parenttype"], i["parentfield"], i["idx"], i["qty"], i["amount"])
                  for i in items) == sorted(
        (item["name"], doc["name"], "Sales Invoice", "items", idx, item["qty"], item["amount"])
        for doc in data["doctypes"]["Sales Invoice"] for idx, item in enumerate(doc.get("items", []), start=1))
    assert raw.rows("raw_erpnext", "payment_entry_reference", "parent, reference_name, allocated_amount") == [
        {"parent": "ACC-PAY-2026-00001", "reference_name": "ACC-SINV-2026-00001", "allocated_amount": D("1234.5")}]
    assert sorted((r["parent"], r["idx"], r["account"]) for r in raw.rows(
        "raw_erpnext", "journal_entry_account", "parent, idx, account")) == [
        ("ACC-JV-2026-00001", 1, "Sales - AC"), ("ACC-JV-2026-00001", 2, "Stripe Clearing - AC")]
    # cancelled documents and cancelled GL rows are kept, and flagged
    flagged = {r["name"]: (r["docstatus"], r["cancelled"]) for r in raw.rows(
        "raw_erpnext", "sales_invoice", "name, docstatus, cancelled")}
    assert flagged["ACC-SINV-2026-00004"] == (2, True) and flagged["ACC-SINV-2026-00001"] == (1, False)
    assert raw.scalar("select count(*) from raw_erpnext.gl_entry where is_cancelled = 1 and cancelled") == 4


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_documents_children_and_cancellations_land_exactly_then_reruns_idle_then_picks_up_edits(
        engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    data = world()
    path = write_erpnext_json(tmp_path, data)
    warehouse = request.getfixturevalue("postgres_url") if engine == "postgres" else ""
    with serve_app(frappe_server.create_app(path)) as url:
        # three documents per page: most doctypes take several pages, two GL rows share a `modified` instant
        settings = erp_settings(tmp_path, url, warehouse, erpnext_page_size=3)
        report = run_source("erpnext", settings)
        raw = Raw(settings.warehouse_url)
        try:
            assert not report.partial and report.pages > 10
            assert_exact(raw, data)
            gl = raw.columns("raw_erpnext", "gl_entry")
            assert gl["debit"].lower().startswith(("decimal", "numeric")) and gl["posting_date"].lower() == "date"
            before = raw.snapshot("raw_erpnext")
            assert run_source("erpnext", settings).rows == 0
            assert raw.snapshot("raw_erpnext") == before
        finally:
            raw.close()

    if engine == "postgres":
        return
    invoice = data["doctypes"]["Sales Invoice"][0]  # edited in ERPNext: its items change too
    invoice.update(grand_total=D("1300"), modified="2026-02-01 09:00:00.000000",
                   items=[{"name": "item-1", "item_code": "Consulting", "qty": D("1"), "amount": D("1300")}])
    data["doctypes"]["GL Entry"].append(gl_entry("ACC-GLE-2026-00200", "2026-02-01 09:00:00.000000", "Beta GmbH",
                                                 "Bank - BG", "987654.321", "0", "Payment Entry",
                                                 "ACC-PAY-2026-00002"))
    write_erpnext_json(tmp_path, data)
    with serve_app(frappe_server.create_app(path)) as url:
        report = run_source("erpnext", erp_settings(tmp_path, url, erpnext_page_size=3))
    assert report.row_counts == {"sales_invoice": 1, "sales_invoice_item": 1, "gl_entry": 1}
    raw = Raw(erp_settings(tmp_path, "").warehouse_url)
    try:
        assert_exact(raw, data)
        assert raw.rows("raw_erpnext", "sales_invoice_item", "amount", "where parent = 'ACC-SINV-2026-00001'") == [
            {"amount": D("1300")}]
    finally:
        raw.close()


def test_a_refused_or_missing_doctype_is_reported_while_the_others_load_and_a_refused_key_fails_all(
        tmp_path: Path) -> None:
    data = world()
    data["denied_doctypes"] = ["Bank Transaction"]
    with serve_app(frappe_server.create_app(write_erpnext_json(tmp_path, data))) as url:
        settings = erp_settings(tmp_path, url, erpnext_doctypes="Company,Spaceship,Bank Transaction,GL Entry")
        report = run_source("erpnext", settings)
        assert report.partial
        assert set(report.errors) == {"Spaceship", "Bank Transaction"}
        assert "404" in report.errors["Spaceship"] and "403" in report.errors["Bank Transaction"]
        assert report.row_counts == {"company": 2, "gl_entry": len(data["doctypes"]["GL Entry"])}

        with pytest.raises(IngestFailed) as refused:
            run_source("erpnext", erp_settings(tmp_path, url, erpnext_api_secret="wrong"))
        assert "401" in str(refused.value) and "/api/resource/" in str(refused.value)
        with pytest.raises(IngestFailed) as nothing:
            run_source("erpnext", erp_settings(tmp_path, url, erpnext_doctypes="Spaceship,Bank Transaction"))
        assert "every part failed" in str(nothing.value)


def test_malformed_documents_are_quarantined_with_reasons_and_never_defaulted(tmp_path: Path) -> None:
    data = world()
    gl = data["doctypes"]["GL Entry"]
    gl += [gl_entry("ACC-GLE-2026-00301", "2026-03-01 10:00:00.000000", "Beta GmbH", "Bank - BG", "0", "0",
                    "Payment Entry", "ACC-PAY-2026-00002") | {"debit": "twelve"},
           gl_entry("ACC-GLE-2026-00302", "2026-03-01 10:00:01.000000", "Beta GmbH", "Bank - BG", "1", "0",
                    "Payment Entry", "ACC-PAY-2026-00002") | {"posting_date": "2026-13-45",
                                                              "account_currency": "ZZZ"},
           {k: v for k, v in gl[0].items() if k != "name"} | {"modified": "2026-03-01 10:00:02.000000"}]
    with serve_app(frappe_server.create_app(write_erpnext_json(tmp_path, data))) as url:
        report = run_source("erpnext", erp_settings(tmp_path, url, erpnext_doctypes="GL Entry"))
    assert report.quarantined == {"unparsable_amount:debit": 1, "unparsable_date:posting_date": 1,
                                  "unknown_currency:account_currency": 1, "missing_field:name": 1}
    assert report.row_counts == {"gl_entry": len(gl) - 3, "_quarantine": 4}
    raw = Raw(erp_settings(tmp_path, "").warehouse_url)
    try:
        rows = raw.rows("raw_erpnext", "_quarantine", "record_key, reason")
        assert {(r["record_key"], r["reason"]) for r in rows if not r["record_key"].startswith("sha256:")} == {
            ("ACC-GLE-2026-00301", "unparsable_amount:debit"), ("ACC-GLE-2026-00302", "unparsable_date:posting_date"),
            ("ACC-GLE-2026-00302", "unknown_currency:account_currency")}
        assert raw.scalar("select count(*) from raw_erpnext.gl_entry where name like 'ACC-GLE-2026-003%'") == 0
    finally:
        raw.close()
