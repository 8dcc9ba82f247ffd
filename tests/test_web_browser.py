"""The staff web app end to end in a real Chromium: sign-up with the mailed link (a real SMTP server), 2FA
enrolment with codes computed from the secret the page shows, client -> project -> time -> invoice drafted
from the work -> send (the client's mail carries the PDF) -> payment -> paid; the refusal to edit a sent
invoice; a wrong second-factor code; the onboarding checklist ticking itself; a staff user without settings;
another company's pages answering 404; money typed the German way. Every main page is checked with axe-core
(no serious or critical violation) and screenshotted at desktop and phone width (EZ360_TEST_ARTIFACTS)."""

from __future__ import annotations

import os
import re
from pathlib import Path

import pytest
from axe_playwright_python.sync_playwright import Axe

from ez360.core.settings import Settings
from operational_api.app import create_app
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.security import passwords
from operational_api.services import companies
from tests.support.browser import chromium
from tests.support.live_server import serve_app
from tests.support.migrated import migrate
from tests.support.platform import free_port
from tests.support.security_world import Codes, smtp_server, token_from

pytestmark = pytest.mark.slow
PASSWORD = "amber harbour lantern 7"
DESKTOP, PHONE = {"width": 1280, "height": 800}, {"width": 390, "height": 844}
ARTIFACTS = Path(os.environ.get("EZ360_TEST_ARTIFACTS", "var/test-artifacts")) / "web"


class Site:
    def __init__(self, base: str, inbox, url: str, browser):
        self.base, self.inbox, self.url, self.browser = base, inbox, url, browser
        self.owner: dict = {}
        self.checked: list[str] = []

    def context(self, **kwargs):
        context = self.browser.new_context(base_url=self.base, viewport=DESKTOP, **kwargs)
        context.set_default_timeout(20_000)
        return context

    def db(self):
        return make_sessionmaker(make_engine(self.url))()


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('web') / 'ops.sqlite3'}"
    migrate(url)
    settings = Settings(_env_file=None, database_url=url, smtp_port=free_port(), session_cookie_secure=False)
    app = create_app(settings)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with smtp_server(settings.smtp_port) as inbox, serve_app(app) as base, chromium() as browser:
        settings.public_base_url = base  # links in mails point at this server
        yield Site(base, inbox, url, browser)


def check_page(site: Site, page, name: str) -> None:
    """No serious or critical axe-core violation; screenshots at desktop and phone width."""
    results = Axe().run(page)
    bad = [f"{v['id']} ({v['impact']}): {[n['target'] for n in v['nodes']][:3]}"
           for v in results.response["violations"] if v["impact"] in ("serious", "critical")]
    assert bad == [], f"{name}: {bad}"
    page.screenshot(path=str(ARTIFACTS / f"{name}-desktop.png"), full_page=True)
    page.set_viewport_size(PHONE)
    width = page.evaluate("document.documentElement.scrollWidth")
    wide = page.evaluate("""[...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > 392
        && !e.parentElement.closest('.table-wrap')).slice(0, 4).map(e => e.tagName + '.' + e.className + '#' + e.id)""")
    page.screenshot(path=str(ARTIFACTS / f"{name}-phone.png"), full_page=True)
    page.set_viewport_size(DESKTOP)
    assert width <= PHONE["width"] + 1, f"{name} scrolls sideways at 390 px ({width} px wide: {wide})"
    site.checked.append(name)


def mail_to(site: Site, address: str, containing: str = ""):
    """The first mail to `address` whose text contains `containing` (waiting for it to arrive)."""
    for _ in range(300):
        for message in list(site.inbox.messages):
            if message["To"] == address and containing in message.get_body(("plain",)).get_content():
                return message
        site.inbox.wait_for(len(site.inbox.messages) + 1, timeout=0.1)
    raise AssertionError(f"no mail to {address} containing {containing!r}")


def sign_in(page, email: str, secret: str | None = None, password: str = PASSWORD) -> None:
    page.goto("/app/login")
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()
    if secret:
        page.get_by_label("6-digit code from your authenticator app").fill(Codes.next(secret))
        page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/app/c/\d+"))


def test_owner_goes_from_sign_up_to_a_paid_invoice(site):
    context = site.context()
    page = context.new_page()
    errors = []
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    page.goto("/app/register")
    check_page(site, page, "register")
    page.get_by_label("Your name").fill("Ana Silva")
    page.get_by_label("Work email address").fill("ana@studio.test")
    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Create account").click()
    page.get_by_text("Check your inbox").wait_for()

    verification = mail_to(site, "ana@studio.test", "/verify-email?token=").get_content()
    link = re.search(r"http://\S+/verify-email\?token=\S+", verification).group(0)
    page.goto(link)
    page.get_by_role("button", name="Verify my address").click()
    page.get_by_text("Your email address is verified").wait_for()
    check_page(site, page, "login")

    page.get_by_label("Email address").fill("ana@studio.test")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("heading", name="Create your company").wait_for()
    check_page(site, page, "company-new")
    page.get_by_label("Company name").fill("Studio Silva")
    page.get_by_label("Currency of your books").select_option("USD")
    page.get_by_role("button", name="Create company").click()

    page.wait_for_url(re.compile("two-factor"))
    # Owners must enrol a second factor before the company's pages open.
    page.get_by_label("Confirm your password to start").fill(PASSWORD)
    page.get_by_role("button", name="Set up two-factor authentication").click()
    page.locator("#totp-secret").wait_for()  # the enrolment page has answered
    assert page.locator(".qr svg").count() == 1  # rendered by the server, no image from elsewhere
    check_page(site, page, "two-factor")
    secret = page.locator("#totp-secret").inner_text().strip()
    page.get_by_label("6-digit code").fill(Codes.next(secret))
    page.get_by_role("button", name="Turn on two-factor authentication").click()
    page.locator(".codes code").first.wait_for()  # the answer's page, however long a loaded machine takes
    assert page.locator(".codes code").count() == 10
    recovery_codes = page.locator(".codes code").all_inner_texts()
    page.get_by_role("link", name="I saved them, continue").click()
    page.get_by_text("Your company is ready").wait_for()
    site.owner = {"email": "ana@studio.test", "secret": secret, "codes": recovery_codes,
                  "company": page.url.split("/app/c/")[1].split("?")[0]}
    home = f"/app/c/{site.owner['company']}"

    checklist = page.locator("#checklist")
    assert checklist.locator("li[data-step=enable_2fa]").get_attribute("class") == "done"
    assert checklist.locator("li[data-step=add_client]").get_attribute("class") == "todo"
    check_page(site, page, "home-new")

    page.get_by_role("link", name="Clients").click()
    check_page(site, page, "clients-empty")
    page.get_by_role("link", name="Add a client").first.click()
    page.get_by_label("Name", exact=True).fill("Globex Corp")
    page.get_by_label("Billing email").fill("ap@globex.test")
    page.get_by_role("button", name="Save client").click()
    page.get_by_text("Client added.").wait_for()
    page.get_by_role("link", name="Add a project").click()
    page.get_by_label("Project name").fill("Website rebuild")
    page.get_by_label("Hourly rate (USD)").fill("150.00")
    page.get_by_role("button", name="Save project").click()
    page.get_by_text("Project added.").wait_for()

    page.goto(home)
    assert checklist.locator("li[data-step=add_client]").get_attribute("class") == "done"  # ticked by usage
    assert checklist.locator("li[data-step=add_project]").get_attribute("class") == "done"
    assert checklist.locator("li[data-step=create_invoice]").get_attribute("class") == "todo"

    page.goto(f"{home}/time/week")
    page.get_by_label("Project", exact=True).select_option(label="Website rebuild")
    page.get_by_label("Hours", exact=True).fill("7.5")
    page.get_by_label("What you did").fill("Design sprint")
    page.get_by_role("button", name="Log time").click()
    page.get_by_text("Time logged.").wait_for()
    check_page(site, page, "timesheet")

    page.goto(f"{home}/clients")
    page.get_by_role("link", name="Globex Corp").click()
    assert "7.5 h of billable time" in page.locator("#unbilled").locator("..").inner_text()
    check_page(site, page, "client")
    page.get_by_role("button", name="Draft an invoice from this work").click()
    page.get_by_text("Draft invoice created from the unbilled work").wait_for()
    assert "$1,125.00" in page.locator("#amount-due").inner_text()
    page.get_by_role("button", name="Send to ap@globex.test").click()
    page.get_by_text("Invoice sent").wait_for()
    number = page.get_by_role("heading", level=1).inner_text().split()[0]
    check_page(site, page, "invoice-sent")

    mail = mail_to(site, "ap@globex.test")
    assert number in mail["Subject"]
    pdf = [p for p in mail.iter_attachments() if p.get_content_type() == "application/pdf"]
    assert len(pdf) == 1 and pdf[0].get_content().startswith(b"%PDF")
    view_link = re.search(r"http://\S+/i/\S+", mail.get_body(("plain",)).get_content()).group(0)

    page.get_by_role("link", name="Edit", exact=True).click()  # a sent invoice cannot change
    assert "cannot change; issue a credit note" in page.locator("#invoice-error").inner_text()

    page.get_by_role("link", name="Record a payment").click()
    assert page.get_by_label("Amount received (USD)").input_value() == "1,125.00"
    check_page(site, page, "payment-new")
    page.get_by_role("button", name="Record payment").click()
    page.get_by_text("Payment recorded.").wait_for()
    page.get_by_role("link", name=number).click()
    assert page.locator("h1 .status").first.inner_text() == "paid"
    assert "$0.00" in page.locator("#amount-due").inner_text()

    client_view = site.browser.new_page()
    client_view.goto(view_link)
    assert number in client_view.content() and "Website rebuild" in client_view.content()
    client_view.close()

    for name, path in (("home", ""), ("invoices", "/invoices"), ("payments", "/payments"), ("projects", "/projects"),
                       ("time", "/time"), ("expenses", "/expenses"), ("ledger", "/ledger"), ("accounts", "/accounts"),
                       ("periods", "/periods"), ("audit", "/audit"), ("members", "/members"), ("tokens", "/tokens"),
                       ("settings", "/settings"), ("invoice-new", "/invoices/new")):
        page.goto(home + path)
        check_page(site, page, name)
    assert [e for e in errors if "Content Security Policy" in e] == []
    context.close()


def test_a_wrong_second_factor_code_is_refused_and_the_right_one_signs_in(site):
    if not site.owner:
        pytest.skip("needs the owner created by the journey test")
    page = site.context().new_page()
    page.goto("/app/login")
    page.get_by_label("Email address").fill(site.owner["email"])
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_label("6-digit code from your authenticator app").fill("000000")
    page.get_by_role("button", name="Continue").click()
    assert "the code is incorrect or was already used" in page.locator(".field .error").inner_text()
    check_page(site, page, "second-factor-wrong")
    page.get_by_label("6-digit code from your authenticator app").fill(Codes.next(site.owner["secret"]))
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/app/c/\d+"))
    page.context.close()


def _user(site: Site, email: str) -> int:
    with site.db() as db, db.begin():
        return companies.create_user(db, email=email, full_name=email.split("@")[0].title(),
                                     password_hash=passwords.hash_password(PASSWORD)).id


def _member(site: Site, email: str, role: str, company_slug: str) -> int:
    """A member of a company of its own (as the data of another tenant, set up directly)."""
    from operational_api.db.models import Company, User
    user_id = _user(site, email)
    with site.db() as db, db.begin():
        company = companies.create_company(db, slug=company_slug, name=company_slug.title(), base_currency="EUR",
                                           invoice_prefix="OT")
        companies.add_member(db, company, db.get(User, user_id), role)
        return db.get(Company, company.id).id


def test_staff_work_without_settings_and_type_money_the_german_way(site):
    if not site.owner:
        pytest.skip("needs the company created by the journey test")
    company = int(site.owner["company"])
    _user(site, "sam@studio.test")
    owner = site.context().new_page()  # the owner invites Sam from the members page
    sign_in(owner, site.owner["email"], site.owner["secret"])
    owner.goto(f"/app/c/{company}/members")
    invite = owner.get_by_role("region", name="Invite a teammate")
    invite.get_by_label("Email address").fill("sam@studio.test")
    invite.get_by_label("Role").select_option("staff")
    owner.get_by_role("button", name="Send invitation").click()
    owner.get_by_text("Invitation sent").wait_for()
    assert "sam@studio.test" in owner.get_by_role("region", name="Open invitations").inner_text()
    owner.context.close()
    link = re.search(r"http://\S+/invitations/accept\?token=\S+",
                     mail_to(site, "sam@studio.test", "/invitations/accept?token=").get_content()).group(0)

    context = site.context(locale="de-DE")
    page = context.new_page()
    page.goto(link)  # signed out: sign in first, then back to the invitation
    page.get_by_label("Email address").fill("sam@studio.test")
    page.get_by_label("Password", exact=True).fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.get_by_role("button", name="Accept and join").click()
    page.get_by_text("you are now a member of this company").wait_for()
    nav = page.get_by_role("navigation", name="Main")
    assert nav.get_by_role("link", name="Settings").count() == 0
    assert page.get_by_role("link", name="Dashboards").count() == 0  # staff do not read the dashboards
    assert nav.get_by_role("link", name="Projects").count() == 1
    page.goto(f"/app/c/{company}/settings")
    assert page.get_by_role("heading", name="You do not have access to this page").is_visible()

    page.goto(f"/app/c/{company}/projects/new")
    page.get_by_label("Client").select_option(label="Globex Corp (USD)")
    page.get_by_label("Project name").fill("Retainer")
    page.get_by_label("Hourly rate (USD)").fill("1,234.50")  # English form, refused for a German reader
    page.get_by_role("button", name="Save project").click()
    assert "1,234.50" in page.locator("#e-hourly_rate").inner_text()
    assert page.get_by_label("Project name").input_value() == "Retainer"  # what was typed is kept
    page.get_by_label("Hourly rate (USD)").fill("1.234,50")
    page.get_by_role("button", name="Save project").click()
    page.get_by_text("Project added.").wait_for()
    assert page.get_by_label("Hourly rate (USD)").input_value() == "1.234,50"
    page.get_by_label("Hourly rate (USD)").fill("1.234,505")  # more decimals than USD has: the money rules say no
    page.get_by_role("button", name="Save project").click()
    assert "more than 2 decimal places" in page.locator("#e-hourly_rate").inner_text()
    context.close()


def test_a_member_of_another_company_gets_404_on_its_pages(site):
    if not site.owner:
        pytest.skip("needs the company created by the journey test")
    company = int(site.owner["company"])
    _member(site, "olga@other.test", "viewer", "other-co")
    context = site.context()
    page = context.new_page()
    sign_in(page, "olga@other.test")
    for path in ("", "/invoices", "/invoices/1", "/clients/1", "/settings"):
        response = page.goto(f"/app/c/{company}{path}")
        assert response.status == 404, path
        assert page.get_by_role("heading", name="Page not found").is_visible()
    check_page(site, page, "not-found")
    context.close()


def test_docs_are_swagger_ui_served_from_this_server(site):
    page = site.context().new_page()
    requested, errors = [], []
    page.on("request", lambda r: requested.append(r.url))
    page.on("console", lambda m: errors.append(m.text) if m.type == "error" else None)
    response = page.goto("/docs")
    assert "script-src 'self'" in response.headers["content-security-policy"]
    page.locator(".swagger-ui .info .title").get_by_text("EZ360 operational API").wait_for()
    assert page.locator(".opblock-tag").filter(has_text="invoices").count() >= 1
    assert [u for u in requested if not u.startswith(site.base)] == []  # nothing from a CDN
    assert [e for e in errors if "Content Security Policy" in e] == []
    page.context.close()


def test_password_reset_asks_for_the_second_factor_and_a_recovery_code_signs_in(site):
    if not site.owner:
        pytest.skip("needs the owner created by the journey test")
    page = site.context().new_page()
    page.goto("/app/forgot-password")
    page.get_by_label("Email address").fill(site.owner["email"])
    page.get_by_role("button", name="Send the link").click()
    page.get_by_text("a link to reset the password is on its way").wait_for()
    body = mail_to(site, site.owner["email"], "/reset-password?token=").get_content()
    page.goto(f"/reset-password?token={token_from(body)}")
    page.get_by_label("New password").fill("a brand new harbour lamp")
    page.get_by_role("button", name="Change password").click()
    assert "a valid code or recovery code is needed" in page.locator("#e-code").inner_text()
    page.get_by_label("New password").fill("a brand new harbour lamp")
    page.get_by_label("Two-factor code (if you use two-factor authentication)").fill(Codes.next(site.owner["secret"]))
    page.get_by_role("button", name="Change password").click()
    page.get_by_text("Your password was changed").wait_for()

    page.get_by_label("Email address").fill(site.owner["email"])
    page.get_by_label("Password", exact=True).fill("a brand new harbour lamp")
    page.get_by_role("button", name="Sign in").click()
    page.get_by_text("Lost your phone? Use a recovery code").click()
    page.get_by_label("Recovery code").fill(site.owner["codes"][0])
    page.get_by_role("button", name="Continue").click()
    page.wait_for_url(re.compile(r"/app/c/\d+"))
    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("You are signed out.").wait_for()
    page.goto(f"/app/c/{site.owner['company']}")
    page.wait_for_url(re.compile(r"/app/login"))  # the session ended on the server
    page.context.close()
