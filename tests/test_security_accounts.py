"""Accounts: registration, email verification over real SMTP before any company access, password reset that
still asks for the second factor, and answers that never reveal whether an address has an account."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.db.models import Membership, User
from operational_api.db.security_models import EmailOutbox
from tests.support.security_world import PASSWORD, Codes, build_world, smtp_server, token_from

NEW_PASSWORD = "seven silver foxes at noon"


@pytest.fixture
def world(tmp_path):
    return build_world(f"sqlite:///{tmp_path / 'ops.sqlite3'}")


def _add_member(world, email, company, role):
    engine = make_engine(world.url)
    with make_sessionmaker(engine)() as db, db.begin():
        user = db.scalar(select(User).where(User.email == email))
        db.add(Membership(company_id=world.companies[company], user_id=user.id, role=role))
    engine.dispose()


def test_registration_emails_a_verification_link_over_smtp_and_company_access_waits_for_it(world):
    with smtp_server(world.settings.smtp_port) as inbox:
        browser = world.client()
        registered = browser.http.post("/api/v1/auth/register", json={
            "email": "Newcomer@Acme.test", "password": NEW_PASSWORD, "full_name": "New Comer"})
        assert registered.status_code == 202
        inbox.wait_for(1)
        message = inbox.messages[0]
        assert message["To"] == "newcomer@acme.test" and message["From"] == world.settings.mail_from
        link = message.get_content()
        assert "https://testserver/verify-email?token=" in link
        _add_member(world, "newcomer@acme.test", "acme", "staff")  # an admin adds them to the company
        company = f"/api/v1/companies/{world.companies['acme']}"
        login = browser.login("newcomer@acme.test", NEW_PASSWORD)
        assert login.status_code == 200 and login.json()["email_verified"] is False
        refused = browser.get(company)
        assert refused.status_code == 403 and "verify your email address" in refused.json()["detail"]
        verified = browser.http.post("/api/v1/auth/verify-email", json={"token": token_from(link)})
        assert verified.json() == {"status": "verified", "email": "newcomer@acme.test"}
        assert browser.get(company).status_code == 200
        again = browser.http.post("/api/v1/auth/verify-email", json={"token": token_from(link)})
        assert again.status_code == 400  # single use


def test_registering_a_taken_address_answers_the_same_and_warns_its_owner(world):
    taken = world.email("acme", "viewer")
    with smtp_server(world.settings.smtp_port) as inbox:
        client = world.client().http
        fresh = client.post("/api/v1/auth/register", json={"email": "fresh@acme.test", "password": NEW_PASSWORD,
                                                           "full_name": "F"})
        dup = client.post("/api/v1/auth/register", json={"email": taken, "password": NEW_PASSWORD,
                                                         "full_name": "F"})
        inbox.wait_for(2)
    assert (fresh.status_code, fresh.json()) == (dup.status_code, dup.json())
    assert "already has one" in inbox.bodies_to(taken)[0]
    assert world.client().login(taken).status_code == 200  # the real owner's password is untouched


def test_password_reset_by_email_link_without_2fa(world):
    email = world.email("acme", "staff")
    with smtp_server(world.settings.smtp_port) as inbox:
        client = world.client().http
        assert client.post("/api/v1/auth/password-reset", json={"email": email}).status_code == 202
        inbox.wait_for(1)
        token = token_from(inbox.bodies_to(email)[0])
        old_session = world.client()
        old_session.login(email)
        done = client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD})
        assert done.status_code == 200
        inbox.wait_for(2)
        assert "was just changed" in inbox.bodies_to(email)[1]
    assert old_session.get("/api/v1/auth/session").status_code == 401  # every session ended
    assert world.client().login(email, PASSWORD).status_code == 401
    assert world.client().login(email, NEW_PASSWORD).status_code == 200
    reuse = client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": "x" * 20})
    assert reuse.status_code == 400


def test_password_reset_still_asks_for_the_second_factor(world):
    email = world.email("acme", "owner")
    with smtp_server(world.settings.smtp_port) as inbox:
        client = world.client().http
        client.post("/api/v1/auth/password-reset", json={"email": email})
        inbox.wait_for(1)
    token = token_from(inbox.bodies_to(email)[0])
    without = client.post("/api/v1/auth/password-reset/confirm", json={"token": token, "new_password": NEW_PASSWORD})
    assert without.status_code == 401 and "two-factor" in without.json()["detail"]
    wrong = client.post("/api/v1/auth/password-reset/confirm",
                        json={"token": token, "new_password": NEW_PASSWORD, "code": "000000"})
    assert wrong.status_code == 401
    assert world.client().login(email, PASSWORD).status_code == 200  # nothing changed yet
    ok = client.post("/api/v1/auth/password-reset/confirm", json={
        "token": token, "new_password": NEW_PASSWORD, "code": Codes.next(world.secrets[email])})
    assert ok.status_code == 200
    assert world.client().login(email, NEW_PASSWORD).status_code == 200


def test_password_reset_for_an_unknown_address_answers_the_same_and_sends_nothing(world):
    with smtp_server(world.settings.smtp_port) as inbox:
        client = world.client().http
        unknown = client.post("/api/v1/auth/password-reset", json={"email": "nobody@acme.test"})
        known = client.post("/api/v1/auth/password-reset", json={"email": world.email("acme", "viewer")})
        inbox.wait_for(1)
    assert (unknown.status_code, unknown.json()) == (known.status_code, known.json())
    assert [m["To"] for m in inbox.messages] == [world.email("acme", "viewer")]


def test_changing_the_email_address_is_confirmed_from_the_new_address_and_the_old_one_is_told(world):
    email = world.email("acme", "staff")
    with smtp_server(world.settings.smtp_port) as inbox:
        browser = world.client()
        browser.login(email)
        asked = browser.post("/api/v1/account/email", json={"password": PASSWORD, "new_email": "moved@acme.test"})
        assert asked.status_code == 202
        inbox.wait_for(2)
        assert "changes only once the new address is confirmed" in inbox.bodies_to(email)[0]
        token = token_from(inbox.bodies_to("moved@acme.test")[0])
        assert world.client().login(email).status_code == 200  # not changed before confirmation
        assert browser.http.post("/api/v1/auth/verify-email", json={"token": token}).status_code == 200
        inbox.wait_for(3)
        assert "is now moved@acme.test" in inbox.bodies_to(email)[-1]
    assert browser.get("/api/v1/auth/session").status_code == 401  # sessions ended with the change
    assert world.client().login("moved@acme.test").status_code == 200


def test_unverified_user_can_ask_for_the_link_again(world):
    with smtp_server(world.settings.smtp_port) as inbox:
        browser = world.client()
        browser.http.post("/api/v1/auth/register", json={"email": "late@acme.test", "password": NEW_PASSWORD,
                                                         "full_name": "Late"})
        browser.login("late@acme.test", NEW_PASSWORD)
        assert browser.post("/api/v1/account/verification-email").status_code == 202
        inbox.wait_for(2)
    assert len(inbox.bodies_to("late@acme.test")) == 2
    engine = make_engine(world.url)
    with make_sessionmaker(engine)() as db:
        assert all(r.sent_at is not None for r in db.scalars(select(EmailOutbox)))
    engine.dispose()


def test_demo_users_sign_in_with_the_demo_password_and_owners_are_asked_to_enrol_in_2fa(tmp_path):
    """The demo writes users like this (services.companies, verified, argon2 hash of the demo password)."""
    from ez360.core.settings import Settings
    from operational_api.services import companies
    from tests.support.migrated import migrate
    from tests.support.security_world import World, settings_for

    url = f"sqlite:///{tmp_path / 'ops.sqlite3'}"
    migrate(url)
    demo_password = Settings(_env_file=None).demo_password.get_secret_value()
    engine = make_engine(url)
    with make_sessionmaker(engine)() as db, db.begin():
        company = companies.create_company(db, slug="northwind", name="Northwind", base_currency="USD",
                                           invoice_prefix="NW")
        for role in ("owner", "staff"):
            user = companies.create_user(db, email=f"{role}@northwind.example.com", full_name=role,
                                         password_hash=companies.hash_password(demo_password))
            companies.add_member(db, company, user, role)
        company_id = company.id
    engine.dispose()
    world = World(url, settings_for(url))
    staff, owner = world.client(), world.client()
    assert staff.login("staff@northwind.example.com", demo_password).status_code == 200
    assert staff.get(f"/api/v1/companies/{company_id}").status_code == 200
    first = owner.login("owner@northwind.example.com", demo_password).json()
    assert first["status"] == "ok" and first["two_factor"]["enrollment_required"] is True
    assert owner.get(f"/api/v1/companies/{company_id}").status_code == 403
    setup = owner.post("/api/v1/account/2fa/setup", json={"password": demo_password}).json()
    owner.post("/api/v1/account/2fa/enable", json={"code": Codes.next(setup["secret"])})
    assert owner.get(f"/api/v1/companies/{company_id}").status_code == 200


def test_mail_sending_requests_are_rationed_so_nobody_can_flood_an_inbox(world):
    address = world.email("acme", "viewer")
    with smtp_server(world.settings.smtp_port) as inbox:
        client = world.client().http
        answers = [client.post("/api/v1/auth/password-reset", json={"email": address}) for _ in range(5)]
        inbox.wait_for(3)
        register = client.post("/api/v1/auth/register", json={"email": address, "password": NEW_PASSWORD,
                                                                "full_name": "Again"})
    assert [a.status_code for a in answers] == [202, 202, 202, 429, 429]
    assert int(answers[3].headers["retry-after"]) >= 30
    assert answers[3].headers["content-type"] == "application/problem+json"
    assert register.status_code == 429  # the same addressee, whichever flow asks
    assert len(inbox.bodies_to(address)) == 3
    other = world.client().http.post("/api/v1/auth/password-reset", json={"email": world.email("acme", "staff")})
    assert other.status_code == 202  # another addressee from the same client is still served
