"""Second factor (ASVS 5.0 V6.5/V6.6): TOTP (RFC 6238, pyotp) and single-use recovery codes.

- Mandatory for owners and admins of any company, and for the roles a company adds in its policy, before
  that company's data is served (enforced in `operational_api.api.context.company_principal`).
- Enrollment shows the secret and a QR code rendered here (segno, SVG), and is confirmed with a first code.
- A code is accepted once: the time step it matched is stored and only later steps are accepted
  (an atomic conditional UPDATE, so two processes cannot both accept the same code).
- 10 recovery codes of 16 characters (about 79 bits), stored as argon2id hashes, each usable once.
- The TOTP seed must be readable to check a code, so it is stored encrypted (Fernet, keys from
  `EZ360_TOTP_ENCRYPTION_KEYS`, see `operational_api.security.encryption`): the columns hold ciphertext only,
  and so does anything that snapshots them (the audit trail, backups).
"""

from __future__ import annotations

import hmac
import io
import secrets
import time

import pyotp
import segno
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError
from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from operational_api.db.models import User, utcnow
from operational_api.db.security_models import CompanySecurityPolicy, RecoveryCode, UserSecurity
from operational_api.security import encryption

ISSUER = "EZ360"
STEP_SECONDS = 30
WINDOW = 1  # one step either side, for clock drift
ALWAYS_2FA = frozenset({"owner", "admin"})
RECOVERY_CODES = 10
_ALPHABET = "abcdefghjkmnpqrstuvwxyz23456789"
_code_hasher = PasswordHasher(time_cost=2, memory_cost=19456, parallelism=1)  # OWASP minimum argon2id


def security_row(db: Session, user_id: int) -> UserSecurity:
    row = db.get(UserSecurity, user_id)
    if row is None:
        row = UserSecurity(user_id=user_id)
        db.add(row)
        db.flush()
    return row


def enabled(db: Session, user_id: int) -> bool:
    row = db.get(UserSecurity, user_id)
    return row is not None and row.totp_enabled_at is not None and row.totp_secret is not None


def provisioning_uri(secret: str, email: str) -> str:
    return pyotp.TOTP(secret, interval=STEP_SECONDS).provisioning_uri(name=email, issuer_name=ISSUER)


def qr_svg(uri: str) -> str:
    """The QR code as a standalone SVG document, rendered locally (no third-party QR service)."""
    buffer = io.BytesIO()
    segno.make(uri, error="m").save(buffer, kind="svg", scale=5, border=4, xmldecl=False,
                                    title="EZ360 two-factor enrollment")
    return buffer.getvalue().decode()


def start_enrollment(db: Session, user: User) -> str:
    """A new pending secret, stored encrypted; returns it in clear (shown to the user this once)."""
    secret = pyotp.random_base32()
    security_row(db, user.id).totp_pending_secret = encryption.encrypt(secret, db)
    return secret


def pending_secret(db: Session, user_id: int) -> str | None:
    """The secret of the enrollment in progress, decrypted (None when there is none)."""
    row = db.get(UserSecurity, user_id)
    return None if row is None or row.totp_pending_secret is None else encryption.decrypt(row.totp_pending_secret, db)


def reencrypt_all(db: Session) -> int:
    """Re-encrypt every stored TOTP secret with the first configured key (key rotation); returns how many."""
    count = 0
    for row in db.scalars(select(UserSecurity).where(or_(UserSecurity.totp_secret.is_not(None),
                                                         UserSecurity.totp_pending_secret.is_not(None)))):
        for column in ("totp_secret", "totp_pending_secret"):
            value = getattr(row, column)
            if value is not None:
                setattr(row, column, encryption.reencrypt(value, db))
                count += 1
    db.flush()
    return count


def _matching_step(secret: str, code: str, now: float) -> int | None:
    code = "".join(code.split())
    if not (code.isdigit() and len(code) == 6):
        return None
    totp = pyotp.TOTP(secret, interval=STEP_SECONDS)
    current = int(now // STEP_SECONDS)
    for step in (current - WINDOW, current, current + WINDOW):
        if hmac.compare_digest(totp.at(step * STEP_SECONDS), code):
            return step
    return None


def _claim_step(db: Session, user_id: int, step: int) -> bool:
    """Record `step` as used unless it, or a later one, already was (atomic across processes)."""
    result = db.execute(update(UserSecurity)
                        .where(UserSecurity.user_id == user_id,
                               or_(UserSecurity.totp_last_step.is_(None), UserSecurity.totp_last_step < step))
                        .values(totp_last_step=step).execution_options(synchronize_session="fetch"))
    return result.rowcount == 1


def confirm_enrollment(db: Session, user: User, code: str, now: float | None = None) -> list[str] | None:
    """Enable TOTP with the pending secret if `code` matches; returns the new recovery codes (shown once)."""
    row = security_row(db, user.id)
    if row.totp_pending_secret is None:
        return None
    step = _matching_step(encryption.decrypt(row.totp_pending_secret, db), code, time.time() if now is None else now)
    if step is None:
        return None
    row.totp_secret, row.totp_pending_secret, row.totp_enabled_at = row.totp_pending_secret, None, utcnow()
    row.totp_last_step = None
    db.flush()
    if not _claim_step(db, user.id, step):
        return None
    return new_recovery_codes(db, user.id)


def verify_code(db: Session, user_id: int, code: str, now: float | None = None) -> bool:
    row = db.get(UserSecurity, user_id)
    if row is None or row.totp_secret is None or row.totp_enabled_at is None:
        return False
    step = _matching_step(encryption.decrypt(row.totp_secret, db), code, time.time() if now is None else now)
    return step is not None and _claim_step(db, user_id, step)


def disable(db: Session, user_id: int) -> None:
    row = security_row(db, user_id)
    row.totp_secret = row.totp_pending_secret = row.totp_enabled_at = row.totp_last_step = None
    db.execute(update(RecoveryCode).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
               .values(used_at=utcnow()).execution_options(synchronize_session="fetch"))


def _normalise_code(code: str) -> str:
    return "".join(ch for ch in code.lower() if ch.isalnum())


def new_recovery_codes(db: Session, user_id: int) -> list[str]:
    """Replace every unused recovery code by 10 new ones; returns them in clear (the only time)."""
    db.execute(update(RecoveryCode).where(RecoveryCode.user_id == user_id, RecoveryCode.used_at.is_(None))
               .values(used_at=utcnow()).execution_options(synchronize_session="fetch"))
    codes = []
    for _ in range(RECOVERY_CODES):
        raw = "".join(secrets.choice(_ALPHABET) for _ in range(16))
        codes.append("-".join(raw[i:i + 4] for i in range(0, 16, 4)))
        db.add(RecoveryCode(user_id=user_id, code_hash=_code_hasher.hash(raw)))
    db.flush()
    return codes


def use_recovery_code(db: Session, user_id: int, code: str) -> bool:
    raw = _normalise_code(code)
    if len(raw) != 16:
        return False
    for row in db.scalars(select(RecoveryCode).where(RecoveryCode.user_id == user_id,
                                                     RecoveryCode.used_at.is_(None))).all():
        try:
            _code_hasher.verify(row.code_hash, raw)
        except (VerifyMismatchError, VerificationError, InvalidHashError):
            continue
        result = db.execute(update(RecoveryCode).where(RecoveryCode.id == row.id, RecoveryCode.used_at.is_(None))
                            .values(used_at=utcnow()).execution_options(synchronize_session="fetch"))
        return result.rowcount == 1
    return False


def remaining_recovery_codes(db: Session, user_id: int) -> int:
    return len(db.scalars(select(RecoveryCode.id).where(RecoveryCode.user_id == user_id,
                                                        RecoveryCode.used_at.is_(None))).all())


def required_roles(db: Session, company_id: int) -> frozenset[str]:
    policy = db.get(CompanySecurityPolicy, company_id)
    return ALWAYS_2FA | frozenset(policy.two_factor_roles if policy else ())


def check_second_factor(db: Session, user_id: int, code: str | None, recovery_code: str | None) -> bool:
    """A TOTP code or an unused recovery code of this user."""
    if code:
        return verify_code(db, user_id, code)
    if recovery_code:
        return use_recovery_code(db, user_id, recovery_code)
    return False
