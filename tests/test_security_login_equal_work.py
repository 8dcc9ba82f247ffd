"""A failed sign-in costs the same argon2 work whatever the account is: unknown, invited without a password,
unverified, deactivated or real. Measured by counting the hasher's verifications (no timing assertion)."""

from __future__ import annotations

import pytest
from argon2 import PasswordHasher
from argon2.exceptions import VerifyMismatchError

from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.security import accounts, passwords
from operational_api.services import companies
from tests.support.migrated import migrate
from tests.support.security_world import PASSWORD, settings_for


class CountingHasher(PasswordHasher):
    """The real argon2id hasher, counting the verifications it computed: a match or a mismatch. A value that is
    no argon2 hash at all is refused before any argon2 work, and does not count."""

    def __init__(self):
        super().__init__()
        self.verifications = 0

    def verify(self, hash, password):  # noqa: A002 - argon2-cffi's own parameter name
        try:
            result = super().verify(hash, password)
        except VerifyMismatchError:
            self.verifications += 1
            raise
        self.verifications += 1
        return result


@pytest.fixture(scope="module")
def accounts_world(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('equal') / 'ops.sqlite3'}"
    migrate(url)
    real = passwords.hash_password(PASSWORD)
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    with sm() as s, s.begin():
        companies.create_user(s, email="real@example.test", full_name="Real", password_hash=real)
        companies.create_user(s, email="invited@example.test", full_name="Invited", password_hash="!",
                              verified=False)  # what inviting created before invitations needed acceptance
        companies.create_user(s, email="unverified@example.test", full_name="New", password_hash=real,
                              verified=False)
        gone = companies.create_user(s, email="gone@example.test", full_name="Gone", password_hash=real)
        gone.is_active = False
    yield sm, settings_for(url)
    engine.dispose()


@pytest.mark.parametrize(("email", "password", "status"), [
    ("nobody@example.test", PASSWORD, "invalid"),  # no such account
    ("invited@example.test", PASSWORD, "invalid"),  # an account without a password
    ("unverified@example.test", "not-the-password-1", "invalid"),
    ("gone@example.test", PASSWORD, "invalid"),  # deactivated: even the right password fails
    ("real@example.test", "not-the-password-1", "invalid"),
    ("real@example.test", PASSWORD, "ok"),
], ids=["unknown", "invited-without-password", "unverified", "deactivated", "wrong-password", "right-password"])
def test_every_sign_in_answer_costs_exactly_one_argon2_verification(accounts_world, monkeypatch, email, password,
                                                                     status):
    sm, settings = accounts_world
    counting = CountingHasher()
    monkeypatch.setattr(passwords, "hasher", counting)
    result = accounts.login(sm, settings, email=email, password=password, ip="198.51.100.1")
    assert result.status == status
    assert counting.verifications == 1
