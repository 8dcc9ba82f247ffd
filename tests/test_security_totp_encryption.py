"""TOTP secrets at rest: encrypted with the configured Fernet keys (the first encrypts, all decrypt), rotated by
`ez360 keys rotate-totp`, encrypted by the migration for rows that predate it; production needs a key."""

from __future__ import annotations

import time

import pyotp
import pytest
from cryptography.fernet import Fernet
from sqlalchemy import select, text
from typer.testing import CliRunner

from ez360.cli import app as cli_app
from operational_api.app import create_app
from operational_api.db import schema
from operational_api.db.audit_trail import AuditKeyError
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.db.models import User
from operational_api.db.security_models import UserSecurity
from operational_api.security import encryption, totp
from operational_api.services import companies
from tests.support.migrated import migrate
from tests.support.security_world import settings_for

OLD_KEY, NEW_KEY = Fernet.generate_key().decode(), Fernet.generate_key().decode()


@pytest.fixture
def keys():
    """Install key rings for the test, and the default ring again afterwards."""
    def use(*ring: str):
        return encryption.configure(settings_for("sqlite:///unused", totp_encryption_keys=",".join(ring)))
    yield use
    encryption.configure(settings_for("sqlite:///unused"))


def _stored(url: str, user_id: int) -> tuple[str | None, str | None]:
    engine = make_engine(url)
    with engine.connect() as conn:  # the raw columns, as a backup or a database reader sees them
        row = conn.execute(text("SELECT totp_secret, totp_pending_secret FROM user_security WHERE user_id = :u"),
                           {"u": user_id}).one()
    engine.dispose()
    return tuple(row)


def _code(secret: str) -> str:
    return pyotp.TOTP(secret).now()


def test_a_secret_is_stored_encrypted_and_still_checks_codes(tmp_path, keys, monkeypatch):
    keys(OLD_KEY)
    url = f"sqlite:///{tmp_path / 'ops.sqlite3'}"
    migrate(url)
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    with sm() as s, s.begin():
        user = companies.create_user(s, email="ana@example.test", full_name="Ana", password_hash="x")
        secret = totp.start_enrollment(s, user)
        user_id = user.id
    pending = _stored(url, user_id)[1]
    assert secret not in pending and Fernet(OLD_KEY).decrypt(pending.encode()).decode() == secret
    with sm() as s, s.begin():
        assert totp.confirm_enrollment(s, s.get(User, user_id), _code(secret)) is not None
    stored = _stored(url, user_id)[0]
    assert secret not in stored and Fernet(OLD_KEY).decrypt(stored.encode()).decode() == secret

    # rotation: the new key first, the old one still readable; the CLI re-encrypts; then the old key goes
    monkeypatch.setenv("EZ360_DATABASE_URL", url)
    monkeypatch.setenv("EZ360_TOTP_ENCRYPTION_KEYS", f"{NEW_KEY},{OLD_KEY}")
    rotated = CliRunner().invoke(cli_app, ["keys", "rotate-totp"])
    assert rotated.exit_code == 0 and "1 TOTP secret" in rotated.output, rotated.output
    assert Fernet(NEW_KEY).decrypt(_stored(url, user_id)[0].encode()).decode() == secret
    keys(NEW_KEY)  # the old key is gone
    next_step = (int(time.time()) // 30 + 1) * 30  # a step the enrollment did not use
    with sm() as s, s.begin():
        assert totp.verify_code(s, user_id, pyotp.TOTP(secret).at(next_step), now=next_step)
    keys(OLD_KEY)  # a ring without the key that encrypted it cannot read it, and says so
    with sm() as s, pytest.raises(encryption.SecretUnreadable):
        totp.verify_code(s, user_id, "123456")
    engine.dispose()


def test_production_refuses_to_start_without_an_encryption_key(tmp_path, keys):
    url = f"sqlite:///{tmp_path / 'ops.sqlite3'}"
    with pytest.raises(encryption.KeyConfigurationError, match="EZ360_TOTP_ENCRYPTION_KEYS"):
        create_app(settings_for(url, environment="production"))
    with pytest.raises(encryption.KeyConfigurationError, match="not a Fernet key"):
        create_app(settings_for(url, environment="production", totp_encryption_keys="not-a-key"))
    with pytest.raises(AuditKeyError, match="EZ360_AUDIT_KEY"):  # nor without the audit chain's key
        create_app(settings_for(url, environment="production", totp_encryption_keys=NEW_KEY))
    assert create_app(settings_for(url, environment="production", totp_encryption_keys=NEW_KEY,
                                   audit_key="a-long-random-production-audit-key"))


def test_the_migration_encrypts_secrets_stored_before_it_and_downgrades_back(empty_ops_db, keys):
    keys(OLD_KEY)
    url = empty_ops_db
    schema.upgrade(url, "0006")
    engine = make_engine(url)
    with engine.begin() as conn:
        conn.execute(text("INSERT INTO users (email, full_name, password_hash, is_active, created_at, updated_at) "
                          "VALUES ('old@example.test', 'Old', 'x', true, CURRENT_TIMESTAMP, CURRENT_TIMESTAMP)"))
        user_id = conn.execute(text("SELECT id FROM users")).scalar()
        conn.execute(text("INSERT INTO user_security (user_id, totp_secret) VALUES (:u, 'JBSWY3DPEHPK3PXP')"),
                     {"u": user_id})
    engine.dispose()
    schema.upgrade(url)
    stored = _stored(url, user_id)[0]
    assert stored != "JBSWY3DPEHPK3PXP" and encryption.decrypt(stored) == "JBSWY3DPEHPK3PXP"
    engine = make_engine(url)
    with make_sessionmaker(engine)() as s:
        assert s.scalar(select(UserSecurity.totp_secret)) == stored
    engine.dispose()
    schema.downgrade(url, "0006")
    assert _stored(url, user_id)[0] == "JBSWY3DPEHPK3PXP"
    schema.upgrade(url)
