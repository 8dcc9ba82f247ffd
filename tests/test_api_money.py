"""Invoices, credit notes, payments, refunds and the ledger through the API, on SQLite and PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest

from tests.support.integrity import build_api_world


@pytest.fixture
def api(ops_db):
    world = build_api_world(ops_db)
    world.client_id = world.call("POST", "/clients", json={"name": "Acme Robotics"}).json()["id"]
    return world


def _invoice(api, *lines, send=True, issue_date="2026-03-31"):
    lines = lines or ({"description": "Consulting", "quantity": "2.5", "unit_price": "33.33",
                       "tax_rate_percent": "7.5"},)
    response = api.call("POST", "/invoices", json={"client_id": api.client_id, "lines": list(lines)})
    assert response.status_code == 201, response.text
    invoice = response.json()
    if send:
        invoice = api.call("POST", f"/invoices/{invoice['id']}/send", json={"issue_date": issue_date}).json()
    return invoice


def test_invoice_totals_are_computed_server_side_with_half_up_rounding_per_line(api):
    invoice = _invoice(api, {"description": "Hours", "quantity": "2.5", "unit_price": "33.33",
                             "tax_rate_percent": "7.5"},
                       {"description": "Fee", "quantity": 1, "unit_price": 100, "discount_percent": "12.5"}, send=False)
    assert [ln["net"] for ln in invoice["lines"]] == ["83.33", "87.50"]  # 83.325 -> 83.33
    assert (invoice["subtotal"], invoice["tax"], invoice["total"]) == ("170.83", "6.25", "177.08")
    assert invoice["status"] == "draft" and invoice["number"] is None


def test_sent_invoice_cannot_be_edited_or_deleted_and_answers_a_problem(api):
    invoice = _invoice(api)
    assert (invoice["status"], invoice["number"]) == ("sent", "ACM-2026-00001")
    assert invoice["due_date"] == "2026-04-30"
    edit = api.call("PATCH", f"/invoices/{invoice['id']}", json={"notes": "changed"})
    assert edit.status_code == 409
    assert edit.headers["content-type"] == "application/problem+json"
    assert "credit note" in edit.json()["detail"] and edit.json()["status"] == 409
    assert api.call("DELETE", f"/invoices/{invoice['id']}").status_code == 409
    assert api.call("POST", f"/invoices/{invoice['id']}/send", json={}).status_code == 409


def test_drafts_are_edited_deleted_and_restored_and_numbers_stay_gapless(api):
    draft = _invoice(api, send=False)
    changed = api.call("PATCH", f"/invoices/{draft['id']}", json={
        "lines": [{"description": "x", "quantity": 3, "unit_price": "10"}]}).json()
    assert changed["total"] == "30.00"
    api.call("DELETE", f"/invoices/{draft['id']}")
    second = _invoice(api)
    assert second["number"] == "ACM-2026-00001"  # the deleted draft never took a number
    assert api.call("POST", f"/invoices/{draft['id']}/send", json={}).status_code == 409
    api.call("POST", f"/invoices/{draft['id']}/restore")
    third = api.call("POST", f"/invoices/{draft['id']}/send", json={"issue_date": "2026-04-01"}).json()
    assert third["number"] == "ACM-2026-00002"


def test_partial_payment_overpayment_credit_and_refund_keep_every_cent(api):
    invoice = _invoice(api, {"description": "Work", "quantity": 1, "unit_price": "100"})
    paid = api.call("POST", "/payments", json={"client_id": api.client_id, "method": "bank", "amount": "40",
                                               "received_on": "2026-04-02",
                                               "allocations": [{"invoice_id": invoice["id"], "amount": "40"}]})
    assert paid.status_code == 201, paid.text
    assert api.call("GET", f"/invoices/{invoice['id']}").json()["status"] == "partially_paid"
    over = api.call("POST", "/payments", json={"client_id": api.client_id, "method": "card", "amount": "80",
                                               "received_on": "2026-04-03",
                                               "allocations": [{"invoice_id": invoice["id"], "amount": "60"}]}).json()
    assert over["unapplied_credit"] == "20.00"
    assert api.call("GET", f"/invoices/{invoice['id']}").json()["status"] == "paid"
    assert api.call("GET", f"/clients/{api.client_id}/credit").json()["credit"] == {"USD": "20.00"}
    refund = api.call("POST", f"/payments/{over['id']}/refunds", json={"amount": "30", "refunded_on": "2026-04-05",
                                                                       "reason": "goodwill"})
    assert refund.status_code == 201, refund.text
    after = api.call("GET", f"/invoices/{invoice['id']}").json()
    assert (after["status"], after["amount_paid"], after["amount_due"]) == ("partially_paid", "90.00", "10.00")
    payment = api.call("GET", f"/payments/{over['id']}").json()
    assert (payment["allocated"], payment["refunded"], payment["unapplied_credit"]) == ("50.00", "30.00", "0.00")
    too_much = api.call("POST", f"/payments/{over['id']}/refunds", json={"amount": "50.01"})
    # 409: what is left to refund is the payment's state (a concurrent refund may have used it), not a bad field
    assert too_much.status_code == 409 and "cannot exceed what was paid" in too_much.json()["detail"]
    balances = {r["code"]: r["balance"] for r in api.call("GET", "/ledger/trial-balance").json()}
    assert balances["1100"] == "10.00" and balances["2200"] == "0.00"
    assert sum(Decimal(v) for v in balances.values()) == 0


def test_listed_payments_read_exactly_as_each_payment_and_page_with_filters(api):
    """The payment list reads plain rows in its own worker-thread call (issue 8): each listed payment, with its
    allocations, refunds and credit, must read as the payment's own answer; filters and the cursor still apply."""
    invoice = _invoice(api, {"description": "Work", "quantity": 1, "unit_price": "100"})
    made = []
    for amount, method, day in (("40", "bank", "2026-04-02"), ("80", "card", "2026-04-03"),
                                ("5", "cash", "2026-04-04")):
        allocations = [{"invoice_id": invoice["id"], "amount": amount}] if method == "bank" else []
        answer = api.call("POST", "/payments", json={"client_id": api.client_id, "method": method, "amount": amount,
                                                     "received_on": day, "allocations": allocations})
        assert answer.status_code == 201, answer.text
        made.append(answer.json()["id"])
    assert api.call("POST", f"/payments/{made[1]}/refunds", json={"amount": "30"}).status_code == 201
    first = api.call("GET", "/payments", params={"limit": 2}).json()
    second = api.call("GET", "/payments", params={"limit": 2, "cursor": first["next_cursor"]}).json()
    assert second["next_cursor"] is None
    listed = first["items"] + second["items"]
    assert [p["id"] for p in listed] == made[::-1]  # newest received first
    for item in listed:
        assert item == api.call("GET", f"/payments/{item['id']}").json()
    refunded = next(p for p in listed if p["id"] == made[1])
    assert (refunded["refunded"], refunded["unapplied_credit"]) == ("30.00", "50.00")
    by_method = api.call("GET", "/payments", params={"method": "card"}).json()["items"]
    assert [p["id"] for p in by_method] == [made[1]]
    since = api.call("GET", "/payments", params={"from": "2026-04-03", "sort": "amount_minor"}).json()["items"]
    assert [p["amount"] for p in since] == ["5.00", "80.00"]
    assert api.call("GET", "/payments", params={"cursor": "not-a-cursor"}).status_code == 400


def test_client_credit_is_applied_to_a_later_invoice(api):
    payment = api.call("POST", "/payments", json={"client_id": api.client_id, "method": "cash", "amount": "50",
                                                  "received_on": "2026-03-01"}).json()
    invoice = _invoice(api, {"description": "Work", "quantity": 1, "unit_price": "30"})
    applied = api.call("POST", f"/payments/{payment['id']}/allocations",
                       json={"allocations": [{"invoice_id": invoice["id"], "amount": "30"}],
                             "applied_on": "2026-04-01"})
    assert applied.status_code == 200 and applied.json()["unapplied_credit"] == "20.00"
    assert api.call("GET", f"/invoices/{invoice['id']}").json()["status"] == "paid"
    more = api.call("POST", f"/payments/{payment['id']}/allocations",
                    json={"allocations": [{"invoice_id": invoice["id"], "amount": "1"}]})
    assert more.status_code == 409


def test_a_full_credit_note_voids_an_unpaid_invoice_and_reverses_its_posting(api):
    invoice = _invoice(api)
    note = api.call("POST", f"/invoices/{invoice['id']}/credit-notes",
                    json={"reason": "cancelled", "issue_date": "2026-04-01"})
    assert note.status_code == 201, note.text
    assert note.json()["number"] == "CN-ACM-2026-00001" and note.json()["total"] == invoice["total"]
    voided = api.call("GET", f"/invoices/{invoice['id']}").json()
    assert (voided["status"], voided["amount_due"]) == ("void", "0.00")
    balances = {r["code"]: r["balance"] for r in api.call("GET", "/ledger/trial-balance").json()}
    assert balances["1100"] == balances["4000"] == balances["2100"] == "0.00"
    again = api.call("POST", f"/invoices/{invoice['id']}/credit-notes", json={})
    assert again.status_code == 409
    assert [n["id"] for n in api.call("GET", "/credit-notes").json()["items"]] == [note.json()["id"]]


def test_overdue_invoices_are_flagged_and_filterable(api):
    old = _invoice(api, issue_date="2020-01-31")
    assert old["is_overdue"] and old["days_overdue"] > 0
    listed = api.call("GET", "/invoices", params={"overdue": "true"}).json()["items"]
    assert [i["id"] for i in listed] == [old["id"]]


def test_stripe_linked_payment_needs_its_ids_and_a_charge_is_recorded_once(api):
    body = {"client_id": api.client_id, "method": "stripe", "amount": "10", "received_on": "2026-04-01"}
    assert api.call("POST", "/payments", json=body).status_code == 422
    body |= {"stripe_charge_id": "ch_1", "stripe_payment_intent_id": "pi_1"}
    assert api.call("POST", "/payments", json=body).status_code == 201
    assert api.call("POST", "/payments", json=body).status_code == 409


def test_manual_journal_entries_draft_post_reverse_and_closed_periods(api):
    unbalanced = api.call("POST", "/ledger/entries", json={
        "entry_date": "2026-03-31", "memo": "oops", "lines": [{"account_code": "6200", "debit": "99"},
                                                              {"account_code": "1000", "credit": "98.99"}]})
    assert unbalanced.status_code == 201 and unbalanced.json()["status"] == "draft"
    refused = api.call("POST", f"/ledger/entries/{unbalanced.json()['id']}/post")
    assert refused.status_code == 422 and "does not balance" in refused.json()["detail"]
    fixed = api.call("PATCH", f"/ledger/entries/{unbalanced.json()['id']}", json={
        "lines": [{"account_code": "6200", "debit": "99"}, {"account_code": "1000", "credit": "99"}]})
    assert fixed.status_code == 200
    posted = api.call("POST", f"/ledger/entries/{unbalanced.json()['id']}/post").json()
    assert posted["status"] == "posted"
    assert api.call("PATCH", f"/ledger/entries/{posted['id']}", json={"memo": "x"}).status_code == 409
    assert api.call("DELETE", f"/ledger/entries/{posted['id']}").status_code == 409
    assert api.call("POST", "/ledger/periods", "finance", json={"period": "2026-04"}).status_code == 403
    assert api.call("POST", "/ledger/periods", "admin", json={"period": "2026-04"}).status_code == 201
    closed = api.call("POST", f"/ledger/entries/{posted['id']}/reverse", json={"on": "2026-04-15"})
    assert closed.status_code == 409 and "2026-04 is closed" in closed.json()["detail"]
    reversal = api.call("POST", f"/ledger/entries/{posted['id']}/reverse", json={})
    assert reversal.status_code == 201 and reversal.json()["reversal_of_id"] == posted["id"]
    assert reversal.json()["lines"][0] == {"account_code": "6200", "debit": "0.00", "credit": "99.00"}
    assert api.call("POST", f"/ledger/entries/{posted['id']}/reverse", json={}).status_code == 409
    late = _invoice(api, send=False)
    sent = api.call("POST", f"/invoices/{late['id']}/send", json={"issue_date": "2026-04-30"})
    assert sent.status_code == 409 and "closed" in sent.json()["detail"]
    assert api.call("DELETE", "/ledger/periods/2026-04", "admin").status_code == 403
    assert api.call("DELETE", "/ledger/periods/2026-04", "owner").status_code == 204
    assert api.call("POST", f"/invoices/{late['id']}/send", json={"issue_date": "2026-04-30"}).status_code == 200


def test_every_change_is_in_the_audit_log_with_actor_and_request_id(api):
    invoice = _invoice(api, send=False)
    response = api.client.post(api.path(f"/invoices/{invoice['id']}/send"), json={"issue_date": "2026-03-31"},
                               headers=api.headers("finance", request_id="req-send-1"))
    assert response.status_code == 200
    rows = api.call("GET", "/audit-log", params={"entity_type": "invoice", "entity_id": invoice["id"]}).json()
    actions = [r["action"] for r in reversed(rows["items"])]
    assert actions[0] == "create" and "transition" in actions
    transition = next(r for r in rows["items"] if r["action"] == "transition")
    assert transition["request_id"] == "req-send-1" and transition["actor_user_id"] == api.user_ids["finance"]
    assert (transition["before"]["status"], transition["after"]["status"]) == ("draft", "sent")
    assert api.call("GET", "/audit-log/verify").json() == {"intact": True, "findings": []}
    assert api.call("GET", "/audit-log", "finance").status_code == 200  # finance reads the audit trail
    assert api.call("GET", "/audit-log", "staff").status_code == 403
