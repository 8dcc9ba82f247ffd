"""Two-factor authentication: mandatory for owners and admins (and roles a company adds) before any company
data; enrollment with a locally rendered QR code; a code works once; 10 hashed single-use recovery codes;
changes to email or 2FA need re-authentication."""

from __future__ import annotations

import time
import xml.etree.ElementTree as ET

import pyotp
import pytest
from sqlalchemy import select

from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.db.security_models import RecoveryCode, UserSecurity
from tests.support.security_world import PASSWORD, Codes, build_world


@pytest.fixture
def world(tmp_path):
    return build_world(f"sqlite:///{tmp_path / 'ops.sqlite3'}", enroll_2fa=False)


@pytest.fixture
def world_2fa(tmp_path):
    return build_world(f"sqlite:///{tmp_path / 'ops.sqlite3'}")


def _enroll(browser, email):
    setup = browser.post("/api/v1/account/2fa/setup", json={"password": PASSWORD})
    assert setup.status_code == 200, setup.text
    secret = setup.json()["secret"]
    browser.world.secrets[email] = secret
    enabled = browser.post("/api/v1/account/2fa/enable", json={"code": Codes.next(secret)})
    assert enabled.status_code == 200, enabled.text
    return secret, enabled.json()["recovery_codes"]


@pytest.mark.parametrize("role", ["owner", "admin"])
def test_owners_and_admins_see_no_company_data_before_enrolling_in_2fa(world, role):
    browser = world.client()
    login = browser.login(world.email("acme", role))
    assert login.json()["two_factor"] == {"enabled": False, "passed": False, "enrollment_required": True}
    company = f"/api/v1/companies/{world.companies['acme']}"
    refused = browser.get(company)
    assert refused.status_code == 403 and "two-factor authentication is required" in refused.json()["detail"]
    _enroll(browser, world.email("acme", role))
    assert browser.get(company).status_code == 200


def test_other_roles_need_2fa_only_when_their_company_says_so(world):
    company = f"/api/v1/companies/{world.companies['acme']}"
    staff = world.client()
    staff.login(world.email("acme", "staff"))
    assert staff.get(company).status_code == 200
    owner = world.client()
    owner.login(world.email("acme", "owner"))
    _enroll(owner, world.email("acme", "owner"))
    changed = owner.put(f"{company}/security-policy", json={"two_factor_roles": ["staff", "finance"]})
    assert changed.status_code == 200
    assert changed.json()["two_factor_roles"] == ["admin", "finance", "owner", "staff"]
    assert staff.get(company).status_code == 403
    viewer = world.client()
    viewer.login(world.email("acme", "viewer"))
    assert viewer.get(company).status_code == 200
    # the other company's policy is untouched
    globex_staff = world.client()
    globex_staff.login(world.email("globex", "staff"))
    assert globex_staff.get(f"/api/v1/companies/{world.companies['globex']}").status_code == 200


def test_enrollment_renders_the_qr_code_locally_as_svg(world):
    browser = world.client()
    email = world.email("acme", "staff")
    browser.login(email)
    setup = browser.post("/api/v1/account/2fa/setup", json={"password": PASSWORD}).json()
    assert setup["otpauth_uri"] == pyotp.TOTP(setup["secret"]).provisioning_uri(name=email, issuer_name="EZ360")
    root = ET.fromstring(setup["qr_svg"])
    assert root.tag.endswith("svg") and "http" not in setup["qr_svg"].replace("http://www.w3.org", "")
    image = browser.get(setup["qr_url"])
    assert image.status_code == 200 and image.headers["content-type"].startswith("image/svg+xml")
    assert ET.fromstring(image.text).tag.endswith("svg")


def test_enrollment_needs_a_matching_code(world):
    browser = world.client()
    browser.login(world.email("acme", "staff"))
    browser.post("/api/v1/account/2fa/setup", json={"password": PASSWORD})
    assert browser.post("/api/v1/account/2fa/enable", json={"code": "123456"}).status_code == 400
    assert browser.get("/api/v1/auth/session").json()["two_factor"]["enabled"] is False


def test_a_totp_code_is_accepted_only_once(world_2fa):
    email = world_2fa.email("acme", "owner")
    code = Codes.next(world_2fa.secrets[email])
    first, second = world_2fa.client(), world_2fa.client()
    first.login(email, second_factor=False)
    assert first.post("/api/v1/auth/login/second-factor", json={"code": code}).status_code == 200
    second.login(email, second_factor=False)
    replay = second.post("/api/v1/auth/login/second-factor", json={"code": code})
    assert replay.status_code == 401
    # an older step than the last one used is refused as well
    secret = world_2fa.secrets[email]
    older = pyotp.TOTP(secret).at((int(time.time() // 30) - 2) * 30)
    assert second.post("/api/v1/auth/login/second-factor", json={"code": older}).status_code == 401
    engine = make_engine(world_2fa.url)
    with make_sessionmaker(engine)() as db:
        assert db.get(UserSecurity, world_2fa.users["acme:owner"]).totp_last_step is not None
    engine.dispose()


def test_ten_recovery_codes_are_stored_hashed_and_each_works_once(world):
    browser = world.client()
    email = world.email("acme", "staff")
    browser.login(email)
    _, codes = _enroll(browser, email)
    assert len(codes) == len(set(codes)) == 10
    engine = make_engine(world.url)
    with make_sessionmaker(engine)() as db:
        stored = db.scalars(select(RecoveryCode.code_hash).where(
            RecoveryCode.user_id == world.users["acme:staff"])).all()
    engine.dispose()
    assert len(stored) == 10 and all(h.startswith("$argon2id$") for h in stored)
    assert not {c.replace("-", "") for c in codes} & set(stored)
    other = world.client()
    other.login(email, second_factor=False)
    assert other.post("/api/v1/auth/login/second-factor", json={"recovery_code": codes[3]}).status_code == 200
    again = world.client()
    again.login(email, second_factor=False)
    assert again.post("/api/v1/auth/login/second-factor", json={"recovery_code": codes[3]}).status_code == 401
    assert again.post("/api/v1/auth/login/second-factor",
                      json={"recovery_code": codes[4].upper()}).status_code == 200


def test_changing_email_or_2fa_requires_reauthentication(world_2fa):
    email = world_2fa.email("acme", "admin")
    browser = world_2fa.client()
    browser.login(email)
    secret = world_2fa.secrets[email]
    wrong_password = {"password": "not my password at all", "code": "000000"}
    no_code = {"password": PASSWORD}
    for path, body in (("/api/v1/account/email", {**wrong_password, "new_email": "new@acme.test"}),
                       ("/api/v1/account/email", {**no_code, "new_email": "new@acme.test"}),
                       ("/api/v1/account/2fa/disable", wrong_password), ("/api/v1/account/2fa/setup", no_code),
                       ("/api/v1/account/2fa/recovery-codes", no_code)):  # 5 failures: the throttle's free ones
        response = browser.post(path, json=body)
        assert response.status_code == 403, (path, response.text)
        assert "re-authentication failed" in response.json()["detail"]
    wait = browser.post("/api/v1/account/2fa/disable", json={"password": PASSWORD, "code": "000000"})
    assert wait.status_code == 429  # re-authentication is throttled like sign-in
    time.sleep(int(wait.headers["retry-after"]))
    assert browser.get("/api/v1/auth/session").json()["two_factor"]["enabled"] is True
    done = browser.post("/api/v1/account/2fa/disable", json={"password": PASSWORD, "code": Codes.next(secret)})
    assert done.status_code == 200
    assert browser.get("/api/v1/auth/session").json()["two_factor"]["enabled"] is False
    # an admin without 2FA loses company data at once
    assert browser.get(f"/api/v1/companies/{world_2fa.companies['acme']}").status_code == 403


def test_password_change_requires_the_current_password(world):
    browser = world.client()
    browser.login(world.email("acme", "staff"))
    response = browser.post("/api/v1/account/password", json={"current_password": "not the password at all",
                                                               "new_password": "brand new passphrase"})
    assert response.status_code == 403
    assert world.client().login(world.email("acme", "staff")).status_code == 200


def test_enabling_2fa_ends_other_sessions_and_rotates_this_one(world):
    email = world.email("acme", "finance")
    laptop, phone = world.client(), world.client()
    laptop.login(email)
    phone.login(email)
    before = laptop.session_cookie()
    _enroll(laptop, email)
    assert laptop.session_cookie() != before
    assert phone.get("/api/v1/auth/session").status_code == 401
    assert laptop.get("/api/v1/auth/session").json()["two_factor"]["passed"] is True
