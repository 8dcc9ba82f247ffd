"""Export files dropped in the inbox: read against their schema, loaded once, moved; company mapping settings."""

from __future__ import annotations

import datetime as dt
from decimal import Decimal
from pathlib import Path
from typing import Any

import polars as pl
import pytest
import xlsxwriter

from ez360.core.settings import Settings
from ingest.runner import run_source
from tests.support.raw_tables import Raw

D = Decimal
BANK_CSV = """Booking Date,Value Date,Amount,Currency,Bank Account,Reference,Description,Counterparty,Branch
2026-01-09,2026-01-09,3339.94,EUR,Main - AC,po_A1,STRIPE PAYOUT,Stripe,Berlin
2026-01-10,,-0.10,eur,Main - AC,,Fee,Bank,Berlin
2026-01-10,,-0.10,EUR,Main - AC,,Fee,Bank,Berlin
2026-01-11,,12.5x,EUR,Main - AC,,Broken amount,Bank,Berlin
2026-01-32,,5.00,EUR,Main - AC,,Bad date,Bank,Berlin
2026-01-12,,7.00,XXQ,Main - AC,,Bad currency,Bank,Berlin
2026-01-12,,,EUR,Main - AC,,No amount,Bank,Berlin
"""
GL_CSV = """GL Entry,Posting Date,Account,Debit,Credit,Account Currency,Voucher Type,Voucher No,Company,Is Cancelled
ACC-GLE-2026-00001,2026-01-03,Debtors - AC,1234.5,0,USD,Sales Invoice,ACC-SINV-2026-00001,Alpha,0
ACC-GLE-2026-00002,2026-01-03,Sales - AC,0,1234.5,USD,Sales Invoice,ACC-SINV-2026-00001,Alpha,1
"""


def files_settings(tmp_path: Path, warehouse_url: str = "", **values: Any) -> Settings:
    return Settings(_env_file=None, **{"var_dir": tmp_path / "var", "warehouse_url": warehouse_url,
                                       "sandboxes": "off", **values})


def drop(settings: Settings, kind: str, name: str, content: str | bytes | None = None) -> Path:
    folder = settings.inbox_dir / kind
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    if isinstance(content, str):
        path.write_text(content)
    elif content is not None:
        path.write_bytes(content)
    return path


def write_xlsx(path: Path) -> None:
    book = xlsxwriter.Workbook(str(path))
    sheet = book.add_worksheet()
    sheet.write_row(0, 0, ["Date", "Credit", "Debit", "Currency", "IBAN", "Memo"])
    sheet.write_datetime(1, 0, dt.datetime(2026, 2, 2), book.add_format({"num_format": "yyyy-mm-dd"}))
    sheet.write_row(1, 1, [250.75, None, "USD", "DE02 1203", "Client transfer"])
    sheet.write_string(2, 0, "2026-02-03")
    sheet.write_row(2, 1, [None, 0.1, "USD", "DE02 1203", "Charges"])
    book.close()


@pytest.mark.parametrize("engine", ["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def test_statements_and_gl_exports_load_once_bad_rows_quarantined_files_moved(
        engine: str, tmp_path: Path, request: pytest.FixtureRequest) -> None:
    warehouse = request.getfixturevalue("postgres_url") if engine == "postgres" else ""
    settings = files_settings(tmp_path, warehouse, stripe_company_map="acct_1TestAlpha=alpha",
                              erpnext_company_map="Beta GmbH=beta")
    drop(settings, "bank_statement_lines", "jan.csv", BANK_CSV)
    write_xlsx(drop(settings, "bank_statement_lines", "feb.xlsx"))
    pl.DataFrame({"booking_date": [dt.date(2026, 3, 1)], "amount": [D("99.99")], "currency": ["GBP"],
                  "bank_account": ["Sterling"], "line_id": ["HSBC-0001"]},
                 schema={"booking_date": pl.Date, "amount": pl.Decimal(12, 2), "currency": pl.String,
                         "bank_account": pl.String, "line_id": pl.String}).write_parquet(
        drop(settings, "bank_statement_lines", "mar.parquet"))
    drop(settings, "erpnext_gl_export", "gl.csv", GL_CSV)
    drop(settings, "erpnext_gl_export", "wrong.csv", "Account,Debit\nBank,1\n")  # not a GL export
    drop(settings, "bank_statement_lines", "notes.txt", "hello")

    report = run_source("files", settings)
    assert report.row_counts == {"bank_statement_lines": 6, "erpnext_gl_export": 2, "loaded_files": 4,
                                 "source_companies": 2, "_quarantine": 4}
    assert report.quarantined == {"unparsable_amount:amount": 1, "unparsable_date:booking_date": 1,
                                  "unknown_currency:currency": 1, "missing_field:amount": 1}
    assert set(report.errors) == {"erpnext_gl_export/wrong.csv"} and report.partial

    raw = Raw(settings.warehouse_url)
    try:
        lines = raw.rows("raw_files", "bank_statement_lines",
                         "booking_date, amount, currency, bank_account, source_file, line_id")
        assert sorted((r["booking_date"], r["amount"], r["currency"], r["source_file"]) for r in lines) == [
            (dt.date(2026, 1, 9), D("3339.94"), "EUR", "jan.csv"),
            (dt.date(2026, 1, 10), D("-0.10"), "EUR", "jan.csv"), (dt.date(2026, 1, 10), D("-0.10"), "EUR", "jan.csv"),
            (dt.date(2026, 2, 2), D("250.75"), "USD", "feb.xlsx"), (dt.date(2026, 2, 3), D("-0.1"), "USD", "feb.xlsx"),
            (dt.date(2026, 3, 1), D("99.99"), "GBP", "mar.parquet")]
        assert len({r["line_id"] for r in lines}) == 6 and "HSBC-0001" in {r["line_id"] for r in lines}
        assert "branch" in raw.columns("raw_files", "bank_statement_lines")  # an extra column lands, breaks nothing
        gl = raw.rows("raw_files", "erpnext_gl_export", "gl_entry, debit, credit, currency, is_cancelled")
        assert sorted((g["gl_entry"], g["debit"], g["credit"], g["currency"], g["is_cancelled"]) for g in gl) == [
            ("ACC-GLE-2026-00001", D("1234.5"), D(0), "USD", False),
            ("ACC-GLE-2026-00002", D(0), D("1234.5"), "USD", True)]
        assert sorted((r["source"], r["source_key"], r["company_slug"]) for r in raw.rows(
            "raw_files", "source_companies", "source, source_key, company_slug")) == [
            ("erpnext", "Beta GmbH", "beta"), ("stripe", "acct_1TestAlpha", "alpha")]
        inbox = settings.inbox_dir
        assert sorted(p.name for p in (inbox / "bank_statement_lines" / "processed").iterdir()) == [
            "feb.xlsx", "jan.csv", "mar.parquet"]
        reason = (inbox / "erpnext_gl_export" / "rejected" / "wrong.csv.reason.txt").read_text()
        assert "missing column(s) gl_entry, posting_date, credit, currency" in reason
        assert "unsupported file type" in (inbox / "bank_statement_lines" / "rejected" / "notes.txt.reason.txt"
                                           ).read_text()

        # the same statement dropped again under another name: not loaded twice, and said why
        before = raw.snapshot("raw_files")
        drop(settings, "bank_statement_lines", "jan-again.csv", BANK_CSV)
        again = run_source("files", settings)
        assert again.rows == 0 and raw.snapshot("raw_files") == before
        assert "already loaded: same content as jan.csv" in (
            inbox / "bank_statement_lines" / "rejected" / "jan-again.csv.reason.txt").read_text()
    finally:
        raw.close()


def test_company_mapping_follows_the_settings_and_an_unchanged_setting_rewrites_nothing(tmp_path: Path) -> None:
    first = files_settings(tmp_path, stripe_company_map="acct_1=alpha,acct_2=beta")
    assert run_source("files", first).row_counts == {"source_companies": 2}
    assert run_source("files", first).rows == 0
    changed = files_settings(tmp_path, stripe_company_map="acct_2=gamma", erpnext_company_map="Alpha = Co=alpha")
    run_source("files", changed)
    raw = Raw(first.warehouse_url)
    try:
        assert sorted((r["source"], r["source_key"], r["company_slug"], r["rule"]) for r in raw.rows(
            "raw_files", "source_companies", "source, source_key, company_slug, rule")) == [
            ("erpnext", "Alpha = Co", "alpha", "setting"), ("stripe", "acct_2", "gamma", "setting")]
    finally:
        raw.close()
