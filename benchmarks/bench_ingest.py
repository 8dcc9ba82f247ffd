"""Ingest speed: rows per second per source, and the same Stripe pull by tap-stripe (Singer), side by side.

    uv run python benchmarks/bench_ingest.py [--charges 3000] [--gl 20000] [--lines 20000] [--no-tap]

Builds a synthetic world (one Stripe account with charges, payment intents, balance transactions with fees,
refunds and weekly payouts; ERPNext GL entries and invoices with items; a bank statement CSV), serves it with
the project's sandboxes on 127.0.0.1, and loads each source into a fresh DuckDB warehouse with the production
code (`ingest.runner.run_source`). For Stripe it then runs tap-stripe (the Singer tap, pinned to an old
stripe SDK, so it gets its own virtualenv from PyPI inside this run's temporary folder) against the same
server, streams and objects, output discarded, and prints both rates and their ratio.

Two caveats printed with the figures: tap-stripe only extracts (to stdout) while the ingest also normalizes
and loads into the warehouse, so the ingest's extract-only rate is printed too; tap-stripe's wall time
includes its process start. tap-stripe hard-codes api.stripe.com in a request timer, so the wrapper below
turns that timer off and points the SDK's `api_base` at the local server; nothing else of the tap changes.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from decimal import Decimal
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
os.environ.setdefault("RUNTIME__DLTHUB_TELEMETRY", "false")

KEY, ACCOUNT = "sk_test_ez360_bench", "acct_1Bench0000000001"
ERP_KEY, ERP_SECRET = "bench", "bench-secret"
TAP_STREAMS = ("customers", "charges", "payment_intents", "refunds", "payouts", "balance_transactions",
               "payout_transactions")
TAP_WRAPPER = """
import sys, stripe, tap_stripe
tap_stripe.apply_request_timer_to_client = lambda client: None  # it parses api.stripe.com URLs only
stripe.api_base = sys.argv.pop(1)
tap_stripe.main()
"""


def stripe_world(charges: int, start: int) -> dict[str, Any]:
    objs: dict[str, list[dict[str, Any]]] = {k: [] for k in (
        "customers", "payment_intents", "charges", "refunds", "disputes", "payouts", "balance_transactions",
        "subscriptions")}
    for c in range(50):
        objs["customers"].append({"id": f"cus_{c:05d}", "object": "customer", "created": start, "email":
                                  f"c{c}@bench.example", "currency": "usd", "metadata": {}, "livemode": False})
    for n in range(charges):
        created = start + 60 + n * 300
        fee = 30 + n % 97
        txn = {"id": f"txn_ch{n:06d}", "object": "balance_transaction", "created": created, "amount": 1000 + n,
               "fee": fee, "net": 1000 + n - fee, "currency": "usd", "type": "charge", "reporting_category": "charge",
               "source": f"ch_{n:06d}", "status": "available", "available_on": created + 172800,
               "exchange_rate": None, "fee_details": [{"amount": fee, "currency": "usd", "type": "stripe_fee",
                                                       "description": "Stripe processing fees", "application": None}],
               "payout": None}
        objs["balance_transactions"].append(txn)
        objs["payment_intents"].append({"id": f"pi_{n:06d}", "object": "payment_intent", "created": created,
                                        "amount": 1000 + n, "amount_received": 1000 + n, "currency": "usd",
                                        "customer": f"cus_{n % 50:05d}", "status": "succeeded",
                                        "latest_charge": f"ch_{n:06d}", "metadata": {}, "livemode": False})
        objs["charges"].append({"id": f"ch_{n:06d}", "object": "charge", "created": created, "amount": 1000 + n,
                                "amount_captured": 1000 + n, "amount_refunded": 0, "currency": "usd",
                                "customer": f"cus_{n % 50:05d}", "payment_intent": f"pi_{n:06d}",
                                "balance_transaction": txn["id"], "paid": True, "captured": True, "refunded": False,
                                "disputed": False, "status": "succeeded", "livemode": False,
                                "metadata": {"invoice_number": f"INV-{n:06d}"},
                                "refunds": {"object": "list", "data": [], "has_more": False, "url": "/v1/refunds"}})
        if n % 20 == 7:
            objs["refunds"].append({"id": f"re_{n:06d}", "object": "refund", "created": created + 3600,
                                    "amount": 100, "currency": "usd", "charge": f"ch_{n:06d}", "status": "succeeded",
                                    "balance_transaction": f"txn_re{n:06d}", "metadata": {}})
            objs["balance_transactions"].append({**txn, "id": f"txn_re{n:06d}", "created": created + 3600,
                                                 "amount": -100, "fee": 0, "net": -100, "type": "refund",
                                                 "reporting_category": "refund", "source": f"re_{n:06d}",
                                                 "fee_details": []})
    week, unpaid, p = 7 * 86400, list(objs["balance_transactions"]), 0
    for cutoff in range(start + week, start + 60 + charges * 300 + week, week):
        due = [t for t in unpaid if t["created"] < cutoff - 172800 and t["payout"] is None]
        if not due:
            continue
        payout_id, total = f"po_{p:05d}", sum(t["net"] for t in due)
        for t in due:
            t["payout"] = payout_id
        objs["payouts"].append({"id": payout_id, "object": "payout", "created": cutoff, "amount": total,
                                "currency": "usd", "arrival_date": cutoff + 86400, "status": "paid",
                                "automatic": True, "method": "standard", "type": "bank_account",
                                "balance_transaction": f"txn_po{p:05d}", "metadata": {}})
        objs["balance_transactions"].append({**due[0], "id": f"txn_po{p:05d}", "created": cutoff, "amount": -total,
                                             "fee": 0, "net": -total, "type": "payout", "reporting_category": "payout",
                                             "source": payout_id, "fee_details": [], "payout": payout_id})
        p += 1
    account = {"id": ACCOUNT, "object": "account", "created": start - 86400, "default_currency": "usd",
               "business_profile": {"name": "Bench"}, "settings": {"dashboard": {"display_name": "Bench"}},
               "metadata": {}}
    return {"api_keys": [KEY], "accounts": {ACCOUNT: {"account": account, **objs}}}


def erpnext_world(gl: int) -> dict[str, Any]:
    docs: dict[str, list[dict[str, Any]]] = {"GL Entry": [], "Sales Invoice": []}
    for n in range(gl):
        stamp = f"2026-01-{1 + n % 28:02d} 10:{n // 6000 % 60:02d}:{n // 100 % 60:02d}.{n:06d}"
        docs["GL Entry"].append({"name": f"GLE-{n:07d}", "modified": stamp, "creation": stamp, "docstatus": 1,
                                 "posting_date": stamp[:10], "account": "Debtors - B", "company": "Bench",
                                 "debit": Decimal(f"{n}.{n % 100:02d}"), "credit": Decimal("0"),
                                 "account_currency": "USD", "voucher_type": "Sales Invoice",
                                 "voucher_no": f"SINV-{n // 2:07d}", "is_cancelled": 0})
        if n % 2 == 0:
            docs["Sales Invoice"].append({"name": f"SINV-{n // 2:07d}", "modified": stamp, "creation": stamp,
                                          "docstatus": 1, "posting_date": stamp[:10], "currency": "USD",
                                          "company": "Bench", "grand_total": Decimal(f"{n}.50"),
                                          "items": [{"item_code": "Work", "qty": Decimal("1"),
                                                     "amount": Decimal(f"{n}.50")}]})
    return {"api_keys": {ERP_KEY: ERP_SECRET}, "doctypes": docs}


def tap_stripe(folder: Path, url: str, start: int) -> tuple[int, float, dict[str, int]]:
    venv = folder / "tap-venv"
    python = venv / "bin" / "python"
    if not python.exists():
        subprocess.run(["uv", "venv", "-q", "-p", sys.executable, str(venv)], check=True)
        subprocess.run(["uv", "pip", "install", "-q", "--python", str(python), "tap-stripe"], check=True)
    config = folder / "tap-config.json"
    config.write_text(json.dumps({"client_secret": KEY, "account_id": ACCOUNT, "date_window_size": "365",
                                  "start_date": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(start - 86400))}))
    wrapper = [str(python), "-c", TAP_WRAPPER, url, "--config", str(config)]
    catalog = json.loads(subprocess.run([*wrapper, "--discover"], check=True, capture_output=True).stdout)
    for stream in catalog["streams"]:
        selected = stream["tap_stream_id"] in TAP_STREAMS
        for entry in stream["metadata"]:
            if entry["breadcrumb"] == []:
                entry["metadata"]["selected"] = selected
    (folder / "tap-catalog.json").write_text(json.dumps(catalog))
    started = time.perf_counter()
    run = subprocess.run([*wrapper, "--catalog", str(folder / "tap-catalog.json")], capture_output=True, check=True)
    seconds = time.perf_counter() - started
    counts: dict[str, int] = {}
    for line in run.stdout.splitlines():
        message = json.loads(line)
        if message.get("type") == "RECORD":
            counts[message["stream"]] = counts.get(message["stream"], 0) + 1
    return sum(counts.values()), seconds, counts


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--charges", type=int, default=3000)
    parser.add_argument("--gl", type=int, default=20000)
    parser.add_argument("--lines", type=int, default=20000)
    parser.add_argument("--no-tap", action="store_true", help="skip tap-stripe (it installs from PyPI)")
    args = parser.parse_args()

    import simplejson

    from ez360.core.settings import Settings
    from ingest.runner import run_source
    from ingest.sandboxes import frappe_server, stripe_server
    from tests.support.live_server import serve_app

    folder = Path(tempfile.mkdtemp(prefix="ez360-bench-ingest-"))
    start = int(time.time()) - 120 * 86400  # older than the 30 days of events: both tools read lists only
    (folder / "stripe.json").write_text(simplejson.dumps(stripe_world(args.charges, start), use_decimal=True))
    (folder / "erpnext.json").write_text(simplejson.dumps(erpnext_world(args.gl), use_decimal=True))
    inbox = folder / "var" / "inbox" / "bank_statement_lines"
    inbox.mkdir(parents=True)
    with (inbox / "statement.csv").open("w") as fh:
        fh.write("booking_date,amount,currency,bank_account,reference,description\n")
        fh.writelines(f"2026-02-{1 + n % 28:02d},{n}.{n % 100:02d},EUR,Main,ref-{n},line {n}\n"
                      for n in range(args.lines))

    rows: list[tuple[str, int, float, float]] = []
    with serve_app(stripe_server.create_app(folder / "stripe.json")) as stripe_url, \
            serve_app(frappe_server.create_app(folder / "erpnext.json")) as erp_url:
        settings = Settings(_env_file=None, var_dir=folder / "var", sandboxes="off", stripe_api_key=KEY,
                            stripe_api_base=stripe_url, stripe_accounts=f"self,{ACCOUNT}", erpnext_url=erp_url,
                            erpnext_api_key=ERP_KEY, erpnext_api_secret=ERP_SECRET,
                            erpnext_doctypes="Sales Invoice,GL Entry")
        reports = {}
        for source in ("stripe", "erpnext", "files"):
            report = run_source(source, settings)
            reports[source] = report
            rows.append((source, report.rows, report.timings["total"], report.timings.get("extract", 0.0)))
        tap = None if args.no_tap else tap_stripe(folder, stripe_url, start)

    print(f"\ningest into DuckDB ({folder}):")
    print(f"{'source':<10}{'rows':>10}{'seconds':>10}{'rows/s':>10}{'extract s':>11}{'extract rows/s':>16}")
    for source, count, seconds, extract in rows:
        print(f"{source:<10}{count:>10}{seconds:>10.1f}{count / seconds:>10.0f}{extract:>11.1f}"
              f"{(count / extract if extract else 0):>16.0f}")
    if tap:
        records, seconds, counts = tap
        ours = reports["stripe"]
        print(f"\ntap-stripe 3.x (Singer, own venv), same server and objects: {records} records in {seconds:.1f}s "
              f"= {records / seconds:.0f} records/s (extract only, to stdout; process start included)")
        print(f"  per stream: {counts}")
        print(f"ingest stripe: {ours.rows} rows in {ours.timings['total']:.1f}s = {ours.rows_per_second:.0f} rows/s "
              f"loaded into DuckDB; extract alone {ours.timings.get('extract', 0):.1f}s")
        tap_rate = records / seconds
        print(f"ratio ingest / tap-stripe (rows/s, loaded vs extracted): {ours.rows_per_second / tap_rate:.2f}"
              f"; extract vs extract: {(ours.rows / ours.timings['extract']) / tap_rate:.2f}")


if __name__ == "__main__":
    main()
