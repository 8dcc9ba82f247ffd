"""Passwords: argon2id, at least 12 characters, 64 and more accepted, any characters and no composition rules,
refused when on the shipped list of common and breached passwords."""

from __future__ import annotations

import gzip
import hashlib

import pytest

from operational_api.security import passwords
from operational_api.services.errors import ValidationFailed


def test_passwords_are_hashed_with_argon2id_and_verified():
    stored = passwords.hash_password("a quiet lantern at dusk")
    assert stored.startswith("$argon2id$")
    assert passwords.verify(stored, "a quiet lantern at dusk")
    assert not passwords.verify(stored, "a quiet lantern at dawn")
    assert not passwords.verify(None, "a quiet lantern at dusk")  # an unknown account never verifies


def test_eleven_characters_are_refused_and_twelve_accepted():
    with pytest.raises(ValidationFailed, match="at least 12 characters"):
        passwords.check("tangerin7q!")
    passwords.check("tangerin7q!z")


def test_long_passphrases_of_64_and_128_characters_are_accepted_and_129_refused():
    passwords.check(("river stone maple cloud " * 3)[:64].strip() + "xyz")
    phrase = "".join(chr(ord("a") + (i * 7) % 26) for i in range(128))
    passwords.check(phrase)
    assert passwords.problems(phrase + "q") == ["use at most 128 characters"]


def test_no_composition_rules_any_characters_are_allowed():
    for ok in ("all lower case words here", "ÄÖÜ unicode passphrase ✓", "      spaces count too    x"):
        assert passwords.problems(ok) == [], ok


@pytest.mark.parametrize("common", ["password1234", "qwertyuiop123", "1q2w3e4r5t6y", "Password2024!!",
                                    "iloveyou123456", "123456789012", "aaaaaaaaaaaaaa", "passwordpassword"])
def test_common_and_breached_passwords_are_refused(common):
    with pytest.raises(ValidationFailed, match="common or breached|pattern repeated"):
        passwords.check(common)


def test_passwords_built_from_the_email_or_product_name_are_refused():
    with pytest.raises(ValidationFailed, match="email address or the product name"):
        passwords.check("jane.doe-is-the-best", "jane.doe@acme.test")
    with pytest.raises(ValidationFailed, match="email address or the product name"):
        passwords.check("my ez360 account key")


def test_the_breached_list_ships_in_the_repo_with_its_provenance():
    data = passwords.COMMON_LIST.read_bytes()
    provenance = passwords.COMMON_LIST.with_name("PROVENANCE.md").read_text()
    assert hashlib.sha256(data).hexdigest() in provenance and "Django" in provenance
    words = gzip.decompress(data).decode().split()
    assert len(words) > 19_000 and "password" in words
    assert passwords.common_passwords() >= {"qwerty123456", "password1234"}


def test_registration_refuses_a_common_password_through_the_api(tmp_path):
    from tests.support.security_world import build_world
    world = build_world(f"sqlite:///{tmp_path / 'ops.sqlite3'}", enroll_2fa=False)
    response = world.client().http.post("/api/v1/auth/register", json={
        "email": "new@acme.test", "password": "qwertyuiop123", "full_name": "New"})
    assert response.status_code == 422 and "common or breached" in response.json()["detail"]
