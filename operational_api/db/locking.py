"""Row locks, their one order, bounded retries, and what a failed write answers.

Every service that checks a money invariant before writing locks the rows it checks (`SELECT ... FOR UPDATE`
on PostgreSQL) and then re-reads them, so two requests racing on the same payment, invoice or journal entry
queue on the row lock and the second one sees the first one's result: it gets a clear 409 problem document,
never a 500 and never a second success. The database holds the same invariants itself (constraint triggers of
migration 0009, checked at commit), so a code path that forgets a lock still cannot break the books.

LOCK ORDER (every writer takes row locks in this order, never backwards, so lock waits cannot form a cycle):

    1. payments        by id ascending  (refunds, credit applications: the payment whose money is used)
    2. invoices        by id ascending  (then the invoice's lines; they are only written under the invoice's lock)
    3. journal entries by id ascending  (then the entry's lines; they are only written under the entry's lock)
    4. number_sequences                 (the gapless counter, an UPDATE ... RETURNING on send / credit note)
    5. audit_heads                      (taken LAST, just before COMMIT, by `audit_trail`: the chain is sealed
                                         at commit time, so writers of one company do not queue on it for the
                                         whole transaction, only for the final INSERT of their audit rows)

The company row (FOR NO KEY UPDATE, `lock_company`) is taken by what counts against the company's plan, before
it counts, and by a plan change; those writers take none of the locks above before it.

Closing a month and posting into it (migration 0013): the database takes the month's advisory lock, keyed
(company id, yyyymm), SHARE in the guard of every posting and EXCLUSIVE in the trigger of a close. The close
takes it first and holds no row lock while it waits; a posting that waits on it holds its row locks but not the
audit head (taken after the posting), so no wait cycle can form.

Deadlocks (40P01), serialization failures (40001) and lock timeouts (55P03) that still happen (a raw-SQL
writer not following the order, two companies' heads) are retried a bounded number of times (`RETRIES`)
inside a savepoint by `retrying`; when the retries are used up, or when the failure happens at COMMIT,
the caller gets a 409 problem document naming the concurrent change.

SQLite has a single writer: `lock` opens the transaction with `BEGIN IMMEDIATE` (the write lock) before the
rows are read, so a check and the write after it can never interleave with another writer (`FOR UPDATE` does
not exist there). If the request's transaction already wrote, it already holds that lock. SQLite has no
deadlocks to retry; its triggers (migration 0009) hold the same sums for any writer that skipped the lock.
"""

from __future__ import annotations

import functools
import logging
from collections.abc import Callable, Iterable
from typing import TypeVar

from sqlalchemy import bindparam, select
from sqlalchemy.exc import DBAPIError, IntegrityError
from sqlalchemy.orm import Session

from operational_api.services.errors import Conflict, DomainError

T = TypeVar("T")
log = logging.getLogger("ez360.db")
RETRIES = 3
RETRYABLE_PG = {"40001": "serialization failure", "40P01": "deadlock", "55P03": "lock not available"}
TRIGGER_MARK = "ez360:"


class ConcurrentChange(Conflict):
    title = "Conflict with a concurrent change"


class CommitFailed(Conflict):
    title = "The change could not be saved"


class StorageUnavailable(DomainError):
    status = 503
    title = "Service Unavailable"


def sqlstate(exc: DBAPIError) -> str | None:
    orig = exc.orig
    return getattr(orig, "sqlstate", None) or getattr(orig, "pgcode", None)


def is_retryable(exc: DBAPIError) -> bool:
    if sqlstate(exc) in RETRYABLE_PG:
        return True
    return "database is locked" in str(exc.orig)  # SQLite: busy timeout passed


def trigger_message(exc: DBAPIError) -> str | None:
    text = str(exc.orig) if exc.orig is not None else str(exc)
    if TRIGGER_MARK not in text:
        return None
    return text[text.index(TRIGGER_MARK) + len(TRIGGER_MARK):].splitlines()[0].strip()


def commit_failure(exc: DBAPIError) -> DomainError:
    """The problem a failed COMMIT answers: nothing was stored."""
    message = trigger_message(exc)
    if message is not None:
        return CommitFailed(f"nothing was saved: {message}")
    if is_retryable(exc):
        return ConcurrentChange(f"nothing was saved: a concurrent change to the same records won "
                                f"({RETRYABLE_PG.get(sqlstate(exc) or '', 'database busy')}); read them again "
                                "and retry")
    if isinstance(exc, IntegrityError):
        return CommitFailed("nothing was saved: the change breaks an integrity rule of the books")
    log.error("commit failed", exc_info=exc)
    return StorageUnavailable("nothing was saved: the database did not accept the transaction")


def sqlite_write_lock(session: Session) -> None:
    """SQLite: take the database's write lock now (`BEGIN IMMEDIATE`) unless this transaction already holds it."""
    connection = session.connection()
    if connection.dialect.name == "sqlite" and not connection.connection.dbapi_connection.in_transaction:
        connection.exec_driver_sql("BEGIN IMMEDIATE")


def lock(session: Session, model: type[T], ids: Iterable[int]) -> dict[int, T]:
    """Lock rows of one table by id ascending (the lock order within a table) and load their current state."""
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    sqlite_write_lock(session)
    return {row.id: row for row in session.scalars(_lock_query(model), {"ids": wanted})}


@functools.cache
def _lock_query(model, key_share: bool = False):
    """Built once per model (and lock strength), so a lock binds its ids only (see operational_api.db.scoped._by_id).
    `key_share`: FOR NO KEY UPDATE, which leaves the rows' foreign-key references (KEY SHARE) alone."""
    return (select(model).where(model.id.in_(bindparam("ids", expanding=True))).order_by(model.id)
            .with_for_update(key_share=key_share).execution_options(populate_existing=True))


def lock_company(session: Session, company: T) -> T:
    """Lock a company's row FOR NO KEY UPDATE and refresh it, before counting what its plan limits (members and
    open invitations, clients, active projects) or changing its plan: two creations then cannot both see room
    for one more, and the count after the wait sees the rows the other committed (and the plan it set). Rows
    that only reference the company (every tenant row's foreign key) take KEY SHARE, which this lock leaves
    alone, so the company's other writers do not wait on it."""
    sqlite_write_lock(session)
    session.scalars(_lock_query(type(company), key_share=True), {"ids": [company.id]}).one()
    return company


def lock_children(session: Session, model, parent_column, parent_id: int) -> None:
    """Lock the lines of a locked document (invoice lines, journal lines), right after the document itself."""
    session.execute(select(model.id).where(parent_column == parent_id).order_by(model.id).with_for_update())


def lock_one(session: Session, obj: T) -> T:
    """Lock one loaded row and refresh it: after the wait, the object shows what the lock holder committed."""
    model = type(obj)
    locked = lock(session, model, [obj.id])
    return locked.get(obj.id, obj)


def retrying(fn: Callable[..., T]) -> Callable[..., T]:
    """Run a service function (first argument: the session) in a savepoint, retried on deadlock/serialization.

    The savepoint's rollback releases the locks the attempt took, so the retry starts clean; the session's
    outer transaction and the rows written before the call stay. After `RETRIES` attempts: 409.
    """

    @functools.wraps(fn)
    def wrapper(session: Session, *args, **kwargs):
        if session.info.get("ez360_in_retry") or session.get_bind().dialect.name == "sqlite":
            return fn(session, *args, **kwargs)  # nested calls share the outer attempt; SQLite cannot deadlock
        session.info["ez360_in_retry"] = True
        try:
            for attempt in range(1, RETRIES + 1):
                savepoint = session.begin_nested()
                try:
                    result = fn(session, *args, **kwargs)
                    savepoint.commit()
                    return result
                except DBAPIError as exc:
                    if savepoint.is_active:
                        savepoint.rollback()
                    if not is_retryable(exc):
                        message = trigger_message(exc)
                        if message is not None:
                            raise Conflict(message) from exc
                        if isinstance(exc, IntegrityError):  # e.g. a concurrent insert took the unique key
                            raise ConcurrentChange("a concurrent change already recorded this (a unique rule of "
                                                   "the books refused a second one); read it again") from exc
                        raise
                    if attempt == RETRIES:
                        raise ConcurrentChange(f"a concurrent change to the same records won {RETRIES} times "
                                               f"({RETRYABLE_PG.get(sqlstate(exc) or '', 'database busy')}); "
                                               "read them again and retry") from exc
                except BaseException:
                    if savepoint.is_active:
                        savepoint.rollback()
                    raise
            raise AssertionError("unreachable")
        finally:
            session.info.pop("ez360_in_retry", None)

    return wrapper
