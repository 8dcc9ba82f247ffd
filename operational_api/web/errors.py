"""Errors on web pages: a browser (asking for text/html) gets a page in the app's style, or is sent where it can
fix the problem (sign in, enrol two-factor authentication); every other client keeps the API's RFC 9457
problem documents, so the API's tests and clients see one behaviour everywhere."""

from __future__ import annotations

from http import HTTPStatus
from urllib.parse import quote

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import RedirectResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from operational_api.services.errors import DomainError
from operational_api.web.forms import WEB_PREFIXES
from operational_api.web.rendering import render

# The API's own 403 reasons that a browser can act on (see operational_api.api.context.company_principal).
NEEDS_ENROLMENT = "two-factor authentication is required"
NEEDS_SECOND_FACTOR = "this session has not passed the second factor"
NEEDS_VERIFIED_EMAIL = "verify your email address first"


def wants_html(request: Request) -> bool:
    return request.url.path.startswith(WEB_PREFIXES) and "text/html" in request.headers.get("accept", "")


def _here(request: Request) -> str:
    return quote(request.url.path + (f"?{request.url.query}" if request.url.query else ""), safe="")


def error_page(request: Request, status: int, detail: str):
    if status == 401:
        return RedirectResponse(f"/app/login?next={_here(request)}", status_code=303)
    if status == 403 and detail.startswith(NEEDS_ENROLMENT):
        return RedirectResponse(f"/app/account/two-factor?next={_here(request)}", status_code=303)
    if status == 403 and detail.startswith(NEEDS_SECOND_FACTOR):
        return RedirectResponse(f"/app/login?next={_here(request)}", status_code=303)
    if status == 403 and "CSRF" in detail:
        detail = "This form has expired (your session changed since the page was opened). Go back, reload " \
                 "the page and submit it again."
    title = {403: "You do not have access to this page", 404: "Page not found"}.get(
        status, HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else "Error")
    if status == 404:
        detail = "There is nothing here, or it belongs to a company you are not a member of."
    return render(request, "error.html", status=status, title=title, detail=detail,
                  verify=status == 403 and detail.startswith(NEEDS_VERIFIED_EMAIL))


def install_error_pages(app: FastAPI) -> None:
    api_http = app.exception_handlers[StarletteHTTPException]
    api_domain = app.exception_handlers[DomainError]
    api_validation = app.exception_handlers[RequestValidationError]

    async def http_error(request: Request, exc: StarletteHTTPException):
        if not wants_html(request):
            return await api_http(request, exc)
        response = error_page(request, exc.status_code, str(exc.detail))
        for name, value in (exc.headers or {}).items():
            response.headers[name] = value
        return response

    async def domain_error(request: Request, exc: DomainError):
        if not wants_html(request):
            return await api_domain(request, exc)
        return error_page(request, exc.status, exc.detail)

    async def validation_error(request: Request, exc: RequestValidationError):
        if not wants_html(request):
            return await api_validation(request, exc)
        return error_page(request, 404, "")

    app.add_exception_handler(StarletteHTTPException, http_error)
    app.add_exception_handler(DomainError, domain_error)
    app.add_exception_handler(RequestValidationError, validation_error)
