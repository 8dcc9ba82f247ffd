"""The one place that builds the operational API."""

from __future__ import annotations

import asyncio
import contextlib
import gc

from fastapi import FastAPI

from ez360.core.observability import init_sentry
from ez360.core.settings import Settings
from operational_api.api.context import bearer_token, session_cookie
from operational_api.api.middleware import SECURITY_HEADERS, RequestHeaders
from operational_api.api.problems import install_problem_handlers
from operational_api.api.routers import discover
from operational_api.api.schemas import ERROR_RESPONSES
from operational_api.db import audit_trail
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.security import encryption, mail
from operational_api.web import install as install_web_app

__all__ = ["SECURITY_HEADERS", "create_app"]  # the web pages extend SECURITY_HEADERS' CSP


_frozen = False


def _freeze_startup_objects() -> None:
    """The app's own objects (routes, models, schemas: ~215,000) live as long as the server process; a full
    garbage collection walked them all, a pause of ~100 ms in whatever requests were running (issue 8: the P99).
    Moved out of the collector's reach once per process (a test process builds many apps: only the first
    start's survivors are kept, so what is frozen stays bounded)."""
    global _frozen
    if not _frozen:
        _frozen = True
        gc.collect()
        gc.freeze()


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
        _freeze_startup_objects()
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

    app.add_middleware(RequestHeaders, public_base_url=settings.public_base_url)
    install_problem_handlers(app)
    for router in discover():
        app.include_router(router, responses=ERROR_RESPONSES)  # every operation documents its problem answers
    install_web_app(app)  # the staff pages under /app, /docs with vendored Swagger UI
    return app
