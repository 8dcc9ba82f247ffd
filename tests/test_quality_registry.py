"""Gates declared as data (quality/gates.py): every published mart has one, raw gates name bad rows by key,
and the row-count and quarantine bounds hold, on DuckDB and PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from ez360.core.warehouse import Warehouse, parse_warehouse_url
from pipelines.gates import mart_gates
from pipelines.warehouse import published_marts
from quality.gates import GATES, GateContext, gates_for
from quality.runner import GateResult, SchemaValidator
from tests.support.raw_ops_fixture import create_raw_ops, cursor, insert_rows, sample_rows
from tests.test_quality_gate import mart_rows, write_mart


@pytest.fixture(params=["duckdb", pytest.param("postgres", marks=pytest.mark.postgres)])
def warehouse(request, tmp_path) -> Warehouse:
    if request.param == "duckdb":
        return parse_warehouse_url(f"duckdb:///{tmp_path / 'warehouse.duckdb'}")
    return parse_warehouse_url(request.getfixturevalue("postgres_url"))


def run_gate(warehouse: Warehouse, table: str, ctx: GateContext | None = None, gate=None) -> GateResult:
    gate = gate or GATES[table]
    with SchemaValidator(warehouse.sqlalchemy_url(), gate.schema_name) as validator:
        return validator.run(gate.table_name, gate.suite(ctx or GateContext(engine=warehouse.kind)), gate.keys)


def test_every_published_mart_has_a_declared_gate():
    published = published_marts()
    assert "marts.rpt_revenue_by_company_month" in published
    undeclared = [t for t in published if t not in GATES or GATES[t].layer != "mart"]
    assert undeclared == [], f"published marts without a gate in quality/gates.py: {undeclared}"
    assert {g.table for g in gates_for("mart")} <= set(published), "a gate for a mart that is not published"


def test_a_published_mart_without_a_declared_suite_gets_a_gate_that_always_fails(tmp_path):
    warehouse = parse_warehouse_url(f"duckdb:///{tmp_path / 'w.duckdb'}")
    with cursor(warehouse) as cur:
        cur.execute("create schema marts; create table marts.fct_brand_new as select 1 as id")
    [gate] = mart_gates(["marts.fct_brand_new"])

    result = run_gate(warehouse, gate.table, gate=gate)

    assert not result.success
    assert "no quality suite is declared for published table marts.fct_brand_new" in result.summary()


def test_revenue_mart_gate_ties_out_to_raw_invoices_and_names_the_company_that_does_not(warehouse):
    create_raw_ops(warehouse)
    with cursor(warehouse) as cur:  # the credit notes' staging view (a rename) as dbt builds it
        cur.execute("create schema if not exists staging")
        cur.execute("create view staging.stg_ops__credit_notes as select * from raw_ops.credit_notes")
    rows = mart_rows()
    write_mart(warehouse, rows)
    assert run_gate(warehouse, "marts.rpt_revenue_by_company_month").success

    rows[0][9] += 1  # one minor unit more gross revenue than the invoices say
    write_mart(warehouse, rows)
    result = run_gate(warehouse, "marts.rpt_revenue_by_company_month")

    assert [f.name for f in result.failed] == ["unexpected_rows_expectation"]
    assert result.failed[0].sample_keys == [f"{rows[0][0]}|{rows[0][4]}"]


def test_raw_gates_pass_on_clean_raw_ops(warehouse):
    create_raw_ops(warehouse)
    for gate in gates_for("raw"):
        if gate.schema_name == "raw_ops":
            result = run_gate(warehouse, gate.table)
            assert result.success, result.summary()


def test_raw_gate_names_each_bad_row_by_its_key(warehouse):
    rows = sample_rows()
    create_raw_ops(warehouse, rows=rows)
    good = dict(rows["invoices"][0])
    insert_rows(warehouse, "invoices", [
        {**good, "id": 9001, "number": "BAD-1", "currency": "XBT"},  # not ISO 4217
        {**good, "id": 9002, "number": "BAD-2", "created_at": datetime(2099, 1, 1, tzinfo=UTC)},  # in the future
        {**good, "number": "BAD-3"},  # the first invoice's id again
    ])

    result = run_gate(warehouse, "raw_ops.invoices")

    failed = {(f.name, f.column): f for f in result.failed}
    assert set(failed) == {("expect_column_values_to_be_in_set", "currency"),
                           ("expect_column_values_to_be_between", "created_at"),
                           ("expect_column_values_to_be_unique", "id")}
    assert failed["expect_column_values_to_be_in_set", "currency"].sample_keys == ["9001"]
    assert failed["expect_column_values_to_be_in_set", "currency"].unexpected_count == 1
    assert failed["expect_column_values_to_be_between", "created_at"].sample_keys == ["9002"]
    assert failed["expect_column_values_to_be_unique", "id"].sample_keys == [str(good["id"])] * 2


def test_a_load_far_smaller_than_the_last_one_fails_its_gate(tmp_path):
    warehouse = parse_warehouse_url(f"duckdb:///{tmp_path / 'w.duckdb'}")
    create_raw_ops(warehouse)
    landed = run_gate(warehouse, "raw_ops.invoices").row_count
    assert landed and landed > 2

    assert run_gate(warehouse, "raw_ops.invoices", GateContext(previous_row_count=landed)).success
    shrunk = run_gate(warehouse, "raw_ops.invoices", GateContext(previous_row_count=landed * 3))

    assert [f.name for f in shrunk.failed] == ["expect_table_row_count_to_be_between"]


def test_quarantine_share_over_the_threshold_fails_naming_the_records(warehouse):
    since = datetime(2026, 1, 1, tzinfo=UTC)
    with cursor(warehouse) as cur:
        cur.execute("create schema if not exists raw_stripe")
        cur.execute("create table raw_stripe._quarantine (source text, table_name text, record_key text, "
                    "reason text, payload text, load_id text, quarantined_at timestamptz)")
        placeholder = "?" if warehouse.kind == "duckdb" else "%s"
        cur.executemany(f"insert into raw_stripe._quarantine values ({', '.join([placeholder] * 7)})", [
            ("stripe", "charges", f"ch_{n}", "unknown_currency:currency", "{}", "l1", datetime(2026, 1, 2, tzinfo=UTC))
            for n in range(3)] + [
            ("stripe", "charges", "ch_old", "missing_field:id", "{}", "l0", datetime(2025, 1, 2, tzinfo=UTC))])

    def gate(rows_loaded: int) -> GateResult:
        return run_gate(warehouse, "raw_stripe._quarantine",
                        GateContext(load_started_at=since, rows_loaded=rows_loaded, engine=warehouse.kind))

    assert gate(rows_loaded=1000).success  # 3 of 1003: under 5 %
    failed = gate(rows_loaded=10)  # 3 of 13
    assert not failed.success
    assert sorted(failed.failed[0].sample_keys) == ["charges|ch_0", "charges|ch_1", "charges|ch_2"]
    assert failed.failed[0].unexpected_count == 3
