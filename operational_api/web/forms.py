"""HTML forms: the session's CSRF token travels in a hidden field, and form errors are shown beside their
fields with what the person typed kept.

A browser form cannot set the `X-CSRF-Token` header that the API's session check reads. `FormCsrfHeader`
copies the form's `csrf_token` field into that header before the app sees the request, so web pages are
checked by exactly the same code as the API (`operational_api.security.csrf.check_token`, in the same
`authenticate` dependency) against the same synchronizer token of the same server-side session. The
cross-site (Origin / Sec-Fetch-Site) refusal in the app's middleware applies to forms as to everything else.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import parse_qs

from fastapi import Request
from starlette.types import ASGIApp, Receive, Scope, Send

from operational_api.security.csrf import HEADER, UNSAFE
from operational_api.services.errors import DomainError

FORM_TYPE = b"application/x-www-form-urlencoded"
MAX_FORM_BYTES = 1_000_000
WEB_PREFIXES = ("/app", "/verify-email", "/reset-password", "/i/", "/invitations")


class FormCsrfHeader:
    """Pure ASGI middleware: for form posts to the web pages, the `csrf_token` field becomes the header."""

    def __init__(self, app: ASGIApp):
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if (scope["type"] != "http" or scope["method"] not in UNSAFE
                or not scope["path"].startswith(WEB_PREFIXES)):
            await self.app(scope, receive, send)
            return
        headers = dict(scope["headers"])
        if not headers.get(b"content-type", b"").startswith(FORM_TYPE) or HEADER.encode() in headers:
            await self.app(scope, receive, send)
            return
        body, more = b"", True
        while more:
            message = await receive()
            if message["type"] != "http.request":
                return  # the client went away
            body += message.get("body", b"")
            more = message.get("more_body", False)
            if len(body) > MAX_FORM_BYTES:
                await _too_large(send)
                return
        token = parse_qs(body.decode("latin-1")).get("csrf_token", [""])[0]
        if token:
            scope = {**scope, "headers": [*scope["headers"], (HEADER.encode(), token.encode("latin-1"))]}
        sent = False

        async def replay() -> dict:
            nonlocal sent
            if not sent:
                sent = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)


async def _too_large(send: Send) -> None:
    await send({"type": "http.response.start", "status": 413, "headers": [(b"content-type", b"text/plain")]})
    await send({"type": "http.response.body", "body": b"form too large"})


async def form_data(request: Request) -> dict[str, str]:
    """The posted form as {name: value} (the last value of a repeated name; see `form_lists`)."""
    form = await request.form()
    return {key: str(value) for key, value in form.items()}


async def form_lists(request: Request) -> dict[str, list[str]]:
    form = await request.form()
    return {key: [str(v) for v in form.getlist(key)] for key in form.keys()}


@dataclass
class FormState:
    """What a form shows: the values (as typed), an error per field, and a general error."""

    values: dict[str, str] = field(default_factory=dict)
    errors: dict[str, str] = field(default_factory=dict)
    error: str | None = None

    def fail(self, exc: DomainError, fields: tuple[str, ...] = ()) -> FormState:
        """Put a service's refusal beside the field it names (its message starts with the field's name)."""
        message = exc.detail
        for name in sorted(fields, key=len, reverse=True):
            for alias in (name, name.replace("_", " ")):
                if message.lower().startswith(alias.lower()):
                    self.errors[name] = message
                    return self
        self.error = message
        return self

    @property
    def ok(self) -> bool:
        return not self.errors and not self.error
