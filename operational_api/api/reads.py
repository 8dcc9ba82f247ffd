"""Read-only list pages in one worker-thread hop (issue 8).

A company route built on `company_ctx` resolves its dependencies one by one: the caller's session and membership
in a worker thread, the route in another, its commit in a third (each hop a task switch, a thread wake-up and a
trip back to the event loop), and it loads its rows as ORM objects. For a list page, the most frequent request
staff make, that plumbing cost more than the page itself. A list route instead depends on `page_reader`, which
does no I/O on the event loop, and runs the same authentication (`company_principal`: session, CSRF, user,
membership, two-factor rules) and the same permission check as every other company route, then the page's
queries, all in ONE worker-thread call on one database session. The session is closed, never committed: a page
writes nothing (the session's idle-deadline touch commits itself, as on every route).

FastAPI therefore checks the query parameters before the caller: a malformed one answers 422 to anyone, as
`company_id_in_range` does for the path. That answer reads nothing from the database, so it says nothing of
whether the company or any record exists. A list's cursor is decoded with the page, after authentication.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TypeVar

from fastapi import Path, Request
from sqlalchemy.orm import Session
from starlette.concurrency import run_in_threadpool

from operational_api.api.context import Principal, check_permission, company_principal, open_session
from operational_api.permissions import allowed

R = TypeVar("R")


@dataclass(frozen=True)
class PageReader:
    request: Request
    company_id: int
    permission: str

    async def run(self, work: Callable[[Session, Principal], R]) -> R:
        """`work(db, principal)` after authentication and the permission check, in one worker thread."""
        return await run_in_threadpool(self._job, work)

    def _job(self, work: Callable[[Session, Principal], R]) -> R:
        db = open_session(self.request)
        try:
            principal = company_principal(self.request, self.company_id, db)
            return work(db, check_permission(principal, self.permission))
        finally:
            db.close()  # returns the connection; the pool rolls the read-only transaction back


def page_reader(permission: str) -> Callable[..., PageReader]:
    allowed("owner", permission)  # fails at import time for a permission missing from the matrix

    async def dependency(request: Request, company_id: int = Path(..., ge=1)) -> PageReader:  # no I/O: no thread
        return PageReader(request, company_id, permission)

    dependency.permission = permission  # read by the permission-matrix tests
    dependency.calls = (company_principal,)  # ... which also check that the membership is enforced
    return dependency
