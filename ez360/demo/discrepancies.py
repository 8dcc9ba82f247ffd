"""The documented discrepancies the demo injects, and the ground truth that names them."""

from __future__ import annotations

import random
from dataclasses import dataclass, field

from ez360.demo.facts import OpsFacts, PaymentFact

KINDS = {
    "payout_missing_from_bank": "stripe_payout~erp_bank_transaction",
    "fee_mismatch": "stripe_balance_transaction~erp_gl_entry",
    "duplicate_charge": "ops_payment~stripe_charge",
    "refund_not_booked_in_erp": "stripe_refund~erp_journal_entry",
    "timing_difference_month_end": "stripe_charge~erp_payment_entry",
    "invoice_total_mismatch": "ops_invoice~erp_sales_invoice",
    "payment_missing_in_stripe": "ops_payment~stripe_charge",
    "payout_failed": "stripe_payout~erp_bank_transaction",
    "payment_entry_cancelled_in_erp": "stripe_charge~erp_payment_entry",
}


@dataclass
class Plan:
    """Which records the builders corrupt; chosen once from the seed so every run agrees."""

    missing_in_stripe: str  # ops payment reference
    duplicate_charge: str
    fee_mismatch: str
    invoice_mismatch: str  # invoice number
    cancelled_payment_entry: str  # ops payment reference whose ERP Payment Entry was cancelled and never re-posted
    refund_not_booked: str | None = None  # chosen by the Stripe builder among its refunds
    payout_missing: str | None = None
    found: list[dict] = field(default_factory=list)

    def record(self, kind: str, company: str, currency: str, amount_minor: int, description: str,
               ops: list[str] = (), stripe: list[str] = (), erpnext: list[str] = ()) -> None:
        self.found.append({
            "id": f"GT-{len(self.found) + 1:03d}", "kind": kind, "pair": KINDS[kind], "company": company,
            "currency": currency, "amount_minor": amount_minor,
            "source_ids": {"ops": list(ops), "stripe": list(stripe), "erpnext": list(erpnext)},
            "description": description,
        })


def choose_plan(facts: OpsFacts, rng: random.Random) -> Plan:
    stripe_payments = [p for p in facts.payments if p.method == "stripe" and not p.at_month_end]
    picks: list[PaymentFact] = rng.sample(stripe_payments, 3)
    invoice_mismatch = rng.choice(facts.invoices).number
    picked = {p.reference for p in picks}
    cancelled = next(p for p in reversed(stripe_payments) if p.reference not in picked)
    return Plan(
        missing_in_stripe=picks[0].reference, duplicate_charge=picks[1].reference, fee_mismatch=picks[2].reference,
        invoice_mismatch=invoice_mismatch, cancelled_payment_entry=cancelled.reference,
    )


def ground_truth(plan: Plan, seed: int, scale: int, credit_notes=()) -> dict:
    kinds = {d["kind"] for d in plan.found}
    missing = set(KINDS) - kinds
    if missing:
        raise RuntimeError(f"demo world too small to inject: {sorted(missing)}; raise --scale")
    ordered = sorted(plan.found, key=lambda d: (list(KINDS).index(d["kind"]), d["id"]))
    for number, item in enumerate(ordered, start=1):
        item["id"] = f"GT-{number:03d}"
    return {"format_version": 1, "seed": seed, "scale": scale, "discrepancies": ordered,
            # not discrepancies: facts the tie-outs need (ops and the ERP both book them)
            "credit_notes": [{"company": c.company_slug, "number": c.number, "invoice_number": c.invoice_number,
                              "currency": c.currency, "issue_date": c.issue_date.isoformat(),
                              "net_minor": c.net_minor, "tax_minor": c.tax_minor, "total_minor": c.total_minor}
                             for c in credit_notes]}
