"""Discover the app's routes as the tests need them, including routes other features add later.

FastAPI >= 0.13x keeps included routers as `_IncludedRouter` entries in `app.routes` (no `.path`), so a plain
walk over `app.routes` sees almost nothing; `fastapi.routing.iter_route_contexts` flattens them."""

from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import dataclass

from fastapi.dependencies.models import Dependant

try:  # FastAPI with included-router contexts
    from fastapi.routing import iter_route_contexts as _iter
except ImportError:  # older FastAPI: app.routes holds the APIRoutes themselves
    def _iter(routes):
        return iter(routes)


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    dependant: Dependant

    @property
    def params(self) -> list[str]:
        return re.findall(r"{(\w+)(?::\w+)?}", self.path)

    def permissions(self) -> list[str]:
        """The permissions `require()` declared anywhere in this route's dependency tree."""
        found, stack = [], [self.dependant]
        while stack:
            dep = stack.pop()
            permission = getattr(dep.call, "permission", None)
            if permission:
                found.append(permission)
            stack.extend(dep.dependencies)
        return found

    def depends_on(self, function) -> bool:
        """Whether `function` is in the route's dependency tree, or is called by a dependency that says so
        (`operational_api.api.reads.page_reader` runs `company_principal` inside its own worker-thread call)."""
        stack = [self.dependant]
        while stack:
            dep = stack.pop()
            if dep.call is function or function in getattr(dep.call, "calls", ()):
                return True
            stack.extend(dep.dependencies)
        return False

    def url(self, **values) -> str:
        return re.sub(r"{(\w+)(?::\w+)?}", lambda m: str(values[m.group(1)]), self.path)


def endpoints(app) -> Iterator[Endpoint]:
    for route in _iter(app.routes):
        dependant = getattr(route, "dependant", None)
        path = getattr(route, "path", None)
        if dependant is None or path is None:
            continue
        for method in sorted(getattr(route, "methods", None) or ()):
            if method != "HEAD":
                yield Endpoint(method, path, dependant)


def company_endpoints(app) -> list[Endpoint]:
    return [e for e in endpoints(app) if "{company_id}" in e.path]
