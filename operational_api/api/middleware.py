"""The app's own middleware: request id, the cross-site refusal, security headers, unhandled errors as problems.

Pure ASGI (issue 8): Starlette's `BaseHTTPMiddleware` (`@app.middleware("http")`) runs the app in a separate
task behind memory streams and copies every response through them; this one only wraps `send` to add the
headers to the response start, so a request costs one task, not three.
"""

from __future__ import annotations

import logging
import re
import uuid

from fastapi import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from operational_api.api.problems import problem
from operational_api.security import csrf

log = logging.getLogger("ez360.api")
REQUEST_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")  # a caller's id is echoed only when it is this plain

SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
                               "frame-ancestors 'none'; form-action 'self'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
    "Cross-Origin-Opener-Policy": "same-origin",
}
_DEFAULTS = [(name.lower().encode(), value.encode()) for name, value in SECURITY_HEADERS.items()]
_NO_STORE = (b"cache-control", b"no-store")


class RequestHeaders:
    """Every HTTP answer carries the request id (the caller's when plain, else a new one) and the security
    headers (unless the route set its own); API answers are `no-store`. State changes a browser sends from
    another site are refused before the app runs; an unhandled error answers a 500 problem document."""

    def __init__(self, app: ASGIApp, public_base_url: str):
        self.app, self.public_base_url = app, public_base_url

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request = Request(scope)
        offered = request.headers.get("x-request-id", "")
        request_id = offered if REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
        request.state.request_id = request_id
        api = scope["path"].startswith("/api/")
        started = False

        async def send_with_headers(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                headers = list(message.get("headers", ()))
                present = {name.lower() for name, _ in headers}
                headers.append((b"x-request-id", request_id.encode()))
                headers.extend(h for h in _DEFAULTS if h[0] not in present)
                if api and _NO_STORE[0] not in present:
                    headers.append(_NO_STORE)
                message = {**message, "headers": headers}
            await send(message)

        forged = csrf.cross_site_reason(request, self.public_base_url)
        if forged:
            await problem(403, "Forbidden", forged, request)(scope, receive, send_with_headers)
            return
        try:
            await self.app(scope, receive, send_with_headers)
        except Exception:  # an unhandled error still answers as a problem, with every header above
            log.exception("unhandled error on %s %s", request.method, scope["path"])
            if started:
                raise  # the answer is already on its way: nothing left to replace
            await problem(500, "Internal Server Error", "an unexpected error occurred",
                          request)(scope, receive, send_with_headers)
