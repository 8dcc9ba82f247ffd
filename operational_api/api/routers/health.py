"""Health endpoints for uptime monitoring and orchestrators."""

from __future__ import annotations

from fastapi import APIRouter, Request
from sqlalchemy import text

from operational_api.api.problems import problem

router = APIRouter(tags=["health"])


@router.get("/health/live", summary="The process is up")
def live() -> dict:
    return {"status": "ok"}


@router.get("/health/ready", summary="The process can serve: the ops DB answers",
            responses={503: {"description": "The ops DB does not answer", "content": {
                "application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}}})
def ready(request: Request):
    try:
        with request.app.state.engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    except Exception as exc:  # noqa: BLE001 - any failure means not ready
        return problem(503, "Not ready", f"ops DB unreachable: {type(exc).__name__}", request)
    return {"status": "ok", "database": "ok"}
