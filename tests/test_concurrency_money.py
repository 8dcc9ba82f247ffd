"""Money stays right under concurrency: the real API (uvicorn) on a fresh PostgreSQL database, hit in parallel
by clients that each hold their OWN finance user and API token (threads + httpx, released together by a
barrier).

Races reproduced from issue 7: 10 refunds of 60.00 on one 100.00 payment; 10 applications of 60.00 from 100.00 of
client credit; posting a draft journal entry while it is patched to unbalanced lines (many pairs); sending a
draft invoice while its lines are edited (many pairs); a demoted member's token. Afterwards the books are
checked in SQL, independently of the services: every posted entry and the trial balance balance, refunds plus
allocations stay within each payment, every sent invoice's total equals its ledger posting and its lines, and
`ez360 audit verify` reports the trail intact.

One server and one database serve the whole module (module-scoped fixture) to keep inside the test budget.
"""

from __future__ import annotations

import os
import subprocess
import sys
import threading
import time
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from datetime import date

import httpx
import pytest
from sqlalchemy import text

from ez360.core.settings import Settings
from operational_api.app import create_app
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.security.tokens import issue_token
from operational_api.services import companies, plans, records
from tests.support.live_server import serve_app
from tests.support.migrated import migrate
from tests.support.postgres import temporary_database

pytestmark = pytest.mark.postgres

CLIENTS = 10  # parallel API clients, each its own user and token
PAIRS = 12  # post-vs-patch and send-vs-edit pairs
CYCLES = 6  # months closed while payments dated in them are recorded
FIGURES: Counter = Counter()  # printed at the end of the module (-s) and read by the final tie-out


@dataclass
class Books:
    url: str
    base: str
    company_id: int
    tokens: list[str]
    admin_token: str
    owner_token: str
    client_id: int = 0
    admin_membership_id: int = 0
    clients: list[httpx.Client] = field(default_factory=list)

    def path(self, suffix: str) -> str:
        return f"/api/v1/companies/{self.company_id}{suffix}"

    def client(self, i: int) -> httpx.Client:
        return self.clients[i % len(self.clients)]

    def owner(self, method: str, suffix: str, **kwargs) -> httpx.Response:
        response = httpx.request(method, self.base + self.path(suffix), timeout=30,
                                 headers={"Authorization": f"Bearer {self.owner_token}"}, **kwargs)
        assert response.status_code < 300, response.text
        return response

    def sql(self, statement: str, **params):
        engine = make_engine(self.url)
        try:
            with engine.connect() as conn:
                return conn.execute(text(statement), params).all()
        finally:
            engine.dispose()


@pytest.fixture(scope="module")
def books():
    with temporary_database("ez360_conc") as url:
        migrate(url)
        engine = make_engine(url)
        with make_sessionmaker(engine)() as s, s.begin():
            acme = companies.create_company(s, slug="acme", name="Acme", base_currency="USD", invoice_prefix="ACM",
                                            plan="business")
            owner = companies.create_user(s, email="owner@acme.test", full_name="Owner", password_hash="x")
            companies.add_member(s, acme, owner, "owner")
            tokens = []
            for i in range(CLIENTS):  # separate credentials per client
                user = companies.create_user(s, email=f"finance{i}@acme.test", full_name=f"Finance {i}",
                                             password_hash="x")
                companies.add_member(s, acme, user, "finance")
                tokens.append(issue_token(s, acme, user, "finance", f"client {i}")[1])
            admin = companies.create_user(s, email="admin@acme.test", full_name="Admin", password_hash="x")
            admin_membership_id = companies.add_member(s, acme, admin, "admin").id
            admin_token = issue_token(s, acme, admin, "admin", "admin's script")[1]
            owner_token = issue_token(s, acme, owner, "owner", "setup")[1]
            company_id = acme.id
        engine.dispose()
        app = create_app(Settings(_env_file=None, database_url=url))
        started = time.monotonic()
        with serve_app(app) as base:
            world = Books(url, base, company_id, tokens, admin_token, owner_token,
                          admin_membership_id=admin_membership_id)
            world.clients = [httpx.Client(base_url=base, timeout=60, headers={"Authorization": f"Bearer {t}"})
                             for t in tokens]
            world.client_id = world.owner("POST", "/clients", json={"name": "Race Client"}).json()["id"]
            try:
                yield world
            finally:
                for c in world.clients:
                    c.close()
        FIGURES["module_seconds"] = round(time.monotonic() - started)
        print("\nconcurrency figures:", dict(FIGURES))


def race(books: Books, calls: list[tuple[str, str, dict | None]]) -> list[httpx.Response]:
    """Send every call at once, each from its own client (own token); answers in the order of `calls`."""
    barrier = threading.Barrier(len(calls))

    def one(i: int) -> httpx.Response:
        method, suffix, body = calls[i]
        barrier.wait(timeout=30)
        return books.client(i).request(method, books.path(suffix), json=body)

    with ThreadPoolExecutor(max_workers=len(calls)) as pool:
        responses = list(pool.map(one, range(len(calls))))
    for r in responses:
        assert r.status_code < 500, f"{r.status_code}: {r.text}"
        if r.status_code >= 400:
            assert r.headers["content-type"] == "application/problem+json", r.text
    FIGURES["races"] += 1
    FIGURES["requests"] += len(calls)
    FIGURES["409"] += sum(r.status_code == 409 for r in responses)
    return responses


def _draft_invoice(books: Books, amount: str = "100.00") -> dict:
    return books.owner("POST", "/invoices", json={"client_id": books.client_id, "lines": [
        {"description": "Work", "quantity": 1, "unit_price": amount}]}).json()


def _sent_invoice(books: Books, amount: str) -> dict:
    invoice = _draft_invoice(books, amount)
    return books.owner("POST", f"/invoices/{invoice['id']}/send", json={"issue_date": "2026-05-04"}).json()


def _credit_payment(books: Books, amount: str = "100.00") -> dict:
    return books.owner("POST", "/payments", json={"client_id": books.client_id, "method": "bank", "amount": amount,
                                                  "received_on": "2026-05-05", "allocations": []}).json()


def test_ten_concurrent_refunds_of_60_on_a_100_payment_one_wins(books):
    payment = _credit_payment(books)
    answers = race(books, [("POST", f"/payments/{payment['id']}/refunds",
                            {"amount": "60.00", "refunded_on": "2026-05-06"})] * CLIENTS)
    codes = Counter(r.status_code for r in answers)
    assert codes == {201: 1, 409: CLIENTS - 1}, codes
    assert all("cannot exceed" in r.json()["detail"] for r in answers if r.status_code == 409)
    (refunded,) = books.sql("SELECT COALESCE(SUM(amount_minor), 0) FROM refunds WHERE payment_id = :p",
                            p=payment["id"])[0]
    assert refunded == 6000
    assert books.owner("GET", f"/payments/{payment['id']}").json()["unapplied_credit"] == "40.00"
    tie_out(books)


def test_ten_concurrent_credit_applications_of_60_from_100_credit_one_wins(books):
    payment = _credit_payment(books)
    invoices = [_sent_invoice(books, "60.00") for _ in range(CLIENTS)]
    answers = race(books, [("POST", f"/payments/{payment['id']}/allocations",
                            {"allocations": [{"invoice_id": inv["id"], "amount": "60.00"}],
                             "applied_on": "2026-05-06"}) for inv in invoices])
    codes = Counter(r.status_code for r in answers)
    assert codes == {200: 1, 409: CLIENTS - 1}, codes
    assert all("unapplied credit" in r.json()["detail"] for r in answers if r.status_code == 409)
    (applied,) = books.sql("SELECT COALESCE(SUM(amount_minor), 0) FROM payment_allocations WHERE payment_id = :p",
                           p=payment["id"])[0]
    assert applied == 6000
    paid = [inv for inv in invoices if books.owner("GET", f"/invoices/{inv['id']}").json()["status"] == "paid"]
    assert len(paid) == 1
    tie_out(books)


def test_posting_races_a_patch_to_unbalanced_lines_and_never_posts_an_unbalanced_entry(books):
    balanced = [{"account_code": "6200", "debit": "10.00"}, {"account_code": "1000", "credit": "10.00"}]
    unbalanced = [{"account_code": "6200", "debit": "10.00"}, {"account_code": "1000", "credit": "9.99"}]
    outcomes = Counter()
    for _ in range(PAIRS):
        entry = books.owner("POST", "/ledger/entries", json={"entry_date": "2026-05-07", "memo": "race",
                                                             "currency": "USD", "lines": balanced}).json()
        post, patch = race(books, [("POST", f"/ledger/entries/{entry['id']}/post", None),
                                   ("PATCH", f"/ledger/entries/{entry['id']}", {"lines": unbalanced})])
        if post.status_code == 200:  # the post won: the patch found a posted entry
            assert patch.status_code == 409, patch.text
            outcomes["post first"] += 1
        else:  # the patch won: the post checked the unbalanced lines
            assert patch.status_code == 200 and post.status_code == 422, (post.text, patch.text)
            assert "does not balance" in post.json()["detail"]
            outcomes["patch first"] += 1
    FIGURES["post_vs_patch"] = dict(outcomes)
    tie_out(books)  # no posted entry is unbalanced


def test_sending_races_an_edit_of_the_lines_and_the_ledger_posts_what_was_sent(books):
    outcomes = Counter()
    for _ in range(PAIRS):
        invoice = _draft_invoice(books, "100.00")
        send, edit = race(books, [
            ("POST", f"/invoices/{invoice['id']}/send", {"issue_date": "2026-05-08"}),
            ("PATCH", f"/invoices/{invoice['id']}", {"lines": [
                {"description": "More work", "quantity": 5, "unit_price": "100.00"}]})])
        assert send.status_code == 200, send.text  # a send never fails because of an edit
        if edit.status_code == 200:  # the edit landed first: the send sent the edited lines
            assert send.json()["total"] == "500.00"
            outcomes["edit first"] += 1
        else:
            assert edit.status_code == 409 and send.json()["total"] == "100.00", edit.text
            outcomes["send first"] += 1
    FIGURES["send_vs_edit"] = dict(outcomes)
    tie_out(books)


def _close_while_paying(books: Books, owner: httpx.Client, period: str) -> list[list[httpx.Response]]:
    """Every finance client records payments dated in `period` until the owner's close has answered, then one
    more; the owner closes the month once every client has had an answer (so payments are in flight). Each
    client's answers, in order."""
    closed, under_way = threading.Event(), threading.Event()
    answered: Counter = Counter()
    barrier = threading.Barrier(CLIENTS)

    def pay(i: int) -> list[httpx.Response]:
        answers = []
        barrier.wait(timeout=30)
        while True:
            last = closed.is_set()
            answers.append(books.client(i).post(books.path("/payments"), json={
                "client_id": books.client_id, "method": "bank", "amount": "1.00", "received_on": f"{period}-15",
                "allocations": []}))
            answered[i] += 1
            if len(answered) == CLIENTS:
                under_way.set()
            if last:
                return answers

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        payers = [pool.submit(pay, i) for i in range(CLIENTS)]
        assert under_way.wait(timeout=120)
        try:
            closing = owner.post(books.path("/ledger/periods"), json={"period": period})
        finally:
            closed.set()
        assert closing.status_code == 201, closing.text
        return [f.result() for f in payers]


def test_closing_a_month_races_payments_dated_in_it_and_no_entry_is_posted_into_it_after_the_close(books):
    """A manager closes a month while every finance client keeps recording payments dated in it. Each payment
    either commits before the close (its entry is in the month, legitimately) or is refused whole with a 409;
    none commits into the month after the close. Commit order is read from the audit trail: each company's
    rows are sealed under its head lock, held until COMMIT, so their sequence numbers are the order in which
    the transactions committed."""
    outcomes: Counter = Counter()
    owner = httpx.Client(base_url=books.base, timeout=60, headers={"Authorization": f"Bearer {books.owner_token}"})
    with owner:
        for month in range(1, CYCLES + 1):
            period = f"2025-{month:02d}"
            by_client = _close_while_paying(books, owner, period)
            # a payment sent after the close had answered is refused by the service's own check
            assert all(answers[-1].status_code == 409 for answers in by_client), [a[-1].text for a in by_client]
            answers = [a for client_answers in by_client for a in client_answers]
            for a in answers:
                assert a.status_code in (201, 409), a.text
                if a.status_code == 409:
                    assert "is closed" in a.json()["detail"], a.text  # the service's check, or the guard's
            recorded = sum(a.status_code == 201 for a in answers)
            outcomes["recorded"] += recorded
            outcomes["refused"] += len(answers) - recorded
            stored = books.sql("SELECT count(*) FROM payments WHERE company_id = :c AND received_on "
                               "BETWEEN :first AND :last", c=books.company_id, first=date(2025, month, 1),
                               last=date(2025, month, 28))[0][0]
            assert stored == recorded  # a refused payment left nothing
            late = books.sql(
                "SELECT e.seq, e.entity_id FROM audit_log e, audit_log c "
                "WHERE e.company_id = :c AND c.company_id = :c AND c.entity_type = 'closed_period' "
                "AND c.action = 'create' AND c.after ->> 'period' = :p AND e.entity_type = 'journal_entry' "
                "AND e.after ->> 'status' = 'posted' AND e.before ->> 'status' = 'draft' "
                "AND e.after ->> 'entry_date' LIKE :p || '-%' AND e.seq > c.seq", c=books.company_id, p=period)
            assert late == [], f"entries posted into {period} after it was closed: {late}"
    FIGURES["close_vs_payments"] = dict(outcomes)
    tie_out(books)


# what a Free plan counts -> (API path, the body of one more, how many the company holds before the race)
PLAN_RACES = {
    "clients": ("/clients", lambda i, client_id: {"name": f"Racer {i}"}, 8),
    "active_projects": ("/projects", lambda i, client_id: {"client_id": client_id, "name": f"Racer {i}",
                                                          "hourly_rate": "100.00"}, 1),
    "users": ("/invitations", lambda i, client_id: {"email": f"racer{i}@small.test", "role": "staff"}, 1),
}


@pytest.mark.parametrize("limit", list(PLAN_RACES))
def test_what_a_free_plan_counts_stops_at_its_limit_when_created_at_once(books, limit):
    """A Free company just below one of its limits (clients, active projects, users: members plus open
    invitations); 10 API clients, each with its own token, create one more at the same moment: exactly as many
    as there is room for are created, the others answer 402 and leave nothing."""
    path, body, existing = PLAN_RACES[limit]
    maximum = getattr(plans.PLANS["free"], limit)
    engine = make_engine(books.url)
    with make_sessionmaker(engine)() as s, s.begin():
        slug = f"small{list(PLAN_RACES).index(limit)}"
        small = companies.create_company(s, slug=slug, name=f"Small {limit}", base_currency="USD",
                                         invoice_prefix="SML", plan="free")
        owner = companies.create_user(s, email=f"owner@{slug}.test", full_name="Owner", password_hash="x")
        companies.add_member(s, small, owner, "owner")  # the first of the users
        client = records.create_client(s, small, name="First client", email="")
        # the first client and the owner already count towards "clients" and "users"
        for i in range(existing - (limit in ("clients", "users"))):
            if limit == "clients":
                records.create_client(s, small, name=f"Client {i}", email="")
            else:
                records.create_project(s, small, client, name=f"Project {i}", hourly_rate_minor=100)
        tokens = [issue_token(s, small, owner, "owner", f"script {i}")[1] for i in range(CLIENTS)]
        small_id, client_id = small.id, client.id
    engine.dispose()
    barrier = threading.Barrier(CLIENTS)

    def create(i: int) -> httpx.Response:
        with httpx.Client(base_url=books.base, timeout=60, headers={"Authorization": f"Bearer {tokens[i]}"}) as c:
            barrier.wait(timeout=30)
            return c.post(f"/api/v1/companies/{small_id}{path}", json=body(i, client_id))

    with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
        answers = list(pool.map(create, range(CLIENTS)))
    room = maximum - existing
    codes = Counter(a.status_code for a in answers)
    assert codes == {201: room, 402: CLIENTS - room}, [a.text for a in answers]
    assert all(f"at most {maximum} " in a.json()["detail"] for a in answers if a.status_code == 402)
    counted = {"clients": "SELECT count(*) FROM clients WHERE company_id = :c AND deleted_at IS NULL",
               "active_projects": "SELECT count(*) FROM projects WHERE company_id = :c AND deleted_at IS NULL "
                                  "AND status = 'active'",
               "users": "SELECT (SELECT count(*) FROM memberships WHERE company_id = :c) + (SELECT count(*) FROM "
                        "invitations WHERE company_id = :c AND status = 'pending')"}[limit]
    assert books.sql(counted, c=small_id)[0][0] == maximum
    FIGURES[f"plan_race_{limit}"] = dict(codes)


def test_a_demoted_members_token_loses_its_old_privileges_at_once(books):
    admin = httpx.Client(base_url=books.base, timeout=30, headers={"Authorization": f"Bearer {books.admin_token}"})
    with admin:
        assert admin.post(books.path("/clients"), json={"name": "Admin's client"}).status_code == 201
        books.owner("PATCH", f"/members/{books.admin_membership_id}", json={"role": "viewer"})
        barrier = threading.Barrier(CLIENTS)

        def write(_i: int) -> int:
            barrier.wait(timeout=30)
            return admin.post(books.path("/clients"), json={"name": "After demotion"}).status_code

        with ThreadPoolExecutor(max_workers=CLIENTS) as pool:
            codes = Counter(pool.map(write, range(CLIENTS)))
        assert codes == {403: CLIENTS}, codes
        assert admin.get(books.path("/clients")).status_code == 200  # still a viewer
        books.owner("DELETE", f"/members/{books.admin_membership_id}")
        assert admin.get(books.path("/clients")).status_code in (401, 404)
    FIGURES["demoted_token_403"] = codes[403]


def tie_out(books: Books) -> None:
    """The books recomputed in SQL, independently of the services: every posted entry and the trial balance
    balance, payments are not over-used, invoices not over-paid, every sent invoice's total is its lines and its
    AR posting."""
    unbalanced = books.sql(
        "SELECT e.id FROM journal_entries e JOIN journal_lines l ON l.journal_entry_id = e.id "
        "WHERE e.company_id = :c AND e.status = 'posted' GROUP BY e.id "
        "HAVING SUM(l.debit_minor) <> SUM(l.credit_minor) OR SUM(l.debit_minor) = 0", c=books.company_id)
    assert unbalanced == []
    trial = books.sql("SELECT e.currency, SUM(l.debit_minor), SUM(l.credit_minor) FROM journal_lines l "
                      "JOIN journal_entries e ON e.id = l.journal_entry_id "
                      "WHERE e.company_id = :c AND e.status = 'posted' GROUP BY e.currency", c=books.company_id)
    assert all(debit == credit for _cur, debit, credit in trial), trial
    over = books.sql("SELECT p.id FROM payments p WHERE p.amount_minor < "
                     "(SELECT COALESCE(SUM(a.amount_minor), 0) FROM payment_allocations a WHERE a.payment_id = p.id)"
                     " + (SELECT COALESCE(SUM(r.amount_minor), 0) FROM refunds r WHERE r.payment_id = p.id)")
    assert over == []
    mismatched = books.sql(
        "SELECT i.id, i.total_minor, "
        "(SELECT SUM(net_minor + tax_minor) FROM invoice_lines WHERE invoice_id = i.id), "
        "(SELECT SUM(l.debit_minor) FROM journal_entries e JOIN journal_lines l ON l.journal_entry_id = e.id "
        " JOIN accounts a ON a.id = l.account_id "
        " WHERE e.source_type = 'invoice' AND e.source_id = i.id AND a.code = '1100') "
        "FROM invoices i WHERE i.company_id = :c AND i.status <> 'draft'", c=books.company_id)
    assert all(total == lines == posted for _id, total, lines, posted in mismatched), mismatched
    overpaid = books.sql("SELECT i.id FROM invoices i WHERE i.amount_paid_minor + i.credited_minor > i.total_minor "
                         "OR i.amount_paid_minor <> (SELECT COALESCE(SUM(amount_minor), 0) FROM payment_allocations "
                         "WHERE invoice_id = i.id)")
    assert overpaid == []


def test_afterwards_the_books_tie_out_in_sql_and_the_audit_trail_is_intact(books):
    # runs last in the module (and on its own worker's database under xdist): whatever the races wrote
    tie_out(books)
    env = {**os.environ, "EZ360_DATABASE_URL": books.url}
    verify = subprocess.run([sys.executable, "-m", "ez360.cli", "audit", "verify"], env=env, capture_output=True,
                            text=True, timeout=120)
    assert verify.returncode == 0, verify.stdout + verify.stderr
    assert "audit trail intact" in verify.stdout
