"""The demo world is one consistent, deterministic universe whose injected discrepancies are real."""

from __future__ import annotations

import json
from collections import defaultdict
from datetime import UTC, datetime
from decimal import Decimal

import pytest
from sqlalchemy import create_engine, text

from ez360.core.money import from_minor
from ez360.core.settings import Settings
from ez360.demo.discrepancies import KINDS
from ez360.demo.generate import OpsDbNotEmpty, generate


def _world(tmp_path, seed=42):
    settings = Settings(_env_file=None, var_dir=tmp_path)
    result = generate(settings, seed, 1)
    load = {name: json.loads(path.read_text(), parse_float=Decimal) for name, path in result.files.items()}
    return settings, result, load


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    return _world(tmp_path_factory.mktemp("world"))


def _ops(settings, sql):
    engine = create_engine(settings.database_url)
    with engine.connect() as conn:
        rows = conn.execute(text(sql)).mappings().all()
    engine.dispose()
    return rows


def test_same_seed_gives_byte_identical_worlds_and_another_seed_does_not(world, tmp_path):
    _, first, _ = world
    _, again, _ = _world(tmp_path / "again")
    _, other, _ = _world(tmp_path / "other", seed=7)
    for name in ("stripe", "erpnext", "ground_truth"):
        assert first.files[name].read_bytes() == again.files[name].read_bytes(), name
    assert first.files["ground_truth"].read_bytes() != other.files["ground_truth"].read_bytes()


def test_seeding_refuses_to_overwrite_real_ops_data_without_reset(world):
    settings, _, _ = world
    with pytest.raises(OpsDbNotEmpty, match="--reset"):
        generate(settings, 42, 1)


def test_ops_world_has_companies_roles_currencies_and_a_year_of_activity(world):
    settings, _, _ = world
    assert len(_ops(settings, "select id from companies")) >= 3
    roles = {(r["company_id"], r["role"]) for r in _ops(settings, "select company_id, role from memberships")}
    for company in _ops(settings, "select id from companies"):
        assert {"owner", "admin", "finance", "staff", "viewer"} <= {role for c, role in roles if c == company["id"]}
    currencies = {r["currency"] for r in _ops(settings, "select distinct currency from invoices")}
    assert {"USD", "EUR", "JPY", "KWD"} <= currencies
    months = {r["m"] for r in _ops(settings, "select distinct substr(occurred_at, 1, 7) as m from usage_events")}
    assert len(months) >= 12
    for table in ("clients", "projects", "time_entries", "payments", "expenses", "journal_entries"):
        assert _ops(settings, f"select count(*) as n from {table}")[0]["n"] > 0, table


def test_ops_books_balance_and_invoice_payments_add_up(world):
    settings, _, _ = world
    unbalanced = _ops(settings, """select journal_entry_id from journal_lines group by journal_entry_id
                                   having sum(debit_minor) != sum(credit_minor)""")
    assert unbalanced == []
    mismatched = _ops(settings, """select i.number from invoices i
                                   left join payment_allocations a on a.invoice_id = i.id
                                   group by i.id, i.number, i.amount_paid_minor
                                   having coalesce(sum(a.amount_minor), 0) != i.amount_paid_minor""")
    assert mismatched == []
    wrong_status = _ops(settings, """select number from invoices
                                     where (status = 'paid' and amount_paid_minor != total_minor)
                                     or (status = 'sent' and amount_paid_minor != 0)""")
    assert wrong_status == []


def test_stripe_world_matches_ops_payments_and_payouts_add_up(world):
    settings, _, files = world
    truth = files["ground_truth"]["discrepancies"]
    missing = {ref for d in truth if d["kind"] == "payment_missing_in_stripe" for ref in d["source_ids"]["ops"]}
    charges, txns, payouts = {}, {}, []
    for account in files["stripe"]["accounts"].values():
        charges.update({c["id"]: c for c in account["charges"]})
        txns.update({t["id"]: t for t in account["balance_transactions"]})
        payouts += account["payouts"]
    for p in _ops(settings, "select stripe_charge_id, amount_minor, currency from payments where method='stripe'"):
        if p["stripe_charge_id"] in missing:
            assert p["stripe_charge_id"] not in charges
            continue
        charge = charges[p["stripe_charge_id"]]
        assert (charge["amount"], charge["currency"]) == (p["amount_minor"], p["currency"].lower())
        assert txns[charge["balance_transaction"]]["fee"] > 0
    for payout in payouts:
        settled = [t for t in txns.values() if t["payout"] == payout["id"] and t["type"] != "payout"]
        assert sum(t["net"] for t in settled) == payout["amount"]


def test_erpnext_general_ledger_balances_per_voucher(world):
    _, _, files = world
    totals = defaultdict(lambda: [Decimal(0), Decimal(0)])
    for gl in files["erpnext"]["doctypes"]["GL Entry"]:
        totals[gl["voucher_no"]][0] += gl["debit"]
        totals[gl["voucher_no"]][1] += gl["credit"]
    assert totals and all(d == c for d, c in totals.values())


def test_ground_truth_names_every_documented_kind_and_each_is_really_there(world):
    settings, _, files = world
    truth = files["ground_truth"]
    assert (truth["seed"], truth["scale"], truth["format_version"]) == (42, 1, 1)
    by_kind = {d["kind"]: d for d in truth["discrepancies"]}
    assert set(by_kind) == set(KINDS)
    assert all(d["pair"] == KINDS[d["kind"]] for d in truth["discrepancies"])
    stripe = files["stripe"]["accounts"].values()
    erp = files["erpnext"]["doctypes"]
    charges = {c["id"]: c for a in stripe for c in a["charges"]}
    txns = {t["id"]: t for a in stripe for t in a["balance_transactions"]}

    payout = by_kind["payout_missing_from_bank"]["source_ids"]["stripe"][0]
    assert any(p["id"] == payout for a in stripe for p in a["payouts"])
    assert payout not in {b["reference_number"] for b in erp["Bank Transaction"]}

    fee = by_kind["fee_mismatch"]
    journal = next(j for j in erp["Journal Entry"] if j["name"] == fee["source_ids"]["erpnext"][0])
    txn = txns[fee["source_ids"]["stripe"][0]]
    assert journal["total_debit"] != from_minor(txn["fee"], txn["currency"].upper())

    original, duplicate = by_kind["duplicate_charge"]["source_ids"]["stripe"]
    assert charges[original]["metadata"]["invoice_number"] == charges[duplicate]["metadata"]["invoice_number"]
    ops_charges = {r["stripe_charge_id"] for r in _ops(settings, "select stripe_charge_id from payments")}
    assert original in ops_charges and duplicate not in ops_charges

    refund = by_kind["refund_not_booked_in_erp"]["source_ids"]["stripe"][0]
    assert refund not in {j["cheque_no"] for j in erp["Journal Entry"]}

    timing = by_kind["timing_difference_month_end"]
    charged = datetime.fromtimestamp(charges[timing["source_ids"]["stripe"][0]]["created"], UTC).date()
    entry = next(p for p in erp["Payment Entry"] if p["name"] == timing["source_ids"]["erpnext"][0])
    assert entry["posting_date"][:7] != charged.isoformat()[:7]

    number = by_kind["invoice_total_mismatch"]["source_ids"]["ops"][0]
    ops_invoice = _ops(settings, f"select total_minor, currency from invoices where number = '{number}'")[0]
    erp_invoice = next(s for s in erp["Sales Invoice"] if s["name"] == number)
    assert erp_invoice["grand_total"] != from_minor(ops_invoice["total_minor"], ops_invoice["currency"])

    ref = by_kind["payment_missing_in_stripe"]["source_ids"]["ops"][0]
    assert ref in ops_charges and ref not in charges
