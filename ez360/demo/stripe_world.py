"""Builds the Stripe side (one connected account per company) from what the ops world recorded."""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from decimal import Decimal

from ez360.core.money import round_minor
from ez360.demo.catalog import WORLD_END, WORLD_START
from ez360.demo.discrepancies import Plan
from ez360.demo.facts import OpsFacts, PaymentFact
from ez360.demo.ids import IdFactory

FEE_RULES = {"USD": (Decimal("2.9"), 30), "EUR": (Decimal("1.5"), 25), "GBP": (Decimal("1.5"), 20),
             "JPY": (Decimal("3.6"), 0)}
FAILED_PAYOUT_ORDINAL = 5  # the 5th payout of the first account's first currency fails at the bank
DISPUTE_FEE = {"USD": 1500, "EUR": 1500, "GBP": 1500, "JPY": 2000}


def stripe_fee(amount_minor: int, currency: str) -> int:
    pct, fixed = FEE_RULES[currency]
    return round_minor(Decimal(amount_minor) * pct / 100) + fixed


def ts(day: date, hour: int = 12, minute: int = 0) -> int:
    return int(datetime.combine(day, time(hour, minute), UTC).timestamp())


@dataclass
class StripeBooks:
    """What the ERP builder needs to book Stripe activity."""

    fees: dict[str, tuple[str, int]] = field(default_factory=dict)  # payment ref -> (txn id, fee)
    refunds: list[dict] = field(default_factory=list)
    disputes: list[dict] = field(default_factory=list)
    payouts: list[dict] = field(default_factory=list)  # paid payouts (the ERP books them, the bank shows them)
    failed_payouts: list[dict] = field(default_factory=list)


class StripeWorldBuilder:
    def __init__(self, facts: OpsFacts, plan: Plan, rng: random.Random, ids: IdFactory):
        self.facts, self.plan, self.rng, self.ids = facts, plan, rng, ids
        self.books = StripeBooks()
        self._payout_failed = False

    def build(self, api_key: str) -> dict:
        accounts = {}
        for company in self.facts.companies:
            accounts[company.stripe_account_id] = self._account(company)
        return {"api_keys": [api_key], "accounts": accounts}

    def _account(self, company) -> dict:
        objs: dict[str, list] = defaultdict(list)
        objs["account"] = {
            "id": company.stripe_account_id, "object": "account", "created": ts(WORLD_START, 8),
            "default_currency": company.currency.lower(), "business_profile": {"name": company.name},
            "metadata": {"ez360_company": company.slug}, "charges_enabled": True, "payouts_enabled": True,
        }
        clients = [c for c in self.facts.clients if c.company_slug == company.slug and c.pays_by_stripe]
        for client in clients:
            objs["customers"].append({
                "id": client.stripe_customer_id, "object": "customer", "created": ts(WORLD_START, 9),
                "email": client.email, "name": client.name, "currency": client.currency.lower(),
                "metadata": {"ez360_client_id": str(client.id)}, "livemode": False,
            })
            if client.retainer_minor:
                objs["subscriptions"].append(self._subscription(client))
        charges = []
        for payment in (p for p in self.facts.payments if p.company_slug == company.slug and p.method == "stripe"):
            if payment.reference == self.plan.missing_in_stripe:
                self.plan.record("payment_missing_in_stripe", company.slug, payment.currency, payment.amount_minor,
                                 "ops records a Stripe payment whose charge Stripe has never seen",
                                 ops=[payment.reference])
                continue
            charges.append(self._charge(objs, payment, payment.stripe_charge_id, payment.stripe_payment_intent_id))
            if payment.reference == self.plan.duplicate_charge:
                dup = self._charge(objs, payment, self.ids.stripe("ch"), self.ids.stripe("pi"), minutes_later=3)
                charges.append(dup)
                self.plan.record("duplicate_charge", company.slug, payment.currency, payment.amount_minor,
                                 "the customer was charged twice for one invoice; ops knows one payment",
                                 ops=[payment.reference], stripe=[payment.stripe_charge_id, dup["id"]])
        self._refunds_and_dispute(objs, charges, company.slug)
        self._payouts(objs, company.slug)
        for kind in ("customers", "subscriptions", "payment_intents", "charges", "refunds", "disputes", "payouts",
                     "balance_transactions"):
            objs[kind] = sorted(objs.get(kind, []), key=lambda o: (o["created"], o["id"]))
        return dict(objs)

    def _subscription(self, client) -> dict:
        price = {"id": self.ids.stripe("price"), "object": "price", "currency": client.currency.lower(),
                 "unit_amount": client.retainer_minor, "recurring": {"interval": "month", "interval_count": 1}}
        period_start = WORLD_END.replace(day=1)
        return {
            "id": self.ids.stripe("sub"), "object": "subscription", "customer": client.stripe_customer_id,
            "created": ts(WORLD_START, 10), "start_date": ts(WORLD_START, 10), "status": "active",
            "currency": client.currency.lower(), "current_period_start": ts(period_start, 0),
            "current_period_end": ts(WORLD_END + timedelta(days=1), 0), "cancel_at_period_end": False,
            "items": {"object": "list", "data": [{"id": self.ids.stripe("si"), "object": "subscription_item",
                                                  "price": price, "quantity": 1}]},
            "metadata": {"ez360_client_id": str(client.id)},
        }

    def _charge(self, objs, payment: PaymentFact, charge_id: str, intent_id: str, minutes_later: int = 0) -> dict:
        created = ts(payment.received_on, 23 if payment.at_month_end else 10, 10 + minutes_later)
        fee = stripe_fee(payment.amount_minor, payment.currency)
        txn = self._balance_txn(objs, "charge", charge_id, payment.amount_minor, fee, payment.currency, created)
        client = self.facts.client(payment.client_id)
        metadata = {"invoice_number": payment.invoice_numbers[0], "ez360_payment_ref": payment.reference}
        objs["payment_intents"].append({
            "id": intent_id, "object": "payment_intent", "amount": payment.amount_minor,
            "amount_received": payment.amount_minor, "currency": payment.currency.lower(), "created": created,
            "customer": client.stripe_customer_id, "latest_charge": charge_id, "status": "succeeded",
            "metadata": metadata, "livemode": False,
        })
        charge = {
            "id": charge_id, "object": "charge", "amount": payment.amount_minor,
            "amount_captured": payment.amount_minor, "amount_refunded": 0, "currency": payment.currency.lower(),
            "created": created, "customer": client.stripe_customer_id, "payment_intent": intent_id,
            "balance_transaction": txn["id"], "captured": True, "paid": True, "refunded": False, "disputed": False,
            "status": "succeeded", "description": f"Invoice {payment.invoice_numbers[0]}", "metadata": metadata,
            "livemode": False,
        }
        objs["charges"].append(charge)
        if charge_id == payment.stripe_charge_id:
            self.books.fees[payment.reference] = (txn["id"], fee)
        return charge

    def _balance_txn(self, objs, kind: str, source: str, amount: int, fee: int, currency: str, created: int) -> dict:
        txn = {
            "id": self.ids.stripe("txn"), "object": "balance_transaction", "type": kind, "source": source,
            "amount": amount, "fee": fee, "net": amount - fee, "currency": currency.lower(), "created": created,
            "available_on": created + 2 * 86400, "status": "available", "reporting_category": kind,
            "fee_details": [{"amount": fee, "currency": currency.lower(), "type": "stripe_fee"}] if fee else [],
            "payout": None,
        }
        objs["balance_transactions"].append(txn)
        return txn

    def _refunds_and_dispute(self, objs, charges: list[dict], company: str) -> None:
        candidates = [c for c in charges if c["created"] + 10 * 86400 < ts(WORLD_END)]
        picks = self.rng.sample(candidates, min(len(candidates), 3))
        for charge in picks[:2]:
            amount = charge["amount"] // 4
            created = charge["created"] + 5 * 86400
            refund_id = self.ids.stripe("re")
            txn = self._balance_txn(objs, "refund", refund_id, -amount, 0, charge["currency"], created)
            refund = {"id": refund_id, "object": "refund", "amount": amount, "charge": charge["id"],
                      "currency": charge["currency"], "created": created, "status": "succeeded",
                      "reason": "requested_by_customer", "balance_transaction": txn["id"],
                      "payment_intent": charge["payment_intent"], "metadata": {}}
            objs["refunds"].append(refund)
            charge["amount_refunded"] += amount
            self.books.refunds.append({**refund, "company": company})
            if self.plan.refund_not_booked is None:
                self.plan.refund_not_booked = refund_id
                self.plan.record("refund_not_booked_in_erp", company, charge["currency"].upper(), amount,
                                 "Stripe refunded part of a charge; the ERP has no entry for the refund",
                                 stripe=[refund_id, charge["id"]])
        if len(picks) == 3 and not any(d["company"] == company for d in self.books.disputes) and \
                charge_currency_ok(picks[2]):
            charge = picks[2]
            created = charge["created"] + 10 * 86400
            dispute_id = self.ids.stripe("dp")
            fee = DISPUTE_FEE[charge["currency"].upper()]
            txn = self._balance_txn(objs, "adjustment", dispute_id, -charge["amount"], fee, charge["currency"], created)
            dispute = {"id": dispute_id, "object": "dispute", "amount": charge["amount"], "charge": charge["id"],
                       "currency": charge["currency"], "created": created, "status": "lost", "reason": "fraudulent",
                       "balance_transactions": [txn], "payment_intent": charge["payment_intent"], "metadata": {}}
            objs["disputes"].append(dispute)
            charge["disputed"] = True
            self.books.disputes.append({**dispute, "company": company, "fee": fee})

    def _payouts(self, objs, company: str) -> None:
        """Weekly payouts (Fridays) per currency of everything available and not yet paid out."""
        by_currency = defaultdict(list)
        for txn in objs["balance_transactions"]:
            by_currency[txn["currency"]].append(txn)
        for currency, txns in sorted(by_currency.items()):
            day = WORLD_START + timedelta(days=(4 - WORLD_START.weekday()) % 7)
            paid_out = 0
            while day <= WORLD_END:
                cutoff = ts(day, 6)
                due = [t for t in txns if t["payout"] is None and t["available_on"] <= cutoff]
                total = sum(t["net"] for t in due)
                if due and total > 0:
                    payout_id = self.ids.stripe("po")
                    for t in due:
                        t["payout"] = payout_id
                    ptxn = self._balance_txn(objs, "payout", payout_id, -total, 0, currency, cutoff)
                    ptxn["payout"] = payout_id
                    arrival = day + timedelta(days=1)
                    payout = {"id": payout_id, "object": "payout", "amount": total, "currency": currency,
                              "created": cutoff, "arrival_date": ts(arrival, 0), "status": "paid", "method": "standard",
                              "type": "bank_account", "balance_transaction": ptxn["id"], "automatic": True,
                              "metadata": {}}
                    objs["payouts"].append(payout)
                    paid_out += 1
                    if not self._payout_failed and paid_out == FAILED_PAYOUT_ORDINAL:
                        txns.append(self._fail(objs, payout, company, arrival))  # swept by a later payout
                    else:
                        self.books.payouts.append({**payout, "company": company, "arrival": arrival})
                day += timedelta(days=7)

    def _fail(self, objs, payout: dict, company: str, arrival: date) -> dict:
        """The bank refuses the payout: Stripe marks it failed and returns the money to the balance with a
        `payout_failure` balance transaction, which the next payout sweeps up again (as Stripe does)."""
        returned = self._balance_txn(objs, "payout_failure", payout["id"], payout["amount"], 0, payout["currency"],
                                     ts(arrival, 9))
        returned["reporting_category"] = "payout_reversal"
        payout.update(status="failed", failure_code="account_closed",
                      failure_message="The bank account has been closed.",
                      failure_balance_transaction=returned["id"])
        self._payout_failed = True
        self.books.failed_payouts.append({**payout, "company": company, "arrival": arrival})
        self.plan.record("payout_failed", company, payout["currency"].upper(), payout["amount"],
                         "the bank refused a payout (account_closed); Stripe returned the money with a "
                         "payout_failure balance transaction", stripe=[payout["id"], returned["id"]])
        return returned


def charge_currency_ok(charge: dict) -> bool:
    return charge["currency"].upper() in DISPUTE_FEE
