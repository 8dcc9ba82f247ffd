"""The Great Expectations gate on the revenue mart: passes good data, names what is wrong with bad data,
works on DuckDB and PostgreSQL, and leaves a DuckDB file free for the next writer."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import duckdb
import pytest
import sqlalchemy as sa

from ez360.core.warehouse import Warehouse, parse_warehouse_url
from quality.gx_duckdb import DUCKDB_DIALECT, duckdb_enabled, enable_duckdb
from quality.runner import GateResult, run_suite
from quality.suites import REVENUE_MART, SUITES, revenue_mart_suite
from tests.support.raw_ops_fixture import SAMPLE_REVENUE_MART, create_raw_ops, cursor
from tests.test_dbt_project import dbt_build

REPO_ROOT = Path(__file__).resolve().parents[1]
SCHEMA, TABLE = REVENUE_MART
MART_DDL = """
    company_id bigint, company_slug varchar, company_name varchar, revenue_month date, currency varchar,
    currency_exponent integer, invoice_count bigint, net_revenue_minor bigint, tax_minor bigint,
    gross_revenue_minor bigint
"""
COMPANY_IDS = {"acme": 1, "sakura": 2, "gulf": 3}


def mart_rows() -> list[list]:
    """The revenue mart the sample raw data produces, as full rows (mutable, for breaking on purpose)."""
    return [[COMPANY_IDS[slug], slug, slug.title(), month, currency, exp, count, net, tax, gross]
            for slug, month, currency, exp, count, net, tax, gross in SAMPLE_REVENUE_MART]


def write_mart(warehouse: Warehouse, rows: list[list]) -> None:
    statements = [f"create schema if not exists {SCHEMA}", f"drop table if exists {SCHEMA}.{TABLE}",
                  f"create table {SCHEMA}.{TABLE} ({MART_DDL})"]
    placeholder = "?" if warehouse.kind == "duckdb" else "%s"
    with cursor(warehouse) as cur:
        for statement in statements:
            cur.execute(statement)
        if rows:
            cur.executemany(f"insert into {SCHEMA}.{TABLE} values ({', '.join([placeholder] * 10)})", rows)


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request, tmp_path) -> Warehouse:
    if request.param == "duckdb":
        return parse_warehouse_url(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    return parse_warehouse_url(request.getfixturevalue("postgres_url"))


def gate(warehouse: Warehouse) -> GateResult:
    return run_suite(warehouse.sqlalchemy_url(), SCHEMA, TABLE, revenue_mart_suite())


def test_revenue_gate_passes_on_a_good_mart(warehouse):
    write_mart(warehouse, mart_rows())

    result = gate(warehouse)

    assert result.success, result.summary()
    assert result.failed == []
    assert result.evaluated == len(revenue_mart_suite().expectations) >= 10
    assert "passed" in result.summary()


def test_revenue_gate_fails_naming_negative_revenue(warehouse):
    rows = mart_rows()
    rows[0][9] = -48_000_000_000  # gross_revenue_minor: more credited than ever invoiced
    write_mart(warehouse, rows)

    result = gate(warehouse)

    assert not result.success
    assert [(f.name, f.column) for f in result.failed] == [("unexpected_rows_expectation", None)]
    assert result.failed[0].sample_keys == [f"{rows[0][0]}|{rows[0][4]}"]
    assert "revenue per company and currency over all months is not negative" in result.summary()


def test_revenue_gate_fails_naming_unknown_currency(warehouse):
    rows = mart_rows()
    rows[0][4] = "XBT"  # currency
    write_mart(warehouse, rows)

    result = gate(warehouse)

    assert not result.success
    assert [(f.name, f.column) for f in result.failed] == [("expect_column_values_to_be_in_set", "currency")]
    assert "XBT" in result.failed[0].details
    assert "1 of" in result.summary() and "XBT" in result.summary()


def test_revenue_gate_fails_on_an_empty_mart_and_on_duplicate_keys(tmp_path):
    warehouse = parse_warehouse_url(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    write_mart(warehouse, [])
    assert [f.name for f in gate(warehouse).failed] == ["expect_table_row_count_to_be_between"]

    rows = mart_rows()
    write_mart(warehouse, rows + [rows[0]])
    failed = gate(warehouse).failed
    assert [(f.name, f.column) for f in failed] == [
        ("expect_compound_columns_to_be_unique", "company_id, revenue_month, currency")
    ]


def test_duckdb_file_is_free_for_a_writer_in_the_same_process_after_the_gate(tmp_path):
    warehouse = parse_warehouse_url(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    write_mart(warehouse, mart_rows())

    assert gate(warehouse).success

    # duckdb_engine opens the file with its own configuration: while GX still held a connection, this
    # raised "Can't open a connection to same database file with a different configuration".
    con = duckdb.connect(str(warehouse.path))
    try:
        con.execute(f"delete from {SCHEMA}.{TABLE} where currency = 'EUR'")
    finally:
        con.close()


def test_duckdb_file_is_free_even_when_the_gate_cannot_find_its_table(tmp_path):
    warehouse = parse_warehouse_url(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    write_mart(warehouse, mart_rows())

    with pytest.raises(Exception, match="no_such_table"):
        run_suite(warehouse.sqlalchemy_url(), SCHEMA, "no_such_table", revenue_mart_suite())

    con = duckdb.connect(str(warehouse.path))
    con.execute("create table main.written_after_the_gate as select 1 as x")
    con.close()


def test_gate_passes_on_the_mart_dbt_builds_in_the_same_process(tmp_path, monkeypatch):
    url = f"duckdb:///{tmp_path / 'warehouse.duckdb'}"
    warehouse = create_raw_ops(url)
    assert dbt_build(url, tmp_path, monkeypatch).success

    result = run_suite(warehouse.sqlalchemy_url(), *REVENUE_MART, SUITES[REVENUE_MART]())

    assert result.success, result.summary()
    duckdb.connect(str(warehouse.path)).close()


def test_enable_duckdb_is_idempotent():
    from great_expectations.execution_engine import sqlalchemy_execution_engine as gx_engine

    enable_duckdb()
    enable_duckdb()

    assert duckdb_enabled()
    duckdb_entries = [d for d in gx_engine._PERSISTED_CONNECTION_DIALECTS if d.value == "duckdb"]
    assert duckdb_entries == [DUCKDB_DIALECT] and "duckdb" in gx_engine._PERSISTED_CONNECTION_DIALECTS


# One expectation on a DuckDB table in the default schema, in a fresh interpreter so that this
# process's patch does not leak in. Prints {"success": bool, "errors": [messages]}.
_ONE_EXPECTATION = """
import json, sys
import duckdb, great_expectations as gx

path, with_workaround = sys.argv[1], sys.argv[2] == "1"
con = duckdb.connect(path)
con.execute("create table t as select * from range(3) r(n)")
con.close()
if with_workaround:
    from quality.gx_duckdb import enable_duckdb
    enable_duckdb()
context = gx.get_context(mode="ephemeral")
asset = context.data_sources.add_sql(name="w", connection_string=f"duckdb:///{path}").add_table_asset(
    name="t", table_name="t")
result = asset.add_batch_definition_whole_table("all").get_batch().validate(
    gx.expectations.ExpectTableRowCountToBeBetween(min_value=1))
info = result.exception_info or {}
errors = [v.get("exception_message", "") for v in info.values() if isinstance(v, dict)]
if info.get("raised_exception"):
    errors.append(info.get("exception_message", ""))
print(json.dumps({"success": bool(result.success), "errors": errors}))
"""


def run_one_expectation_on_duckdb(tmp_path: Path, with_workaround: bool) -> dict:
    proc = subprocess.run(
        [sys.executable, "-c", _ONE_EXPECTATION, str(tmp_path / "canary.duckdb"), "1" if with_workaround else "0"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=300,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    return json.loads(proc.stdout.strip().splitlines()[-1])


def test_gx_duckdb_workaround_still_needed(tmp_path):
    outcome = run_one_expectation_on_duckdb(tmp_path, with_workaround=False)

    if outcome["success"]:
        pytest.fail("GX now works on DuckDB without quality/gx_duckdb.py: remove the workaround")
    assert any("list index out of range" in e for e in outcome["errors"]), (
        f"GX fails on DuckDB for a new reason, not the known IndexError: {outcome['errors']}"
    )


def test_gx_validates_duckdb_with_the_workaround(tmp_path):
    outcome = run_one_expectation_on_duckdb(tmp_path, with_workaround=True)

    assert outcome == {"success": True, "errors": []}


def test_duckdb_default_schema_workaround_still_needed(tmp_path):
    """quality.gx_duckdb.use_default_schema exists because duckdb_engine cannot reflect columns on DuckDB
    1.4, so GX falls back to an unqualified SELECT. When reflection works again, drop it."""
    path = tmp_path / "reflect.duckdb"
    con = duckdb.connect(str(path))
    con.execute("create schema marts; create table marts.t (n integer)")
    con.close()
    engine = sa.create_engine(f"duckdb:///{path}")
    try:
        reflected = sa.inspect(engine).get_columns("t", schema="marts")
    except sa.exc.SQLAlchemyError:
        return
    finally:
        engine.dispose()
    pytest.fail(f"duckdb_engine reflects DuckDB columns again ({reflected}): "
                "remove use_default_schema from quality/gx_duckdb.py")
