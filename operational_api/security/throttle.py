"""Login throttling kept in the ops DB, so it holds across server processes and restarts.

Each attempt is checked against every key it touches (the account, the client address) in one short
transaction that locks those rows (PostgreSQL `SELECT ... FOR UPDATE`, SQLite `BEGIN IMMEDIATE`). An
allowed attempt is counted as a failure *before* the password is checked, so parallel attempts cannot
all slip through the same window; a success undoes that count afterwards.

Per key, with the default limits (settings `EZ360_LOGIN_*`):
- failures 1-5 (`free_attempts`) cost nothing;
- after failure n >= 5 the next attempt is refused until `delay * 2**(n-5)` seconds have passed
  (2, 4, 8, 16, 32 s);
- failure 10 (`lockout_threshold`) locks the key for 15 minutes, and every failure after that locks it again;
- a key's failures are forgotten `window` (60 min) after its last failure; a successful sign-in resets the
  account key.
So an account gets at most 13 password checks an hour (10 in the first minute, then one per lockout).
A refused attempt never checks the password: the right password is refused too while a key is locked.
Unknown accounts are throttled exactly like real ones (no enumeration through the throttle).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session, sessionmaker

from operational_api.db.models import utcnow
from operational_api.db.security_models import LoginThrottle
from operational_api.security import audit


@dataclass(frozen=True)
class Limits:
    free_attempts: int = 5
    delay_seconds: float = 2.0
    lockout_threshold: int = 10
    lockout: timedelta = timedelta(minutes=15)
    window: timedelta = timedelta(hours=1)


@dataclass(frozen=True)
class Verdict:
    allowed: bool
    retry_after: int = 0  # seconds until the next attempt can be considered
    locked: bool = False


def account_limits(settings) -> Limits:
    return Limits(settings.login_free_attempts, settings.login_delay_seconds, settings.login_lockout_threshold,
                  timedelta(minutes=settings.login_lockout_minutes),
                  timedelta(minutes=settings.login_failure_window_minutes))


def address_limits(settings) -> Limits:
    return Limits(settings.login_ip_free_attempts, settings.login_delay_seconds, settings.login_ip_lockout_threshold,
                  timedelta(minutes=settings.login_lockout_minutes),
                  timedelta(minutes=settings.login_failure_window_minutes))


def _aware(value: datetime | None) -> datetime | None:
    return value.replace(tzinfo=UTC) if value is not None and value.tzinfo is None else value


def locked_transaction(session: Session) -> None:
    """Make this session's transaction take the write lock first on SQLite (rows are locked on PostgreSQL)."""
    if session.get_bind().dialect.name == "sqlite":
        session.connection().exec_driver_sql("BEGIN IMMEDIATE")


def _row(session: Session, key: str) -> LoginThrottle:
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    session.execute(insert(LoginThrottle).values(key=key, failures=0).on_conflict_do_nothing())
    return session.scalars(select(LoginThrottle).where(LoginThrottle.key == key)
                           .with_for_update().execution_options(populate_existing=True)).one()


def _forget_old(row: LoginThrottle, limits: Limits, now: datetime) -> None:
    last = _aware(row.last_failure_at)
    if last is not None and now - last >= limits.window:
        row.failures, row.first_failure_at, row.not_before, row.locked_until = 0, None, None, None


def attempt(sm: sessionmaker, keys: Sequence[tuple[str, Limits]], *, ip: str = "", user_id: int | None = None,
            identifier: str = "", now: datetime | None = None) -> Verdict:
    """Decide whether this attempt may be checked; if so count it as a failure in advance."""
    now = now or utcnow()
    with sm() as session:
        locked_transaction(session)
        rows = [(_row(session, key), limits) for key, limits in sorted(keys, key=lambda k: k[0])]
        waits = []
        for row, limits in rows:
            _forget_old(row, limits, now)
            for until in (_aware(row.locked_until), _aware(row.not_before)):
                if until is not None and until > now:
                    waits.append((until - now).total_seconds())
        if waits:
            locked = any(_aware(r.locked_until) is not None and _aware(r.locked_until) > now for r, _ in rows)
            retry = max(1, math.ceil(max(waits)))
            audit.record(session, "login_throttled", user_id=user_id, ip=ip, now=now, identifier=identifier,
                         locked=locked, retry_after=retry)
            session.commit()
            return Verdict(False, retry, locked)
        for row, limits in rows:
            row.failures += 1
            row.first_failure_at = row.first_failure_at or now
            row.last_failure_at = now
            if row.failures >= limits.free_attempts:
                delay = limits.delay_seconds * 2 ** (row.failures - limits.free_attempts)
                row.not_before = now + timedelta(seconds=min(delay, 86400))
            if row.failures >= limits.lockout_threshold:
                row.locked_until = now + limits.lockout
                audit.record(session, "login_lockout", user_id=user_id, ip=ip, now=now, identifier=identifier,
                             key_kind=row.key.partition(":")[0], failures=row.failures,
                             locked_until=row.locked_until.isoformat())
        session.commit()
    return Verdict(True)


def succeeded(session: Session, account_key: str, other_keys: Sequence[str] = ()) -> None:
    """A correct credential: the account's count starts again; the advance count on other keys is undone.
    Runs in the caller's transaction (the caller commits)."""
    for key in sorted({account_key, *other_keys}):
        row = session.scalars(select(LoginThrottle).where(LoginThrottle.key == key).with_for_update()).first()
        if row is None:
            continue
        if key == account_key:
            row.failures, row.first_failure_at, row.not_before, row.locked_until = 0, None, None, None
        else:
            row.failures = max(0, row.failures - 1)


def account_key(kind: str, identifier: str) -> str:
    return f"{kind}:{audit.identifier_hash(identifier)}"


def address_key(ip: str) -> str:
    return f"ip:{ip}"
