"""The staff web app: server-rendered pages under /app (Jinja2), on the same services, sessions, CSRF tokens,
security headers and permission matrix as the API. `install(app)` mounts it on the operational app."""

from __future__ import annotations

import importlib
import pkgutil

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from operational_api.web import pages
from operational_api.web.errors import install_error_pages
from operational_api.web.forms import FormCsrfHeader
from operational_api.web.rendering import HERE


def install(app: FastAPI) -> None:
    app.add_middleware(FormCsrfHeader)
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    for info in sorted(pkgutil.iter_modules(pages.__path__), key=lambda i: i.name):
        module = importlib.import_module(f"{pages.__name__}.{info.name}")
        app.include_router(module.router)
    install_error_pages(app)
