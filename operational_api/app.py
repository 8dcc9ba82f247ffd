"""The one place that builds the operational API."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import re
import uuid

from fastapi import FastAPI, Request

from ez360.core.observability import init_sentry
from ez360.core.settings import Settings
from operational_api.api.context import bearer_token, session_cookie
from operational_api.api.problems import install_problem_handlers, problem
from operational_api.api.routers import discover
from operational_api.api.schemas import ERROR_RESPONSES
from operational_api.db import audit_trail
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.security import csrf, encryption, mail
from operational_api.web import install as install_web_app

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


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    init_sentry(settings, "api")
    engine = make_engine(settings.database_url)
    # FastAPI's own Swagger UI and ReDoc load scripts from a CDN, which the CSP and the no-outbound rule forbid:
    # /docs is served by the web app with Swagger UI vendored from npm (operational_api/web/static/vendor).
    sm = make_sessionmaker(engine)
    encryption.attach(sm, settings)  # production refuses to start without EZ360_TOTP_ENCRYPTION_KEYS
    audit_trail.keys_from(settings)  # ... and without EZ360_AUDIT_KEY (the audit chain's HMAC key)

    @contextlib.asynccontextmanager
    async def lifespan(_app: FastAPI):
        retry = asyncio.create_task(mail.retry_loop(sm, settings))  # the email outbox's retries
        try:
            yield
        finally:
            retry.cancel()

    app = FastAPI(title="EZ360 operational API", version="0.1.0", docs_url=None, redoc_url=None,
                  description="Records, money and financial integrity for a services business.", lifespan=lifespan)
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = sm
    app.state.authenticators = [bearer_token, session_cookie]

    @app.middleware("http")
    async def request_id_and_headers(request: Request, call_next):
        offered = request.headers.get("x-request-id", "")
        request.state.request_id = offered if REQUEST_ID.fullmatch(offered) else uuid.uuid4().hex
        forged = csrf.cross_site_reason(request, settings.public_base_url)
        if forged:
            response = problem(403, "Forbidden", forged, request)
        else:
            try:
                response = await call_next(request)
            except Exception:  # an unhandled error still answers as a problem, with every header below
                log.exception("unhandled error on %s %s", request.method, request.url.path)
                response = problem(500, "Internal Server Error", "an unexpected error occurred", request)
        response.headers["X-Request-ID"] = request.state.request_id
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        if request.url.path.startswith("/api/"):
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    install_problem_handlers(app)
    for router in discover():
        app.include_router(router, responses=ERROR_RESPONSES)  # every operation documents its problem answers
    install_web_app(app)  # the staff pages under /app, /docs with vendored Swagger UI
    return app
