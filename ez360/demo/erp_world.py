"""Builds the ERPNext side: what a bookkeeper posted in the ERP from ops and Stripe, with Frappe's shapes."""

from __future__ import annotations

import random
from collections import defaultdict
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

from ez360.core.money import exponent, from_minor
from ez360.demo.catalog import WORLD_START
from ez360.demo.discrepancies import Plan
from ez360.demo.facts import OpsFacts
from ez360.demo.ids import IdFactory
from ez360.demo.stripe_world import StripeBooks

ACCOUNTS = (("Debtors", "Receivable", "Asset"), ("Sales", "Income Account", "Income"),
            ("Output Tax", "Tax", "Liability"), ("Stripe Clearing", "Bank", "Asset"), ("Bank", "Bank", "Asset"),
            ("Stripe Fees", "Expense Account", "Expense"), ("Sales Returns", "Income Account", "Income"),
            ("Disputes", "Expense Account", "Expense"))


def stamp(day: date) -> str:
    return f"{day.isoformat()} 18:00:00.000000"


class ErpWorldBuilder:
    def __init__(self, facts: OpsFacts, books: StripeBooks, plan: Plan, rng: random.Random, ids: IdFactory):
        self.facts, self.books, self.plan, self.rng, self.ids = facts, books, plan, rng, ids
        self.docs: dict[str, list[dict]] = defaultdict(list)
        self.customers: dict[int, str] = {}

    def build(self, api_key: str, api_secret: str) -> dict:
        for company in self.facts.companies:
            self._masters(company)
        for invoice in self.facts.invoices:
            self._sales_invoice(invoice)
        for note in self.facts.credit_notes:
            self._sales_return(note)
        for payment in self.facts.payments:
            self._payment_entry(payment)
        self._stripe_postings()
        for rows in self.docs.values():
            rows.sort(key=lambda d: (d.get("posting_date", ""), d["name"]))
        return {"api_keys": {api_key: api_secret}, "doctypes": dict(self.docs)}

    def _acct(self, slug: str, name: str) -> str:
        return f"{name} - {self.facts.company(slug).prefix}"

    def _masters(self, company) -> None:
        self.docs["Company"].append({"name": company.name, "company_name": company.name, "abbr": company.prefix,
                                     "default_currency": company.currency, "country": "", "docstatus": 0,
                                     "creation": stamp(WORLD_START), "modified": stamp(WORLD_START)})
        for name, account_type, root in ACCOUNTS:
            self.docs["Account"].append({
                "name": self._acct(company.slug, name), "account_name": name, "account_type": account_type,
                "root_type": root, "company": company.name, "is_group": 0, "docstatus": 0,
                "creation": stamp(WORLD_START), "modified": stamp(WORLD_START),
            })
        for client in (c for c in self.facts.clients if c.company_slug == company.slug):
            name = f"CUST-{len(self.customers) + 1:05d}"
            self.customers[client.id] = name
            self.docs["Customer"].append({
                "name": name, "customer_name": client.name, "customer_group": "Commercial",
                "default_currency": client.currency, "email_id": client.email, "ez360_client_id": client.id,
                "ez360_company": company.slug, "docstatus": 0, "creation": stamp(WORLD_START),
                "modified": stamp(WORLD_START),
            })

    def _money(self, minor: int, currency: str) -> Decimal:
        return from_minor(minor, currency)

    def _sales_invoice(self, inv) -> None:
        company = self.facts.company(inv.company_slug)
        total = inv.total_minor
        if inv.number == self.plan.invoice_mismatch:
            delta = 10 * 10 ** exponent(inv.currency)
            total += delta
            self.plan.record("invoice_total_mismatch", inv.company_slug, inv.currency, delta,
                             "the ERP sales invoice total differs from the ops invoice total",
                             ops=[inv.number], erpnext=[inv.number])
        paid = sum(p.amount_minor for p in self.facts.payments if inv.number in p.invoice_numbers)
        credited = sum(c.total_minor for c in self.facts.credit_notes if c.invoice_number == inv.number)
        outstanding = max(inv.total_minor - credited - paid, 0)
        status = "Paid" if outstanding == 0 else ("Partly Paid" if paid else "Unpaid")
        net = total - inv.tax_minor
        self.docs["Sales Invoice"].append({
            "name": inv.number, "customer": self.customers[inv.client_id], "company": company.name,
            "posting_date": inv.issue_date.isoformat(), "due_date": inv.due_date.isoformat(), "currency": inv.currency,
            "net_total": self._money(net, inv.currency),
            "total_taxes_and_charges": self._money(inv.tax_minor, inv.currency),
            "grand_total": self._money(total, inv.currency),
            "outstanding_amount": self._money(outstanding, inv.currency), "status": status, "docstatus": 1,
            "ez360_invoice_id": inv.id, "creation": stamp(inv.issue_date), "modified": stamp(inv.issue_date),
        })
        legs = [("Debtors", total, 0), ("Sales", 0, net)]
        if inv.tax_minor:
            legs.append(("Output Tax", 0, inv.tax_minor))
        self._gl(inv.company_slug, "Sales Invoice", inv.number, inv.issue_date, inv.currency, legs,
                 party=self.customers[inv.client_id])

    def _sales_return(self, note) -> None:
        """An ops credit note as ERPNext books it: a return Sales Invoice (negative totals) against the original."""
        company = self.facts.company(note.company_slug)
        invoice = next(i for i in self.facts.invoices if i.number == note.invoice_number)
        self.docs["Sales Invoice"].append({
            "name": note.number, "customer": self.customers[note.client_id], "company": company.name,
            "posting_date": note.issue_date.isoformat(), "due_date": note.issue_date.isoformat(),
            "currency": note.currency, "is_return": 1, "return_against": note.invoice_number,
            "net_total": self._money(-note.net_minor, note.currency),
            "total_taxes_and_charges": self._money(-note.tax_minor, note.currency),
            "grand_total": self._money(-note.total_minor, note.currency),
            "outstanding_amount": self._money(0, note.currency), "status": "Return", "docstatus": 1,
            "ez360_invoice_id": invoice.id, "creation": stamp(note.issue_date), "modified": stamp(note.issue_date),
        })
        legs = [("Debtors", 0, note.total_minor), ("Sales", note.net_minor, 0)]  # ERPNext debits the income account
        if note.tax_minor:
            legs.append(("Output Tax", note.tax_minor, 0))
        self._gl(note.company_slug, "Sales Invoice", note.number, note.issue_date, note.currency, legs,
                 party=self.customers[note.client_id])

    def _payment_entry(self, p) -> None:
        company = self.facts.company(p.company_slug)
        posting = p.received_on + timedelta(days=1) if p.at_month_end else p.received_on
        name = self.ids.frappe("ACC-PAY", posting.year)
        paid_to = "Stripe Clearing" if p.method == "stripe" else "Bank"
        allocated = p.amount_minor  # the ERP allocates the whole receipt; overpayments stay unallocated there too
        self.docs["Payment Entry"].append({
            "name": name, "payment_type": "Receive", "party_type": "Customer", "party": self.customers[p.client_id],
            "company": company.name, "posting_date": posting.isoformat(),
            "paid_to": self._acct(p.company_slug, paid_to), "paid_amount": self._money(p.amount_minor, p.currency),
            "received_amount": self._money(p.amount_minor, p.currency), "paid_to_account_currency": p.currency,
            "reference_no": p.reference, "reference_date": p.received_on.isoformat(),
            "mode_of_payment": "Stripe" if p.method == "stripe" else "Wire Transfer",
            "references": [{"reference_doctype": "Sales Invoice", "reference_name": n} for n in p.invoice_numbers],
            "docstatus": 1, "creation": stamp(posting), "modified": stamp(posting),
        })
        cancelled = p.reference == self.plan.cancelled_payment_entry
        self._gl(p.company_slug, "Payment Entry", name, posting, p.currency,
                 [(paid_to, allocated, 0), ("Debtors", 0, allocated)], party=self.customers[p.client_id],
                 cancelled=cancelled)
        if cancelled:  # cancelled by mistake a week later and never re-posted
            entry = self.docs["Payment Entry"][-1]
            entry.update(docstatus=2, modified=stamp(posting + timedelta(days=7)))
            self.plan.record("payment_entry_cancelled_in_erp", p.company_slug, p.currency, p.amount_minor,
                             "the ERP's payment entry for a Stripe charge was cancelled and never re-posted",
                             stripe=[p.stripe_charge_id], erpnext=[name])
        if p.at_month_end:
            self.plan.record("timing_difference_month_end", p.company_slug, p.currency, p.amount_minor,
                             "Stripe charged on the month's last day; the ERP booked it on the next month's first",
                             ops=[p.reference], stripe=[p.stripe_charge_id], erpnext=[name])
        if p.method == "bank":
            self._bank_txn(p.company_slug, p.received_on, p.amount_minor, p.currency, p.reference, "Client transfer")
        fee = self.books.fees.get(p.reference)
        if fee:
            txn_id, fee_minor = fee
            mismatch = p.reference == self.plan.fee_mismatch
            booked = fee_minor + (30 * 10 ** exponent(p.currency) // 100 + 1 if mismatch else 0)
            journal = self._journal(p.company_slug, posting, p.currency,
                                    [("Stripe Fees", booked, 0), ("Stripe Clearing", 0, booked)],
                                    cheque_no=p.stripe_charge_id,
                                    remark=f"Stripe fee for {p.stripe_charge_id} ({txn_id})")
            if mismatch:
                self.plan.record("fee_mismatch", p.company_slug, p.currency, booked - fee_minor,
                                 "the ERP booked a different Stripe fee than the balance transaction carries",
                                 stripe=[txn_id, p.stripe_charge_id], erpnext=[journal])

    def _stripe_postings(self) -> None:
        for refund in self.books.refunds:
            if refund["id"] == self.plan.refund_not_booked:
                continue
            day = datetime.fromtimestamp(refund["created"], UTC).date()
            self._journal(refund["company"], day, refund["currency"].upper(),
                          [("Sales Returns", refund["amount"], 0), ("Stripe Clearing", 0, refund["amount"])],
                          cheque_no=refund["id"], remark=f"Stripe refund {refund['id']} of {refund['charge']}")
        for dispute in self.books.disputes:
            day = datetime.fromtimestamp(dispute["created"], UTC).date()
            amount = dispute["amount"] + dispute["fee"]
            self._journal(dispute["company"], day, dispute["currency"].upper(),
                          [("Disputes", amount, 0), ("Stripe Clearing", 0, amount)],
                          cheque_no=dispute["id"], remark=f"Lost dispute {dispute['id']} incl. fee")
        middle = self.books.payouts[len(self.books.payouts) // 2] if self.books.payouts else None
        for payout in self.books.payouts:
            currency = payout["currency"].upper()
            self._journal(payout["company"], payout["arrival"], currency,
                          [("Bank", payout["amount"], 0), ("Stripe Clearing", 0, payout["amount"])],
                          cheque_no=payout["id"], remark=f"Stripe payout {payout['id']}")
            if payout is middle:
                self.plan.payout_missing = payout["id"]
                self.plan.record("payout_missing_from_bank", payout["company"], currency, payout["amount"],
                                 "Stripe paid out, but no matching deposit is on the bank statement",
                                 stripe=[payout["id"]])
                continue
            self._bank_txn(payout["company"], payout["arrival"], payout["amount"], currency, payout["id"],
                           "STRIPE PAYOUT")

    def _bank_txn(self, slug: str, day: date, amount: int, currency: str, reference: str, description: str) -> None:
        company = self.facts.company(slug)
        self.docs["Bank Transaction"].append({
            "name": self.ids.frappe("ACC-BTN", day.year), "date": day.isoformat(), "company": company.name,
            "bank_account": f"Main - {company.prefix}", "currency": currency, "deposit": self._money(amount, currency),
            "withdrawal": self._money(0, currency), "reference_number": reference, "description": description,
            "status": "Unreconciled", "docstatus": 1, "creation": stamp(day), "modified": stamp(day),
        })

    def _journal(self, slug, day, currency, legs, cheque_no: str, remark: str) -> str:
        company = self.facts.company(slug)
        name = self.ids.frappe("ACC-JV", day.year)
        total = sum(d for _, d, _ in legs)
        self.docs["Journal Entry"].append({
            "name": name, "voucher_type": "Journal Entry", "company": company.name, "posting_date": day.isoformat(),
            "cheque_no": cheque_no, "cheque_date": day.isoformat(), "user_remark": remark,
            "total_debit": self._money(total, currency), "total_credit": self._money(total, currency),
            "accounts": [{"account": self._acct(slug, a), "debit_in_account_currency": self._money(d, currency),
                          "credit_in_account_currency": self._money(c, currency)} for a, d, c in legs],
            "docstatus": 1, "creation": stamp(day), "modified": stamp(day),
        })
        self._gl(slug, "Journal Entry", name, day, currency, legs)
        return name

    def _gl(self, slug, voucher_type, voucher_no, day, currency, legs, party: str | None = None,
            cancelled: bool = False) -> None:
        """GL rows of a voucher; a cancelled voucher keeps its rows and gets reversing ones, all is_cancelled = 1
        (as ERPNext does on cancel)."""
        company = self.facts.company(slug)
        if cancelled:
            legs = list(legs) + [(account, credit, debit) for account, debit, credit in legs]
        for account, debit, credit in legs:
            self.docs["GL Entry"].append({
                "name": self.ids.frappe("ACC-GLE", day.year), "posting_date": day.isoformat(),
                "account": self._acct(slug, account), "debit": self._money(debit, currency),
                "credit": self._money(credit, currency), "account_currency": currency,
                "voucher_type": voucher_type, "voucher_no": voucher_no, "company": company.name,
                "party_type": "Customer" if party and account == "Debtors" else None,
                "party": party if account == "Debtors" else None, "is_cancelled": int(cancelled),
                "docstatus": 1,
                "creation": stamp(day), "modified": stamp(day),
            })
