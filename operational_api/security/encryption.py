"""Secrets the server must read back are encrypted at rest: TOTP seeds (a code cannot be checked against a hash)
and the links of account emails waiting for delivery.

`cryptography`'s Fernet (AES-128-CBC with an HMAC-SHA256 tag: tampering is detected, not decrypted into garbage)
with keys from `EZ360_TOTP_ENCRYPTION_KEYS`. A MultiFernet holds every configured key: the first encrypts, all of
them decrypt, so a key is rotated without downtime: put a new key first, run `ez360 keys rotate-totp` (re-encrypts
every stored secret with the first key), then drop the old key.

Development and test run with a fixed, derived key when none is configured; production refuses to start without
one (`keys_from` raises), because that key is public.

Which key ring: the API app attaches the one of its settings to its database sessions (`attach`), so an app never
depends on process-wide state; other code (the CLI, migrations, scripts) uses the process ring, built from the
environment on first use or installed with `configure`.
"""

from __future__ import annotations

import base64
import hashlib

from cryptography.fernet import Fernet, InvalidToken, MultiFernet
from sqlalchemy.orm import Session, sessionmaker

from ez360.core.settings import Settings

SETTING = "EZ360_TOTP_ENCRYPTION_KEYS"
INFO_KEY = "ez360_keyring"  # where a session carries its key ring
# Public by design (it is in the source): good enough for a laptop, never for production.
DEVELOPMENT_KEY = base64.urlsafe_b64encode(hashlib.sha256(b"ez360 development encryption key").digest()).decode()


class KeyConfigurationError(ValueError):
    """The configured keys are missing (in production) or not Fernet keys."""


class SecretUnreadable(RuntimeError):
    """A stored secret was encrypted with a key that is no longer configured, or was altered."""


def keys_from(settings: Settings) -> list[str]:
    keys = [k.strip() for k in settings.totp_encryption_keys.get_secret_value().split(",") if k.strip()]
    if not keys:
        if settings.environment == "production":
            raise KeyConfigurationError(f"{SETTING} must be set in production: generate a key with "
                                        "`ez360 keys new`")
        return [DEVELOPMENT_KEY]
    for position, key in enumerate(keys, start=1):
        try:
            Fernet(key)
        except (ValueError, TypeError):
            raise KeyConfigurationError(f"{SETTING}: key {position} is not a Fernet key (32 url-safe base64 "
                                        "bytes); generate one with `ez360 keys new`") from None
    return keys


def ring_of(settings: Settings) -> MultiFernet:
    return MultiFernet([Fernet(key) for key in keys_from(settings)])


def attach(factory: sessionmaker, settings: Settings) -> MultiFernet:
    """Give every session of `factory` the key ring of `settings` (the API app does this at start)."""
    keys = ring_of(settings)
    factory.configure(info={INFO_KEY: keys})
    return keys


_process_ring: MultiFernet | None = None


def configure(settings: Settings) -> MultiFernet:
    """Install the process ring from these settings (the CLI's key commands; tests)."""
    global _process_ring
    _process_ring = ring_of(settings)
    return _process_ring


def ring(db: Session | None = None) -> MultiFernet:
    """The session's key ring if its app attached one, else the process ring."""
    if db is not None and INFO_KEY in db.info:
        return db.info[INFO_KEY]
    return _process_ring if _process_ring is not None else configure(Settings())


def new_key() -> str:
    return Fernet.generate_key().decode()


def encrypt(plaintext: str, db: Session | None = None) -> str:
    return ring(db).encrypt(plaintext.encode()).decode()


def decrypt(ciphertext: str, db: Session | None = None) -> str:
    try:
        return ring(db).decrypt(ciphertext.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(f"a stored secret cannot be decrypted with any key in {SETTING} (a removed key, "
                               "or the value was altered)") from None


def reencrypt(ciphertext: str, db: Session | None = None) -> str:
    """The same secret encrypted with the first key (MultiFernet.rotate)."""
    try:
        return ring(db).rotate(ciphertext.encode()).decode()
    except InvalidToken:
        raise SecretUnreadable(f"a stored secret cannot be decrypted with any key in {SETTING}") from None
