"""The real connectors load the sandboxes into a warehouse exactly, incrementally and idempotently."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from decimal import Decimal
from pathlib import Path
from typing import Any

os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

import dlt  # noqa: E402
import duckdb  # noqa: E402
import psycopg2  # noqa: E402
import pytest  # noqa: E402
from dlt.pipeline.exceptions import PipelineStepFailed  # noqa: E402

from ez360.core.warehouse import parse_warehouse_url  # noqa: E402
from ingest.erpnext_source import ErpNextError, erpnext_source, table_name  # noqa: E402
from ingest.load import destination as warehouse_destination  # noqa: E402
from ingest.sandboxes import frappe_server, stripe_server  # noqa: E402
from ingest.stripe_source import OBJECT_TYPES, stripe_source  # noqa: E402
from tests.support.live_server import serve_app  # noqa: E402
from tests.support.sandbox_data import (  # noqa: E402
    BETA,
    ERP_KEY,
    ERP_SECRET,
    STRIPE_KEY,
    T0,
    build_erpnext,
    build_stripe,
    gl_entry,
    stripe_charge_bundle,
    write_erpnext_json,
    write_stripe_json,
)

ERP_TABLES = {doctype: table_name(doctype) for doctype in build_erpnext()["doctypes"]}


def _pipeline(tmp_path: Path, name: str, destination: Any) -> dlt.Pipeline:
    return dlt.pipeline(pipeline_name=name, destination=destination, dataset_name=f"raw_{name}",
                        pipelines_dir=str(tmp_path / "pipelines"))


def _loaded_rows(pipeline: dlt.Pipeline) -> dict[str, int]:
    """Rows the last run normalized per data table (dlt's own bookkeeping tables left out)."""
    counts = pipeline.last_trace.last_normalize_info.row_counts
    return {table: n for table, n in counts.items() if not table.startswith("_dlt") and n}


def _snapshot(db: Path, schema: str, tables: list[str], key: str) -> dict[str, list[tuple[Any, ...]]]:
    with duckdb.connect(str(db), read_only=True) as con:
        return {t: con.execute(f'select * from {schema}."{t}" order by "{key}"').fetchall() for t in tables}


def _column_types(db: Path, schema: str, table: str) -> dict[str, str]:
    with duckdb.connect(str(db), read_only=True) as con:
        rows = con.execute("select column_name, data_type from information_schema.columns "
                           "where table_schema = ? and table_name = ?", [schema, table]).fetchall()
    return dict(rows)


def _stripe_run(path: Path, pipeline: dlt.Pipeline) -> None:
    with serve_app(stripe_server.create_app(path)) as url:
        pipeline.run(stripe_source(STRIPE_KEY, api_base=url))


def _erp_run(path: Path, pipeline: dlt.Pipeline, page_size: int = 3) -> None:
    with serve_app(frappe_server.create_app(path)) as url:
        pipeline.run(erpnext_source(url, ERP_KEY, ERP_SECRET, page_size=page_size))


def test_stripe_load_is_exact_then_idempotent_then_incremental(tmp_path: Path) -> None:
    data, db = build_stripe(), tmp_path / "warehouse.duckdb"
    path = write_stripe_json(tmp_path, data)
    pipeline = _pipeline(tmp_path, "stripe", dlt.destinations.duckdb(str(db)))

    _stripe_run(path, pipeline)
    expected = {t: sum(len(a[t]) for a in data["accounts"].values()) for t in OBJECT_TYPES}
    assert _loaded_rows(pipeline) == {"accounts": 2, **{t: n for t, n in expected.items() if n}}
    tables = ["accounts", *OBJECT_TYPES]
    first = _snapshot(db, "raw_stripe", tables, "id")
    assert {t: len(rows) for t, rows in first.items()} == {"accounts": 2, **expected}

    with duckdb.connect(str(db), read_only=True) as con:
        charges = dict(con.execute("select id, amount from raw_stripe.charges").fetchall())
        owners = dict(con.execute("select id, account_id from raw_stripe.charges").fetchall())
        invoice = con.execute("select metadata__invoice_number from raw_stripe.charges where id = 'ch_A5'").fetchone()
        all_tables = {r[0] for r in con.execute(
            "select table_name from information_schema.tables where table_schema = 'raw_stripe'").fetchall()}
    source_charges = {c["id"]: (c["amount"], acct) for acct, a in data["accounts"].items() for c in a["charges"]}
    assert charges == {cid: amount for cid, (amount, _) in source_charges.items()}
    assert owners == {cid: acct for cid, (_, acct) in source_charges.items()}
    assert invoice == ("INV-0005",)
    assert _column_types(db, "raw_stripe", "charges")["amount"] == "BIGINT"
    # Embedded lists that repeat other resources' rows are dropped, not landed twice.
    assert not {"charges__refunds__data", "disputes__balance_transactions"} & all_tables

    _stripe_run(path, pipeline)  # nothing new at the source
    assert _loaded_rows(pipeline) == {}
    assert _snapshot(db, "raw_stripe", tables, "id") == first

    data["accounts"][BETA]["charges"] += stripe_charge_bundle("ch_B3", T0 + 5000, 999, "cus_B1", "INV-1003")["charges"]
    data["accounts"][BETA]["balance_transactions"] += stripe_charge_bundle(
        "ch_B3", T0 + 5000, 999, "cus_B1", "INV-1003")["balance_transactions"]
    write_stripe_json(tmp_path, data)
    _stripe_run(path, pipeline)  # a restarted server with one new charge
    assert _loaded_rows(pipeline) == {"charges": 1, "balance_transactions": 1}
    after = _snapshot(db, "raw_stripe", tables, "id")
    assert len(after["charges"]) == len(first["charges"]) + 1
    assert set(first["charges"]) < set(after["charges"])  # old rows untouched


def test_stripe_source_can_be_limited_to_named_accounts(tmp_path: Path) -> None:
    db = tmp_path / "warehouse.duckdb"
    path = write_stripe_json(tmp_path)
    pipeline = _pipeline(tmp_path, "stripe_beta", dlt.destinations.duckdb(str(db)))
    with serve_app(stripe_server.create_app(path)) as url:
        pipeline.run(stripe_source(STRIPE_KEY, api_base=url, accounts=[BETA]))
    assert _loaded_rows(pipeline) == {"accounts": 1, "customers": 1, "charges": 2, "payment_intents": 2,
                                      "balance_transactions": 2}


def test_erpnext_load_keeps_decimals_exact_then_is_idempotent_then_picks_up_changes(tmp_path: Path) -> None:
    data, db = build_erpnext(), tmp_path / "warehouse.duckdb"
    path = write_erpnext_json(tmp_path, data)
    pipeline = _pipeline(tmp_path, "erpnext", dlt.destinations.duckdb(str(db)))

    _erp_run(path, pipeline)  # page_size=3: every doctype with >3 rows is read over several pages
    expected = {ERP_TABLES[d]: len(docs) for d, docs in data["doctypes"].items()}
    assert _loaded_rows(pipeline) == expected
    first = _snapshot(db, "raw_erpnext", list(expected), "name")
    assert {t: len(rows) for t, rows in first.items()} == expected

    gl_types = _column_types(db, "raw_erpnext", "gl_entry")
    assert gl_types["debit"].startswith("DECIMAL") and gl_types["credit"].startswith("DECIMAL")
    assert gl_types["posting_date"] == "DATE"
    assert _column_types(db, "raw_erpnext", "sales_invoice")["grand_total"].startswith("DECIMAL")
    assert _column_types(db, "raw_erpnext", "bank_transaction")["deposit"].startswith("DECIMAL")
    with duckdb.connect(str(db), read_only=True) as con:
        debits = dict(con.execute("select name, debit from raw_erpnext.gl_entry").fetchall())
        credits = dict(con.execute("select name, credit from raw_erpnext.gl_entry").fetchall())
        totals = dict(con.execute("select name, grand_total from raw_erpnext.sales_invoice").fetchall())
    assert debits == {e["name"]: Decimal(e["debit"]) for e in data["doctypes"]["GL Entry"]}
    assert credits == {e["name"]: Decimal(e["credit"]) for e in data["doctypes"]["GL Entry"]}
    assert totals == {i["name"]: i["grand_total"] for i in data["doctypes"]["Sales Invoice"]}
    assert debits["ACC-GLE-2026-00003"] + debits["ACC-GLE-2026-00006"] == Decimal("0.3")

    _erp_run(path, pipeline)  # nothing changed at the source
    assert _loaded_rows(pipeline) == {}
    assert _snapshot(db, "raw_erpnext", list(expected), "name") == first

    invoice = data["doctypes"]["Sales Invoice"][1]
    invoice.update(grand_total=Decimal("0.15"), modified="2026-02-01 09:00:00.000000")
    data["doctypes"]["GL Entry"].append(gl_entry("ACC-GLE-2026-00008", "2026-02-01 09:00:00.000000",
                                                 "Beta GmbH", "Bank - BG", "987654.321", "0",
                                                 "Payment Entry", "ACC-PAY-2026-00002"))
    write_erpnext_json(tmp_path, data)
    _erp_run(path, pipeline)  # a restarted server with one edit and one new document
    assert _loaded_rows(pipeline) == {"sales_invoice": 1, "gl_entry": 1}
    with duckdb.connect(str(db), read_only=True) as con:
        assert con.execute("select count(*) from raw_erpnext.sales_invoice").fetchone() == (3,)
        assert con.execute("select grand_total from raw_erpnext.sales_invoice where name = ?",
                           [invoice["name"]]).fetchone() == (Decimal("0.15"),)
        assert con.execute("select debit from raw_erpnext.gl_entry where name = 'ACC-GLE-2026-00008'"
                           ).fetchone() == (Decimal("987654.321"),)


def _chain(exc: BaseException | None) -> Iterator[BaseException]:
    while exc is not None:
        yield exc
        exc = exc.__cause__ or exc.__context__


def _erp_failure(run: Callable[[], Any]) -> ErpNextError:
    with pytest.raises(PipelineStepFailed) as failed:
        run()
    errors = [e for e in _chain(failed.value) if isinstance(e, ErpNextError)]
    assert errors, f"no ErpNextError in {failed.value!r}"
    return errors[0]


def test_erpnext_errors_name_doctype_url_and_status(tmp_path: Path) -> None:
    path = write_erpnext_json(tmp_path)
    pipeline = _pipeline(tmp_path, "erp_errors", dlt.destinations.duckdb(str(tmp_path / "w.duckdb")))
    with serve_app(frappe_server.create_app(path)) as url:
        error = _erp_failure(lambda: pipeline.extract(erpnext_source(url, ERP_KEY, "wrong-secret")))
        assert "Company" in str(error) and "401" in str(error) and "/api/resource/Company" in str(error)
        error = _erp_failure(lambda: pipeline.extract(
            erpnext_source(url, ERP_KEY, ERP_SECRET, doctypes=["Spaceship"])))
        assert "Spaceship" in str(error) and "404" in str(error) and "DoesNotExistError" in str(error)


def test_erpnext_transient_server_errors_are_retried(tmp_path: Path) -> None:
    path = write_erpnext_json(tmp_path)
    real = frappe_server.create_app(path)
    failures = {"left": 2}

    async def flaky(scope: dict[str, Any], receive: Any, send: Any) -> None:
        # A real server that fails the first two requests with 503, then behaves.
        if scope["type"] == "http" and failures["left"] > 0:
            failures["left"] -= 1
            await send({"type": "http.response.start", "status": 503, "headers": []})
            await send({"type": "http.response.body", "body": b"busy"})
            return
        await real(scope, receive, send)

    pipeline = _pipeline(tmp_path, "erp_flaky", dlt.destinations.duckdb(str(tmp_path / "w.duckdb")))
    with serve_app(flaky) as url:
        pipeline.run(erpnext_source(url, ERP_KEY, ERP_SECRET, doctypes=["Company"]))
    assert failures["left"] == 0 and _loaded_rows(pipeline) == {"company": 2}


@pytest.mark.postgres
def test_both_sources_load_into_postgresql_with_exact_types(tmp_path: Path, postgres_url: str) -> None:
    stripe_path, erp_path = write_stripe_json(tmp_path), write_erpnext_json(tmp_path)
    destination = warehouse_destination(parse_warehouse_url(postgres_url))
    stripe_pipeline = _pipeline(tmp_path, "pg_stripe", destination)
    erp_pipeline = _pipeline(tmp_path, "pg_erpnext", destination)
    _stripe_run(stripe_path, stripe_pipeline)
    _erp_run(erp_path, erp_pipeline)
    _erp_run(erp_path, erp_pipeline)  # merge into PostgreSQL is idempotent too
    assert _loaded_rows(erp_pipeline) == {}

    gl = build_erpnext()["doctypes"]["GL Entry"]
    with psycopg2.connect(postgres_url) as con, con.cursor() as cur:
        cur.execute("select id, amount from raw_pg_stripe.charges")
        amounts = dict(cur.fetchall())
        cur.execute("select name, debit from raw_pg_erpnext.gl_entry")
        debits = dict(cur.fetchall())
        cur.execute("select table_name, column_name, data_type from information_schema.columns "
                    "where (table_schema, table_name, column_name) in "
                    "(('raw_pg_erpnext', 'gl_entry', 'debit'), ('raw_pg_stripe', 'charges', 'amount'))")
        types = {(t, c): dt for t, c, dt in cur.fetchall()}
    con.close()
    assert amounts["ch_A5"] == 12345 and len(amounts) == 7
    assert debits == {e["name"]: Decimal(e["debit"]) for e in gl}
    assert types == {("gl_entry", "debit"): "numeric", ("charges", "amount"): "bigint"}
