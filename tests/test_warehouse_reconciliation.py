"""fct_reconciliation_items on the demo universe reports exactly the injected discrepancies of ground_truth.json:
every source id the ground truth names sits on a discrepancy row (of its pair), every discrepancy row names a
ground-truth id. Built once per engine (tests/support/warehouse_world.py)."""

from __future__ import annotations

import pytest

PAIRS = {
    "ops_payment~stripe_charge", "stripe_balance_transaction~stripe_payout", "stripe_payout~erp_bank_transaction",
    "stripe_charge~erp_payment_entry", "stripe_refund~erp_journal_entry", "stripe_balance_transaction~erp_gl_entry",
    "ops_invoice~erp_sales_invoice", "ops_ledger~erp_gl",
}


def named_ids(row: dict) -> set[str]:
    ids = {row["left_id"], row["right_id"], *(row["related_ids"] or "").split()}
    return {i for i in ids if i}


def truth_ids(item: dict) -> set[str]:
    return {i for ids in item["source_ids"].values() for i in ids}


@pytest.fixture(scope="module")
def items(warehouse_world):
    return warehouse_world.query("select * from marts.fct_reconciliation_items")


def test_dbt_build_passes_every_model_and_test(warehouse_world):
    failing = {n: s for n, s in warehouse_world.dbt_statuses.items() if s not in ("pass", "success")}
    assert not failing, failing
    assert "fct_reconciliation_items" in warehouse_world.dbt_statuses


def test_every_pair_is_reconciled_and_most_items_match(items):
    assert {row["pair"] for row in items} == PAIRS
    for pair in PAIRS:
        rows = [r for r in items if r["pair"] == pair]
        matched = sum(1 for r in rows if r["status"] == "matched")
        assert matched >= 0.75 * len(rows), (pair, matched, len(rows))


def test_discrepancies_are_exactly_the_injected_ones(warehouse_world, items):
    truth = warehouse_world.ground_truth["discrepancies"]
    all_truth_ids = set().union(*(truth_ids(t) for t in truth))
    discrepancies = [r for r in items if r["is_discrepancy"]]
    assert all(r["status"] not in ("matched", "pending") for r in discrepancies)

    # no false positive: every discrepancy row names an injected source id
    unexplained = [(r["pair"], r["status"], r["left_id"], r["right_id"], r["related_ids"])
                   for r in discrepancies if not named_ids(r) & all_truth_ids]
    assert unexplained == []

    # no miss: every id of every injected discrepancy sits on a discrepancy row, one of them of its own pair
    for item in truth:
        for source_id in truth_ids(item):
            assert any(source_id in named_ids(r) for r in discrepancies), (item["kind"], source_id)
        own_pair = [r for r in discrepancies if r["pair"] == item["pair"] and named_ids(r) & truth_ids(item)]
        assert own_pair, (item["kind"], item["pair"])
    assert not [r for r in items if r["status"] == "pending"]


def test_each_kind_gets_the_status_that_describes_it(warehouse_world, items):
    by_kind = {t["kind"]: t for t in warehouse_world.ground_truth["discrepancies"]}

    def rows(pair, source_id):
        return [r for r in items if r["pair"] == pair and source_id in named_ids(r)]

    failed_payout, failure_txn = by_kind["payout_failed"]["source_ids"]["stripe"]
    for pair in ("stripe_payout~erp_bank_transaction", "stripe_balance_transaction~stripe_payout"):
        (row,) = rows(pair, failed_payout)
        assert row["status"] == "failed" and failure_txn in named_ids(row)
    never_arrived = by_kind["payout_missing_from_bank"]["source_ids"]["stripe"][0]
    (missing,) = rows("stripe_payout~erp_bank_transaction", never_arrived)
    assert missing["status"] == "missing_in_bank"

    charge = by_kind["payment_entry_cancelled_in_erp"]["source_ids"]["stripe"][0]
    cancelled_entry = by_kind["payment_entry_cancelled_in_erp"]["source_ids"]["erpnext"][0]
    (row,) = rows("stripe_charge~erp_payment_entry", charge)
    assert row["status"] == "missing_in_erpnext" and row["right_id"] is None
    assert cancelled_entry in named_ids(row)  # shown as the cancelled candidate, never matched
    assert not [r for r in items if r["right_id"] == cancelled_entry and r["status"] == "matched"]

    original, duplicate = by_kind["duplicate_charge"]["source_ids"]["stripe"]
    assert {r["status"] for r in rows("ops_payment~stripe_charge", duplicate)} == {"duplicate"}
    assert {r["status"] for r in rows("ops_payment~stripe_charge", original)} == {"duplicate"}

    timing = by_kind["timing_difference_month_end"]
    (row,) = rows("stripe_charge~erp_payment_entry", timing["source_ids"]["stripe"][0])
    assert row["status"] == "timing_difference" and row["right_id"] == timing["source_ids"]["erpnext"][0]

    fee = by_kind["fee_mismatch"]
    (row,) = rows("stripe_balance_transaction~erp_gl_entry", fee["source_ids"]["stripe"][0])
    assert row["status"] == "amount_mismatch" and abs(row["difference_minor"]) == fee["amount_minor"]

    invoice = by_kind["invoice_total_mismatch"]
    (row,) = rows("ops_invoice~erp_sales_invoice", invoice["source_ids"]["ops"][0])
    assert row["status"] == "amount_mismatch" and abs(row["difference_minor"]) == invoice["amount_minor"]

    (row,) = rows("ops_payment~stripe_charge", by_kind["payment_missing_in_stripe"]["source_ids"]["ops"][0])
    assert row["status"] == "missing_in_stripe"
    refund = by_kind["refund_not_booked_in_erp"]["source_ids"]["stripe"][0]
    (row,) = rows("stripe_refund~erp_journal_entry", refund)
    assert row["status"] == "missing_in_erpnext"


def test_every_amount_is_an_integer_in_minor_units_and_keys_are_unique(items):
    assert len({r["item_key"] for r in items}) == len(items)
    for row in items:
        for column in ("amount_minor", "other_amount_minor", "difference_minor"):
            assert row[column] is None or isinstance(row[column], int), (column, row[column])


def test_a_resolution_recorded_in_the_ops_app_keeps_its_item_resolved(warehouse_world_duckdb):
    """Finance resolves an item in the ops app: the resolution flows back through the ops ingest and the item
    comes out resolved (its status kept), the other items untouched."""
    from sqlalchemy import create_engine, text

    from ingest.runner import run_source

    world = warehouse_world_duckdb
    # the shared world may hold decisions other tests recorded: they stay as they were
    resolved_before = {r["item_key"] for r in world.query("select item_key from marts.fct_reconciliation_items "
                                                          "where is_resolved")}
    item = world.query("select * from marts.fct_reconciliation_items where pair = 'stripe_refund~erp_journal_entry'"
                       " and status = 'missing_in_erpnext'")[0]
    finance = world.ops_query("select m.user_id from memberships m where m.company_id = :c and m.role = 'finance'",
                              {"c": item["company_id"]})[0]["user_id"]
    engine = create_engine(world.settings.database_url)
    with engine.begin() as conn:
        conn.execute(text("insert into reconciliation_resolutions (company_id, pair, item_key, action, note, user_id) "
                          "values (:c, :p, :k, 'written_off', 'refund booked by hand in the ERP', :u)"),
                     {"c": item["company_id"], "p": item["pair"], "k": item["item_key"], "u": finance})
    engine.dispose()

    run_source("ops", world.settings)
    assert world.dbt("run", "--select", "stg_ops__reconciliation_resolutions+").success

    rows = {r["item_key"]: r for r in world.query("select * from marts.fct_reconciliation_items")}
    resolved = rows[item["item_key"]]
    assert (resolved["status"], resolved["effective_status"], resolved["resolution_action"]) == (
        "missing_in_erpnext", "resolved", "written_off")
    assert resolved["resolved_by_user_id"] == finance and resolved["is_resolved"]
    assert {key for key, r in rows.items() if r["is_resolved"]} == resolved_before | {item["item_key"]}
