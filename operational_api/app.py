"""The one place that builds the operational API."""

from __future__ import annotations

import uuid

from fastapi import FastAPI, Request

from ez360.settings import Settings
from operational_api.api.context import bearer_token
from operational_api.api.problems import install_problem_handlers
from operational_api.api.routers import discover
from operational_api.db.engine import make_engine, make_sessionmaker

SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    engine = make_engine(settings.database_url)
    # Swagger UI and ReDoc load scripts from a CDN, which the CSP and the no-outbound rule forbid;
    # the OpenAPI document itself is served at /openapi.json.
    app = FastAPI(title="EZ360 operational API", version="0.1.0", docs_url=None, redoc_url=None,
                  description="Records, money and financial integrity for a services business.")
    app.state.settings = settings
    app.state.engine = engine
    app.state.sessionmaker = make_sessionmaker(engine)
    app.state.authenticators = [bearer_token]

    @app.middleware("http")
    async def request_id_and_headers(request: Request, call_next):
        request.state.request_id = request.headers.get("x-request-id") or uuid.uuid4().hex
        response = await call_next(request)
        response.headers["X-Request-ID"] = request.state.request_id
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    install_problem_handlers(app)
    for router in discover():
        app.include_router(router)
    return app
