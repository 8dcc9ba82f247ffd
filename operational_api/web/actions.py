"""Running a service call from a form: success is committed before the redirect; a refusal (a DomainError, or a
database trigger's "ez360:" refusal) rolls the request's transaction back and comes back as the error to show
beside the form."""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeVar

from fastapi import APIRouter, Depends, HTTPException
from fastapi.responses import RedirectResponse
from sqlalchemy.exc import DBAPIError
from sqlalchemy.orm import Session

from operational_api.api.deps import company_id_in_range
from operational_api.api.routing import trigger_message
from operational_api.services.errors import DomainError, ImmutableRecord

T = TypeVar("T")


def attempt(db: Session, action: Callable[[], T]) -> tuple[T | None, DomainError | None]:
    """Run `action`; on success commit at once, so the page the browser is redirected to sees the change
    whenever the request's own session closes."""
    try:
        result = action()
        db.commit()
        return result, None
    except DomainError as exc:
        db.rollback()
        return None, exc
    except DBAPIError as exc:
        message = trigger_message(exc)
        if message is None:
            raise
        db.rollback()
        return None, ImmutableRecord(message)


def company_pages(path: str = "") -> APIRouter:
    """A router for pages of one company: /app/c/{company_id}/...; ids beyond the integer range answer 404."""
    return APIRouter(prefix=f"/app/c/{{company_id}}{path}", include_in_schema=False,
                     dependencies=[Depends(company_id_in_range)])


def act(db: Session, action: Callable[[], object], url: str, done: str) -> RedirectResponse:
    """A one-button action: done, back to `url` with its success message; refused, the error page says why."""
    from operational_api.web.rendering import go
    _, error = attempt(db, action)
    if error:
        raise HTTPException(error.status, error.detail)
    return go(url, done)
