"""Passwords (ASVS 5.0 V6): argon2id hashes; 12 to 128 characters, any characters, no composition rules;
refused when common or breached (a list shipped in the repo, see data/PROVENANCE.md) or built from
context-specific words (the product name, the user's own address)."""

from __future__ import annotations

import gzip
import re
import unicodedata
from functools import lru_cache
from pathlib import Path

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

from operational_api.services.errors import ValidationFailed

MIN_LENGTH = 12
MAX_LENGTH = 128  # ASVS: at least 64 must be accepted
COMMON_LIST = Path(__file__).resolve().parent / "data" / "common-passwords.txt.gz"
CONTEXT_WORDS = ("ez360",)

# argon2-cffi's defaults are argon2id with the RFC 9106 low-memory profile (t=3, m=64 MiB, p=4).
hasher = PasswordHasher()
_DUMMY_HASH = hasher.hash("not a real password: equalises timing for unknown accounts")


@lru_cache(maxsize=1)
def common_passwords() -> frozenset[str]:
    with gzip.open(COMMON_LIST, "rt", encoding="utf-8") as f:
        return frozenset(line.strip() for line in f if line.strip())


def _normalise(password: str) -> str:
    return unicodedata.normalize("NFKC", password)


def problems(password: str, email: str = "") -> list[str]:
    """Why this password is refused (empty list: acceptable)."""
    password = _normalise(password)
    if len(password) < MIN_LENGTH:
        return [f"use at least {MIN_LENGTH} characters (a passphrase of a few words is easiest)"]
    if len(password) > MAX_LENGTH:
        return [f"use at most {MAX_LENGTH} characters"]
    lowered = password.lower()
    common = common_passwords()
    core = re.sub(r"^[\W\d_]+|[\W\d_]+$", "", lowered)
    sequence = lowered in "1234567890" * 14 or lowered in "0987654321" * 14
    if lowered in common or (core and core in common) or not core and (len(set(lowered)) < 8 or sequence):
        return ["this password is on a list of common or breached passwords; choose another"]
    repeated = re.fullmatch(r"(.+?)\1+", lowered)
    if repeated and (len(repeated.group(1)) <= 6 or repeated.group(1) in common):
        return ["this password is a short pattern repeated; choose another"]
    local = email.lower().partition("@")[0]
    words = [w for w in (*CONTEXT_WORDS, local) if len(w) >= 4]
    if any(w in lowered for w in words):
        return ["do not build the password from your email address or the product name"]
    return []


def check(password: str, email: str = "") -> None:
    found = problems(password, email)
    if found:
        raise ValidationFailed("password refused: " + "; ".join(found))


def hash_password(password: str) -> str:
    return hasher.hash(_normalise(password))


def usable(password_hash: str | None) -> bool:
    """Whether this stored value is an argon2 hash at all (an invited account without a password holds '!')."""
    return bool(password_hash) and password_hash.startswith("$argon2")


def verify(password_hash: str | None, password: str) -> bool:
    """Exactly one argon2 verification whatever the account: an unknown account, or one without a usable hash
    (invited, never set), verifies against a dummy hash, so its answer takes as long as a real account's."""
    real = usable(password_hash)
    try:
        return hasher.verify(password_hash if real else _DUMMY_HASH, _normalise(password)) and real
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    try:
        return hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return False
