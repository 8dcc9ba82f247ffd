"""Tiny, hand-checkable `stripe.json` and `erpnext.json` files (format: docs/demo-universe.md).

Small enough to reason about in an assertion, but shaped to hit the edges: two Stripe accounts, five
charges in one account (three pages at limit=2) with two sharing a `created` second, a refund, a
dispute, a payout settling balance transactions, a canceled subscription (hidden by Stripe's default
list); ERPNext values like 1234.5, 0.1 and a bare `0`, two GL Entries sharing a `modified` instant.
"""

from __future__ import annotations

import copy
from decimal import Decimal
from pathlib import Path
from typing import Any

import simplejson

STRIPE_KEY = "sk_test_ez360_unit"
ERP_KEY, ERP_SECRET = "ez360-unit", "ez360-unit-secret"
ALPHA, BETA = "acct_1TestAlpha", "acct_1TestBeta"
T0 = 1_760_000_000


def _fee(amount: int) -> int:
    return round(amount * 29 / 1000) + 30


def stripe_charge(charge_id: str, created: int, amount: int, customer: str, invoice: str) -> dict[str, Any]:
    return {
        "id": charge_id, "object": "charge", "created": created, "amount": amount, "amount_refunded": 0,
        "currency": "usd", "customer": customer, "payment_intent": "pi_" + charge_id[3:],
        "balance_transaction": "txn_" + charge_id, "paid": True, "status": "succeeded", "refunded": False,
        "description": f"Payment for {invoice}",
        "metadata": {"invoice_number": invoice, "ez360_payment_ref": "PAY-" + invoice[4:]},
        "billing_details": {"name": "Acme Buyer", "address": {"country": "US"}},
        "refunds": {"object": "list", "data": [], "has_more": False, "url": f"/v1/charges/{charge_id}/refunds"},
    }


def stripe_charge_bundle(charge_id: str, created: int, amount: int, customer: str, invoice: str,
                         payout: str | None = None) -> dict[str, list[dict[str, Any]]]:
    """A charge with its payment intent and balance transaction, as Stripe creates them together."""
    fee = _fee(amount)
    return {
        "charges": [stripe_charge(charge_id, created, amount, customer, invoice)],
        "payment_intents": [{"id": "pi_" + charge_id[3:], "object": "payment_intent", "created": created,
                             "amount": amount, "currency": "usd", "customer": customer,
                             "status": "succeeded", "latest_charge": charge_id,
                             "metadata": {"invoice_number": invoice}}],
        "balance_transactions": [{"id": "txn_" + charge_id, "object": "balance_transaction",
                                  "created": created, "available_on": created + 2 * 86400,
                                  "amount": amount, "fee": fee, "net": amount - fee, "currency": "usd",
                                  "type": "charge", "source": charge_id, "status": "available",
                                  "reporting_category": "charge", "payout": payout}],
    }


def _merge(target: dict[str, list[Any]], extra: dict[str, list[Any]]) -> None:
    for key, rows in extra.items():
        target.setdefault(key, []).extend(rows)


def build_stripe() -> dict[str, Any]:
    alpha: dict[str, list[Any]] = {
        "customers": [
            {"id": "cus_A1", "object": "customer", "created": T0, "email": "ap@acme.test", "name": "Acme",
             "currency": "usd", "metadata": {"ez360_client": "acme"}},
            {"id": "cus_A2", "object": "customer", "created": T0 + 10, "email": "ap@globex.test",
             "name": "Globex", "currency": "usd", "metadata": {}},
        ],
    }
    charges = [("ch_A1", T0 + 100, 1000, "cus_A1", "INV-0001", "po_A1"),
               ("ch_A2", T0 + 200, 2500, "cus_A1", "INV-0002", "po_A1"),
               ("ch_A3", T0 + 300, 1999, "cus_A2", "INV-0003", "po_A1"),
               ("ch_A4", T0 + 300, 5000, "cus_A2", "INV-0004", None),  # same second as ch_A3
               ("ch_A5", T0 + 400, 12345, "cus_A1", "INV-0005", None)]
    for charge in charges:
        _merge(alpha, stripe_charge_bundle(*charge))
    _merge(alpha, {
        "refunds": [{"id": "re_A1", "object": "refund", "created": T0 + 500, "amount": 500, "currency": "usd",
                     "charge": "ch_A2", "payment_intent": "pi_A2", "balance_transaction": "txn_re_A1",
                     "status": "succeeded", "reason": "requested_by_customer", "metadata": {}}],
        "disputes": [{"id": "dp_A1", "object": "dispute", "created": T0 + 600, "amount": 12345,
                      "currency": "usd", "charge": "ch_A5", "payment_intent": "pi_A5",
                      "reason": "fraudulent", "status": "needs_response", "metadata": {}}],
        "balance_transactions": [
            {"id": "txn_re_A1", "object": "balance_transaction", "created": T0 + 500, "amount": -500, "fee": 0,
             "net": -500, "currency": "usd", "type": "refund", "source": "re_A1", "status": "available",
             "reporting_category": "refund", "payout": "po_A1"},
            {"id": "txn_dp_A1", "object": "balance_transaction", "created": T0 + 600, "amount": -12345,
             "fee": 1500, "net": -13845, "currency": "usd", "type": "adjustment", "source": "dp_A1",
             "status": "available", "reporting_category": "dispute", "payout": None},
        ],
        "subscriptions": [
            {"id": "sub_A1", "object": "subscription", "created": T0 + 50, "customer": "cus_A1",
             "status": "active", "currency": "usd", "metadata": {}},
            {"id": "sub_A2", "object": "subscription", "created": T0 + 60, "customer": "cus_A2",
             "status": "canceled", "currency": "usd", "metadata": {}},
        ],
    })
    charge_a2 = next(c for c in alpha["charges"] if c["id"] == "ch_A2")
    charge_a2.update(amount_refunded=500)
    charge_a2["refunds"]["data"] = [copy.deepcopy(alpha["refunds"][0])]
    # Stripe embeds a dispute's balance transactions in the dispute, repeating the list's rows.
    alpha["disputes"][0]["balance_transactions"] = [copy.deepcopy(alpha["balance_transactions"][-1])]
    settled = [t for t in alpha["balance_transactions"] if t["payout"] == "po_A1"]
    payout_amount = sum(t["net"] for t in settled)
    alpha["payouts"] = [{"id": "po_A1", "object": "payout", "created": T0 + 1000, "arrival_date": T0 + 86400,
                         "amount": payout_amount, "currency": "usd", "status": "paid",
                         "balance_transaction": "txn_po_A1", "method": "standard", "metadata": {}}]
    alpha["balance_transactions"].append(
        {"id": "txn_po_A1", "object": "balance_transaction", "created": T0 + 1000, "amount": -payout_amount,
         "fee": 0, "net": -payout_amount, "currency": "usd", "type": "payout", "source": "po_A1",
         "status": "available", "reporting_category": "payout", "payout": None})

    beta: dict[str, list[Any]] = {
        "customers": [{"id": "cus_B1", "object": "customer", "created": T0 + 5, "email": "ap@initech.test",
                       "name": "Initech", "currency": "eur", "metadata": {}}],
    }
    for charge in [("ch_B1", T0 + 150, 777, "cus_B1", "INV-1001"), ("ch_B2", T0 + 250, 4200, "cus_B1", "INV-1002")]:
        _merge(beta, stripe_charge_bundle(*charge))
    for content in (alpha, beta):
        for key in ("customers", "payment_intents", "charges", "refunds", "disputes", "payouts",
                    "balance_transactions", "subscriptions"):
            content.setdefault(key, [])
    return {
        "api_keys": [STRIPE_KEY],
        "accounts": {
            ALPHA: {"account": {"id": ALPHA, "object": "account", "created": 1_700_000_000,
                                "default_currency": "usd", "business_profile": {"name": "Alpha Consulting"},
                                "metadata": {"ez360_company": "alpha"}}, **alpha},
            BETA: {"account": {"id": BETA, "object": "account", "created": 1_700_000_100,
                               "default_currency": "eur", "business_profile": {"name": "Beta GmbH"},
                               "metadata": {"ez360_company": "beta"}}, **beta},
        },
    }


def _ts(day: int, second: int = 0) -> str:
    return f"2026-01-{day:02d} 10:00:{second:02d}.000000"


def _doc(name: str, modified: str, **fields: Any) -> dict[str, Any]:
    return {"name": name, "owner": "Administrator", "creation": modified, "modified": modified,
            "modified_by": "Administrator", "docstatus": 1, "idx": 0, **fields}


def gl_entry(name: str, modified: str, company: str, account: str, debit: str, credit: str,
             voucher_type: str, voucher_no: str) -> dict[str, Any]:
    return _doc(name, modified, company=company, account=account, posting_date=modified[:10],
                debit=Decimal(debit), credit=Decimal(credit), debit_in_account_currency=Decimal(debit),
                credit_in_account_currency=Decimal(credit), account_currency="USD",
                voucher_type=voucher_type, voucher_no=voucher_no, is_cancelled=0, remarks=None)


def build_erpnext() -> dict[str, Any]:
    d = Decimal
    companies = [_doc("Alpha Consulting", _ts(1), company_name="Alpha Consulting", abbr="AC",
                      default_currency="USD", country="United States", docstatus=0),
                 _doc("Beta GmbH", _ts(1, 1), company_name="Beta GmbH", abbr="BG", default_currency="EUR",
                      country="Germany", docstatus=0)]
    accounts = [_doc(f"{acct} - {abbr}", _ts(1, 2), account_name=acct, company=company, docstatus=0,
                     root_type=root, is_group=0, account_currency=cur)
                for company, abbr, cur in (("Alpha Consulting", "AC", "USD"), ("Beta GmbH", "BG", "EUR"))
                for acct, root in (("Debtors", "Asset"), ("Stripe Clearing", "Asset"), ("Bank", "Asset"),
                                   ("Sales", "Income"), ("Stripe Fees", "Expense"))]
    customers = [_doc("Acme", _ts(2), customer_name="Acme", customer_group="Commercial", docstatus=0),
                 _doc("Initech", _ts(2, 1), customer_name="Initech", customer_group="Commercial", docstatus=0)]
    invoices = [
        _doc("ACC-SINV-2026-00001", _ts(3), company="Alpha Consulting", customer="Acme", posting_date="2026-01-03",
             currency="USD", grand_total=d("1234.5"), outstanding_amount=d("0"), status="Paid",
             items=[{"name": "item-1", "item_code": "Consulting", "qty": d("1"), "amount": d("1234.5")}]),
        _doc("ACC-SINV-2026-00002", _ts(4), company="Alpha Consulting", customer="Acme", posting_date="2026-01-04",
             currency="USD", grand_total=d("0.1"), outstanding_amount=d("0.1"), status="Unpaid", items=[]),
        _doc("ACC-SINV-2026-00003", _ts(5), company="Beta GmbH", customer="Initech", posting_date="2026-01-05",
             currency="EUR", grand_total=d("25"), outstanding_amount=d("25"), status="Unpaid", items=[]),
    ]
    payments = [
        _doc("ACC-PAY-2026-00001", _ts(6), company="Alpha Consulting", party="Acme", payment_type="Receive",
             posting_date="2026-01-06", paid_amount=d("1234.5"), received_amount=d("1234.5"),
             reference_no="ch_A1", mode_of_payment="Stripe"),
        _doc("ACC-PAY-2026-00002", _ts(7), company="Beta GmbH", party="Initech", payment_type="Receive",
             posting_date="2026-01-07", paid_amount=d("0.3"), received_amount=d("0.3"),
             reference_no="ch_B1", mode_of_payment="Stripe"),
    ]
    journals = [
        _doc("ACC-JV-2026-00001", _ts(8), company="Alpha Consulting", posting_date="2026-01-08",
             voucher_type="Journal Entry", total_debit=d("5.00"), total_credit=d("5.00"), user_remark="re_A1",
             accounts=[{"name": "jea-1", "account": "Sales - AC", "debit_in_account_currency": d("5.00"),
                        "credit_in_account_currency": d("0")},
                       {"name": "jea-2", "account": "Stripe Clearing - AC", "debit_in_account_currency": d("0"),
                        "credit_in_account_currency": d("5.00")}]),
    ]
    gl = [
        gl_entry("ACC-GLE-2026-00001", _ts(3), "Alpha Consulting", "Debtors - AC", "1234.5", "0",
                 "Sales Invoice", "ACC-SINV-2026-00001"),
        gl_entry("ACC-GLE-2026-00002", _ts(3), "Alpha Consulting", "Sales - AC", "0", "1234.5",
                 "Sales Invoice", "ACC-SINV-2026-00001"),  # same modified instant as 00001
        gl_entry("ACC-GLE-2026-00003", _ts(4), "Alpha Consulting", "Debtors - AC", "0.1", "0",
                 "Sales Invoice", "ACC-SINV-2026-00002"),
        gl_entry("ACC-GLE-2026-00004", _ts(4, 1), "Alpha Consulting", "Sales - AC", "0", "0.1",
                 "Sales Invoice", "ACC-SINV-2026-00002"),
        gl_entry("ACC-GLE-2026-00005", _ts(6), "Alpha Consulting", "Stripe Clearing - AC", "1234.56", "0",
                 "Payment Entry", "ACC-PAY-2026-00001"),
        gl_entry("ACC-GLE-2026-00006", _ts(7), "Beta GmbH", "Stripe Clearing - BG", "0.2", "0",
                 "Payment Entry", "ACC-PAY-2026-00002"),
        gl_entry("ACC-GLE-2026-00007", _ts(8), "Alpha Consulting", "Sales - AC", "5.00", "0",
                 "Journal Entry", "ACC-JV-2026-00001"),
    ]
    for entry in gl:  # a bare integer 0, as a Decimal("0") serialises: must still load as DECIMAL
        for side in ("debit", "credit"):
            if entry[side] == 0:
                entry[side] = 0
    bank = [
        _doc("ACC-BTN-2026-00001", _ts(9), company="Alpha Consulting", date="2026-01-09", bank_account="Bank - AC",
             deposit=d("3339.94"), withdrawal=d("0"), currency="USD", description="STRIPE PAYOUT po_A1",
             reference_number="po_A1", status="Unreconciled"),
        _doc("ACC-BTN-2026-00002", _ts(10), company="Beta GmbH", date="2026-01-10", bank_account="Bank - BG",
             deposit=d("0.1"), withdrawal=d("0"), currency="EUR", description="Interest", reference_number=None,
             status="Unreconciled"),
    ]
    return {"api_keys": {ERP_KEY: ERP_SECRET},
            "doctypes": {"Company": companies, "Customer": customers, "Account": accounts,
                         "Sales Invoice": invoices, "Payment Entry": payments, "Journal Entry": journals,
                         "GL Entry": gl, "Bank Transaction": bank}}


def write_json(path: Path, data: dict[str, Any]) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(simplejson.dumps(data, use_decimal=True, indent=1))
    return path


def write_stripe_json(directory: Path, data: dict[str, Any] | None = None) -> Path:
    return write_json(directory / "stripe.json", copy.deepcopy(data) if data else build_stripe())


def write_erpnext_json(directory: Path, data: dict[str, Any] | None = None) -> Path:
    return write_json(directory / "erpnext.json", copy.deepcopy(data) if data else build_erpnext())
