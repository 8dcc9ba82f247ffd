"""The one place that builds the operational API."""

from __future__ import annotations

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from sqlalchemy import text
from starlette.exceptions import HTTPException as StarletteHTTPException

from ez360.settings import Settings
from operational_api.db.engine import make_engine
from operational_api.services.errors import DomainError

PROBLEM = "application/problem+json"
SECURITY_HEADERS = {
    "Strict-Transport-Security": "max-age=31536000; includeSubDomains",
    "Content-Security-Policy": "default-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'; "
                               "frame-ancestors 'none'",
    "X-Content-Type-Options": "nosniff",
    "X-Frame-Options": "DENY",
    "Referrer-Policy": "strict-origin-when-cross-origin",
    "Permissions-Policy": "camera=(), microphone=(), geolocation=()",
}


def problem(status: int, title: str, detail: str, request: Request, **extra) -> JSONResponse:
    """An RFC 9457 problem document."""
    body = {"type": "about:blank", "title": title, "status": status, "detail": detail,
            "instance": str(request.url.path), **extra}
    return JSONResponse(body, status_code=status, media_type=PROBLEM)


def create_app(settings: Settings | None = None) -> FastAPI:
    settings = settings or Settings()
    engine = make_engine(settings.database_url)
    # Swagger UI and ReDoc load scripts from a CDN, which the CSP and the no-outbound rule forbid;
    # the OpenAPI document itself is served at /openapi.json.
    app = FastAPI(title="EZ360 operational API", version="0.1.0", docs_url=None, redoc_url=None,
                  description="Records, money and financial integrity for a services business.")
    app.state.engine = engine

    @app.middleware("http")
    async def security_headers(request: Request, call_next):
        response = await call_next(request)
        for name, value in SECURITY_HEADERS.items():
            response.headers.setdefault(name, value)
        return response

    @app.exception_handler(DomainError)
    async def domain_error(request: Request, exc: DomainError):
        return problem(exc.status, exc.title, exc.detail, request)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        return problem(exc.status_code, str(exc.detail), str(exc.detail), request)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        errors = [{"loc": list(e["loc"]), "msg": e["msg"]} for e in exc.errors()]
        return problem(422, "Validation failed", "the request does not match the API schema", request, errors=errors)

    @app.get("/health/live", tags=["health"], summary="The process is up")
    def live() -> dict:
        return {"status": "ok"}

    @app.get("/health/ready", tags=["health"], summary="The process can serve: the ops DB answers")
    def ready(request: Request):
        try:
            with engine.connect() as conn:
                conn.execute(text("SELECT 1"))
        except Exception as exc:  # noqa: BLE001 - any failure means not ready
            return problem(503, "Not ready", f"ops DB unreachable: {type(exc).__name__}", request)
        return {"status": "ok", "database": "ok"}

    return app
