"""Local stand-ins for Stripe and ERPNext that serve the demo universe files over their real HTTP APIs.

The real connectors (`ingest.stripe_source`, `ingest.erpnext_source`) talk to these exactly as they talk
to the real services, so the demo and the tests exercise the production code path end to end.
Shared plumbing lives here: exact-decimal JSON in and out, and the `python -m` entry point.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import Any

import simplejson
from fastapi import FastAPI
from fastapi.responses import Response


def load_json(path: Path) -> Any:
    # Decimal, never float: ERPNext currency values must reach the client digit for digit.
    with Path(path).open("rb") as fh:
        return simplejson.load(fh, use_decimal=True)


def json_response(payload: Any, status_code: int = 200, headers: dict[str, str] | None = None) -> Response:
    body = simplejson.dumps(payload, use_decimal=True, separators=(",", ":"))
    return Response(body, status_code=status_code, headers=headers, media_type="application/json")


def serve_cli(create_app: Callable[[Path], FastAPI], description: str, default_port: int) -> None:
    """`python -m ingest.sandboxes.<server> --data FILE [--host H] [--port P]`."""
    import uvicorn

    parser = argparse.ArgumentParser(description=description)
    parser.add_argument("--data", type=Path, required=True, help="the demo universe JSON file to serve")
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=default_port)
    parser.add_argument("--log-level", default="warning")
    args = parser.parse_args()
    if not args.data.is_file():
        parser.error(f"data file not found: {args.data} (run `ez360 seed` first)")
    uvicorn.run(create_app(args.data), host=args.host, port=args.port, log_level=args.log_level)
