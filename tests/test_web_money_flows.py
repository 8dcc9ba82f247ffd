"""The money pages of the staff web app, driven over HTTP as staff use them: a cookie-jar session signed in
once per person, every form posted with the `csrf_token` hidden field of the page it came from, asking for
text/html. Each test checks what the person sees on the page and what the ops DB then holds (read directly,
never through the services). Expected amounts are worked out by hand in the comments.

Covered: the invoice form's live totals preview (locale-aware amounts, discount, tax; a badly typed amount
named beside its line), payments (record and allocate, apply client credit, partial refund, an over-refund
refused with nothing stored), journal entries (draft, post, an unbalanced one refused, reversal; the trial
balance still balances), closed periods (close, a posting dated in the month refused, reopen), API tokens
(created and shown once, used on the API, revoked from the page, then 401), and who may reach what (a staff
member gets the 403 page on settings and tokens; another company's user gets 404)."""

from __future__ import annotations

import html
import re
from datetime import date
from decimal import Decimal

import httpx
import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from operational_api.app import create_app
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.db.models import (
    Account,
    ApiToken,
    Client,
    ClosedPeriod,
    Company,
    Invoice,
    JournalEntry,
    JournalLine,
    Payment,
    PaymentAllocation,
    Refund,
)
from operational_api.db.security_models import Invitation
from operational_api.services import billing, invoicing, records
from tests.conftest import ENGINES
from tests.support.postgres import temporary_database
from tests.support.security_world import Browser, build_world

HTML = {"accept": "text/html"}


@pytest.fixture(scope="module", params=ENGINES)
def ops_url(request, tmp_path_factory):
    """One ops DB per engine for the whole module: a SQLite file, or a PostgreSQL database dropped afterwards."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('webflows') / 'ops.sqlite3'}"
        return
    with temporary_database() as url:
        yield url


@pytest.fixture(scope="module")
def world(ops_url):
    world = build_world(ops_url)
    engine = make_engine(world.url)
    world.db = make_sessionmaker(engine)
    with world.db() as s, s.begin():
        acme = s.get(Company, world.companies["acme"])
        billing.add_tax_rate(s, acme, name="Sales tax", rate_percent=Decimal("8.25"))
        world.initech = records.create_client(s, acme, name="Initech", email="").id
        world.hooli = records.create_client(s, acme, name="Hooli", email="").id
        retainer = invoicing.create_invoice(s, acme, s.get(Client, world.hooli),
                                            [invoicing.LineInput("Retainer", Decimal(1), 50000)])
        invoicing.send_invoice(s, acme, retainer, date(2026, 3, 2))
        world.retainer = retainer.id
    world.app = create_app(world.settings)
    yield world
    engine.dispose()


class Staff:
    """One person in a browser: pages of their company under /app/c/{id}, forms posted with the page's token."""

    def __init__(self, world, company: str, role: str):
        browser = Browser(TestClient(world.app, base_url="https://testserver"), world)
        assert browser.login(world.email(company, role)).status_code == 200
        self.http, self.home = browser.http, f"/app/c/{world.companies[company]}"

    def get(self, path: str, **headers) -> httpx.Response:
        return self.http.get(self.home + path, headers={**HTML, **headers})

    def submit(self, page: httpx.Response, path: str, data: dict, **headers) -> httpx.Response:
        """Post a form of `page` (its own csrf_token field) to `path`; redirects are followed as a browser does."""
        token = re.search(r'name="csrf_token" value="([^"]+)"', page.text)
        assert token, f"no form with a csrf_token on {page.url}"
        return self.http.post(self.home + path, data={**data, "csrf_token": token.group(1)},
                              headers={**HTML, **headers})


@pytest.fixture(scope="module")
def finance(world):
    return Staff(world, "acme", "finance")


@pytest.fixture(scope="module")
def owner(world):
    return Staff(world, "acme", "owner")


def visible(page: httpx.Response) -> str:
    """The page's text as a person reads it: no tags, entities decoded, one space between words."""
    text = html.unescape(re.sub(r"<[^>]+>", " ", page.text))
    return re.sub(r"\s+", " ", text.replace("\xa0", " ").replace("\u202f", " ")).strip()


def totals(page: httpx.Response) -> dict[str, str]:
    return {name: re.sub(r"\s+", " ", html.unescape(re.sub(r"<[^>]+>", "", cell)).replace("\xa0", " ")).strip()
            for name, cell in re.findall(r'data-total="(\w+)">(.*?)</td>', page.text)}


def kpis(page: httpx.Response) -> dict[str, str]:
    """The payment page's figures, by their label."""
    found = re.findall(r'<div class="value">([^<]*)</div><div class="label">([^<]*)</div>', page.text)
    return {html.unescape(label).split(" ", 1)[0] if label.startswith("received") else html.unescape(label):
            html.unescape(value).replace("\xa0", " ") for value, label in found}


def field_value(page: httpx.Response, input_id: str) -> str:
    return html.unescape(re.search(rf'id="{input_id}"[^>]*?value="([^"]*)"', page.text, re.S).group(1))


def field_error(page: httpx.Response, name: str) -> str:
    return html.unescape(re.search(rf'<span class="error" id="e-{name}">([^<]*)</span>', page.text).group(1))


def alert(page: httpx.Response) -> str:
    return " | ".join(html.unescape(m) for m in re.findall(r'class="msg err" role="alert"[^>]*>(.*?)</div>',
                                                             page.text, re.S))


def landed_on(page: httpx.Response, kind: str) -> int:
    return int(re.search(rf"/{kind}/(\d+)", page.url.path).group(1))


def count(world, model) -> int:
    with world.db() as s:
        return s.scalar(select(func.count()).select_from(model))


# -- 1. the invoice form's live totals -------------------------------------------------------------------

def _lines(*rows: tuple[str, str, str, str, str]) -> dict[str, list[str]]:
    keys = ("line_description", "line_quantity", "line_unit_price", "line_tax_rate", "line_discount")
    return {key: [row[i] for row in rows] for i, key in enumerate(keys)}


def test_the_live_preview_shows_the_servers_totals_for_lines_typed_in_the_readers_locale(world, finance):
    form = finance.get(f"/invoices/new?client_id={world.initech}")
    assert form.status_code == 200
    assert f'hx-post="{finance.home}/invoices/preview"' in form.text  # the totals come from the server
    assert '<option value="8.25">Sales tax (8.25%)</option>' in form.text
    invoices_before = count(world, Invoice)

    german = finance.submit(form, "/invoices/preview", {"client_id": world.initech, **_lines(
        ("Design", "2,5", "1.234,50", "8.25", "10"), ("Hosting", "1", "99", "0", ""))},
        **{"accept-language": "de-DE"})
    # By hand: 2.5 x 1,234.50 = 3,086.25, less 10 % = 2,777.625 -> 2,777.63 (half-up); tax 8.25 % of 2,777.63
    # = 229.154... -> 229.15. Hosting 99.00 untaxed. Subtotal 2,876.63, tax 229.15, total 3,105.78; in German.
    assert german.status_code == 200
    assert totals(german) == {"subtotal": "2.876,63 $", "tax": "229,15 $", "total": "3.105,78 $"}
    assert alert(german) == ""

    typo = finance.submit(form, "/invoices/preview", {"client_id": world.initech, **_lines(
        ("Design", "2.5", "1,234.50", "8.25", "10"), ("Hosting", "1", "1.234,50", "0", ""),
        ("Domain", "1", "19.999", "0", ""))})
    # The two badly typed prices are named with their line; the totals are the first line's alone.
    assert totals(typo) == {"subtotal": "$2,777.63", "tax": "$229.15", "total": "$3,006.78"}
    assert alert(typo).split("<br>") == [
        "line 2: unit price: '1.234,50' is not a number as written here (for example 1,234.50)",
        "line 3: unit price: 19.999 has more than 2 decimal places allowed for USD"]

    # The form's own "Preview totals" button: the error sits in the bad line's row, the typed text kept.
    shown = finance.submit(form, "/invoices/new", {"client_id": world.initech, "action": "preview", **_lines(
        ("Design", "2.5", "1,234.50", "8.25", "10"), ("Hosting", "1", "1.234,50", "0", ""))})
    assert shown.status_code == 200
    row = next(r for r in shown.text.split("<tr>") if 'value="Hosting"' in r)
    assert 'value="1.234,50"' in row and "is not a number as written here" in row and 'class="error"' in row
    design = next(r for r in shown.text.split("<tr>") if 'value="Design"' in r)
    assert "$2,777.63" in html.unescape(design) and 'class="error"' not in design

    refused = finance.submit(form, "/invoices/new", {"client_id": world.initech, "action": "save", **_lines(
        ("Hosting", "1", "1.234,50", "0", ""))})
    assert refused.status_code == 422 and "line 1: unit price: '1.234,50' is not a number" in alert(refused)
    assert count(world, Invoice) == invoices_before  # previews and refused saves store nothing


# -- 2. payments ----------------------------------------------------------------------------------------

def _sent_invoice(world, finance: Staff, client_id: int, description: str, price: str) -> int:
    form = finance.get(f"/invoices/new?client_id={client_id}")
    draft = finance.submit(form, "/invoices/new", {"client_id": client_id, "action": "save", **_lines(
        (description, "1", price, "0", ""))})
    assert "Draft invoice saved" in visible(draft)
    invoice_id = landed_on(draft, "invoices")
    sent = finance.submit(draft, f"/invoices/{invoice_id}/send", {})
    assert "Invoice sent" in visible(sent) and "sent" in re.search(r"<h1>(.*?)</h1>", sent.text).group(1)
    return invoice_id


def _invoice_state(world, invoice_id: int) -> tuple[str, int, int]:
    with world.db() as s:
        invoice = s.get(Invoice, invoice_id)
        return invoice.status, invoice.total_minor, invoice.amount_paid_minor


def _amount_due(page: httpx.Response) -> str:
    return html.unescape(re.sub(r"<[^>]+>", "", re.search(r'id="amount-due">(.*?)</td>', page.text).group(1))
                         ).replace("\xa0", " ")


def test_a_payment_is_recorded_allocated_its_credit_applied_and_partly_refunded(world, finance):
    first = _sent_invoice(world, finance, world.initech, "Audit", "100.00")
    second = _sent_invoice(world, finance, world.initech, "Follow-up", "60.00")

    form = finance.get(f"/payments/new?client_id={world.initech}&invoice_id={first}")
    assert field_value(form, f"a{first}") == "100.00" and field_value(form, f"a{second}") == ""
    paid = finance.submit(form, "/payments/new", {
        "client_id": world.initech, "method": "bank", "amount": "150.00", "reference": "WIRE-77",
        "received_on": field_value(form, "f-received_on"), "action": "save",
        "alloc_invoice": [first, second], "alloc_amount": ["100.00", ""]})
    assert "Payment recorded." in visible(paid)
    payment_id = landed_on(paid, "payments")
    assert kpis(paid) == {"received": "$150.00", "allocated to invoices": "$100.00", "refunded": "$0.00",
                          "client credit left": "$50.00"}
    invoice_page = finance.get(f"/invoices/{first}")
    assert '<span class="status paid">paid</span>' in invoice_page.text and _amount_due(invoice_page) == "$0.00"

    too_much = finance.submit(paid, f"/payments/{payment_id}/apply-credit",
                              {"alloc_invoice": [second], "alloc_amount": ["50.01"]})
    assert too_much.status_code == 422
    assert alert(too_much) == "allocations exceed the payment's unapplied credit (50.00 USD)"
    assert _invoice_state(world, second) == ("sent", 6000, 0)
    credited = finance.submit(paid, f"/payments/{payment_id}/apply-credit",
                              {"alloc_invoice": [second], "alloc_amount": ["30.00"]})
    assert "Credit applied." in visible(credited)
    assert kpis(credited)["client credit left"] == "$20.00"
    invoice_page = finance.get(f"/invoices/{second}")
    assert '<span class="status partially_paid">partially paid</span>' in invoice_page.text
    assert _amount_due(invoice_page) == "$30.00"  # 60.00 - 30.00 of credit

    # 45.00 back: the 20.00 of credit left first, then 25.00 taken back from the invoice paid last (the second).
    refunded = finance.submit(credited, f"/payments/{payment_id}/refund", {"amount": "45.00", "reason": "goodwill"})
    assert "Refund recorded." in visible(refunded) and "goodwill" in visible(refunded)
    assert kpis(refunded) == {"received": "$150.00", "allocated to invoices": "$105.00", "refunded": "$45.00",
                              "client credit left": "$0.00"}
    assert _amount_due(finance.get(f"/invoices/{second}")) == "$55.00"  # 60.00 - (30.00 - 25.00)
    assert _invoice_state(world, first) == ("paid", 10000, 10000)
    assert _invoice_state(world, second) == ("partially_paid", 6000, 500)
    with world.db() as s:
        payment = s.get(Payment, payment_id)
        assert (payment.amount_minor, payment.currency, payment.reference) == (15000, "USD", "WIRE-77")
        allocations = s.execute(select(PaymentAllocation.invoice_id, PaymentAllocation.amount_minor)
                                .where(PaymentAllocation.payment_id == payment_id)
                                .order_by(PaymentAllocation.id)).all()
        assert [tuple(a) for a in allocations] == [(first, 10000), (second, 3000), (second, -2500)]
        assert s.scalars(select(Refund.amount_minor).where(Refund.payment_id == payment_id)).all() == [4500]

    # 150.00 paid, 45.00 refunded: at most 105.00 more can go back. A cent more is refused and nothing changes.
    refused = finance.submit(refunded, f"/payments/{payment_id}/refund", {"amount": "105.01", "reason": "oops"})
    assert refused.status_code == 422
    assert alert(refused) == f"a refund cannot exceed what was paid and not yet refunded (105.00 USD of payment " \
                             f"{payment_id})"
    assert field_value(refused, "f-amount") == "105.01"  # what was typed stays in the field
    assert kpis(refused)["refunded"] == "$45.00"
    with world.db() as s:
        assert s.scalars(select(Refund.amount_minor).where(Refund.payment_id == payment_id)).all() == [4500]
        assert s.scalar(select(func.sum(PaymentAllocation.amount_minor))
                        .where(PaymentAllocation.payment_id == payment_id)) == 10500
    assert _invoice_state(world, second) == ("partially_paid", 6000, 500)


# -- 3. journal entries ---------------------------------------------------------------------------------

def _entry(day: str, memo: str, action: str, *legs: tuple[str, str, str]) -> dict:
    legs = legs + (("", "", ""),) * (4 - len(legs))
    return {"entry_date": day, "memo": memo, "action": action, "account": [leg[0] for leg in legs],
            "debit": [leg[1] for leg in legs], "credit": [leg[2] for leg in legs]}


def _lines_of(world, entry_id: int) -> list[tuple[str, int, int]]:
    with world.db() as s:
        rows = s.execute(select(Account.code, JournalLine.debit_minor, JournalLine.credit_minor)
                         .join(Account, Account.id == JournalLine.account_id)
                         .where(JournalLine.journal_entry_id == entry_id).order_by(JournalLine.id)).all()
        return [tuple(r) for r in rows]


def _posted_totals(world) -> tuple[int, int]:
    """Debits and credits of every posted line of acme's books, summed by the database."""
    with world.db() as s:
        return tuple(s.execute(select(func.sum(JournalLine.debit_minor), func.sum(JournalLine.credit_minor))
                               .join(JournalEntry, JournalEntry.id == JournalLine.journal_entry_id)
                               .where(JournalEntry.company_id == world.companies["acme"],
                                      JournalEntry.status == "posted")).one())


def test_a_journal_entry_is_drafted_posted_and_reversed_and_an_unbalanced_one_refused(world, finance):
    form = finance.get("/ledger/new")
    draft = finance.submit(form, "/ledger/new", _entry("2026-02-10", "Design software licence", "draft",
                                                       ("6200", "120.00", ""), ("1000", "", "120.00")))
    assert "Journal entry saved as a draft." in visible(draft) and '<span class="status draft">' in draft.text
    entry_id = landed_on(draft, "ledger")
    assert _lines_of(world, entry_id) == [("6200", 12000, 0), ("1000", 0, 12000)]

    posted = finance.submit(draft, f"/ledger/{entry_id}/post", {})
    assert "Journal entry posted." in visible(posted) and '<span class="status posted">' in posted.text
    with world.db() as s:
        assert s.get(JournalEntry, entry_id).status == "posted"

    entries_before = count(world, JournalEntry)
    unbalanced = finance.submit(form, "/ledger/new", _entry("2026-02-11", "Typo", "post",
                                                            ("6400", "100.00", ""), ("1000", "", "90.00")))
    assert unbalanced.status_code == 422
    assert alert(unbalanced) == "journal entry does not balance: debits 100.00 USD != credits 90.00 USD"
    assert field_value(unbalanced, "d1") == "100.00" and field_value(unbalanced, "c2") == "90.00"
    assert count(world, JournalEntry) == entries_before  # not even a draft is left behind

    reversed_ = finance.submit(posted, f"/ledger/{entry_id}/reverse", {})
    assert "Reversal entry posted." in visible(reversed_) and f"reverses entry {entry_id}" in visible(reversed_)
    reversal_id = landed_on(reversed_, "ledger")
    with world.db() as s:
        reversal = s.get(JournalEntry, reversal_id)
        assert (reversal.status, reversal.reversal_of_id, reversal.entry_date) == ("posted", entry_id,
                                                                                   date(2026, 2, 10))
    assert _lines_of(world, reversal_id) == [("6200", 0, 12000), ("1000", 12000, 0)]
    original = finance.get(f"/ledger/{entry_id}")
    assert f"reversed by entry {reversal_id}" in visible(original) and "Reverse entry" not in original.text
    again = finance.submit(original, f"/ledger/{entry_id}/reverse", {})
    assert again.status_code == 409 and f"journal entry {entry_id} is already reversed" in alert(again)
    assert count(world, JournalEntry) == entries_before + 1

    debits, credits = _posted_totals(world)
    assert debits == credits and debits > 0
    chart = finance.get("/accounts")
    row = next(r for r in chart.text.split("<tr>") if "<td>6200</td>" in r)
    assert "$0.00" in html.unescape(row)  # the licence and its reversal cancel out


# -- 4. closed periods ----------------------------------------------------------------------------------

def test_a_closed_month_refuses_postings_until_it_is_reopened(world, owner, finance):
    periods = owner.get("/periods")
    closed = owner.submit(periods, "/periods", {"period": "2025-06"})
    assert "Period closed." in visible(closed) and "<td>2025-06</td>" in closed.text
    with world.db() as s:
        assert s.scalars(select(ClosedPeriod.period)
                         .where(ClosedPeriod.company_id == world.companies["acme"])).all() == ["2025-06"]
    twice = owner.submit(closed, "/periods", {"period": "2025-06"})
    assert twice.status_code == 409 and "the period 2025-06 is already closed" in alert(twice)

    lines = (("6400", "35.00", ""), ("1010", "", "35.00"))
    form = finance.get("/ledger/new")
    entries_before = count(world, JournalEntry)
    refused = finance.submit(form, "/ledger/new", _entry("2025-06-15", "Late receipt", "post", *lines))
    assert refused.status_code == 422  # the entry form answers every refusal as a form to correct
    assert alert(refused) == "the period 2025-06 is closed: no entry dated 2025-06-15 can be posted"
    assert field_value(refused, "f-entry_date") == "2025-06-15"
    assert count(world, JournalEntry) == entries_before
    assert finance.submit(finance.get("/periods"), "/periods", {"period": "2025-07"}).status_code == 403

    reopened = owner.submit(closed, "/periods/2025-06/reopen", {})
    assert "Period reopened." in visible(reopened) and "No month is closed yet" in visible(reopened)
    with world.db() as s:
        assert s.scalar(select(func.count()).select_from(ClosedPeriod)) == 0
    posted = finance.submit(form, "/ledger/new", _entry("2025-06-15", "Late receipt", "post", *lines))
    assert "Journal entry posted." in visible(posted)
    with world.db() as s:
        entry = s.get(JournalEntry, landed_on(posted, "ledger"))
        assert (entry.status, entry.entry_date) == ("posted", date(2025, 6, 15))


# -- 5. API tokens --------------------------------------------------------------------------------------

def test_an_api_token_is_shown_once_works_on_the_api_and_stops_when_revoked_from_the_page(world, owner):
    page = owner.get("/tokens")
    created = owner.submit(page, "/tokens", {"name": "nightly export", "role": "viewer", "expires_in_days": "30"})
    assert created.status_code == 200 and "Copy it now, it is not shown again" in visible(created)
    token = re.search(r'<code class="secret" id="new-token">([^<]+)</code>', created.text).group(1)
    with world.db() as s:
        row = s.scalar(select(ApiToken).where(ApiToken.name == "nightly export"))
        assert (row.role, row.company_id, row.revoked_at) == ("viewer", world.companies["acme"], None)
        assert token.startswith(row.display_prefix) and token not in (row.token_hash, row.display_prefix)

    api = TestClient(world.app, base_url="https://testserver", headers={"Authorization": f"Bearer {token}"})
    invoices = f"/api/v1/companies/{world.companies['acme']}/invoices"
    listed = api.get(invoices)
    assert listed.status_code == 200 and world.retainer in {i["id"] for i in listed.json()["items"]}

    later = owner.get("/tokens")
    assert token not in later.text and "nightly export" in visible(later)
    revoked = owner.submit(later, f"/tokens/{row.id}/revoke", {})
    assert "Token revoked." in visible(revoked)
    assert re.search(r"<td>nightly export</td>.*?<td>revoked</td>", revoked.text, re.S)
    assert api.get(invoices).status_code == 401
    with world.db() as s:
        assert s.get(ApiToken, row.id).revoked_at is not None


# -- 6. who may reach what ------------------------------------------------------------------------------

def test_a_staff_member_gets_the_403_page_on_settings_tokens_and_managing_members(world):
    staff = Staff(world, "acme", "staff")
    for path in ("/settings", "/tokens"):
        page = staff.get(path)
        assert page.status_code == 403, path
        assert "You do not have access to this page" in visible(page)
    assert "your role (staff) may not company update" in visible(staff.get("/settings"))
    members = staff.get("/members")  # the member list is readable by everyone; managing it is not
    assert members.status_code == 200 and "Invite" not in visible(members)
    nav = re.search(r'<nav class="main".*?</nav>', members.text, re.S).group(0)
    assert "Settings" not in nav and "API tokens" not in nav and "Members" in nav
    invited = staff.submit(members, "/members", {"email": "friend@acme.test", "role": "admin"})
    assert invited.status_code == 403 and "You do not have access to this page" in visible(invited)
    with world.db() as s:
        assert s.scalar(select(func.count()).select_from(Invitation)) == 0


def test_another_companys_invoice_is_not_found_for_a_user_of_a_different_company(world, finance):
    assert finance.get(f"/invoices/{world.retainer}").status_code == 200  # acme's own finance sees it
    outsider = Staff(world, "globex", "finance")
    acme, globex = world.companies["acme"], world.companies["globex"]
    for path in (f"/app/c/{acme}/invoices/{world.retainer}", f"/app/c/{globex}/invoices/{world.retainer}",
                 f"/app/c/{acme}/invoices/{world.retainer}/pdf"):
        page = outsider.http.get(path, headers=HTML)
        assert page.status_code == 404, path
        assert "Page not found" in visible(page) and "Retainer" not in page.text and "Hooli" not in page.text
