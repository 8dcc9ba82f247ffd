"""Every company-scoped route is checked against the permission matrix for every role: a role the matrix allows
is never answered 403, a role it refuses always is."""

from __future__ import annotations

import re

import pytest

from operational_api.api.routers import discover
from operational_api.permissions import PERMISSIONS
from tests.support.integrity import ROLES, build_api_world


@pytest.fixture
def api(ops_db):
    return build_api_world(ops_db)


def _routes(_app):
    """Every API route of every router module (this FastAPI wraps included routers, so `app.routes` does not list
    them flat)."""
    for route in (r for router in discover() for r in router.routes):
        path = getattr(route, "path", "")
        if "{company_id}" not in path:
            continue
        declared = [p for p in (getattr(d.call, "permission", None) for d in route.dependant.dependencies) if p]
        for method in sorted(route.methods - {"HEAD", "OPTIONS"}):
            yield method, path, declared


def test_every_route_declares_exactly_one_permission_from_the_matrix(api):
    routes = list(_routes(api.client.app))
    assert len(routes) > 50
    for method, path, declared in routes:
        assert len(declared) == 1 and declared[0] in PERMISSIONS, (method, path, declared)


def test_every_route_answers_each_role_as_the_matrix_says(api):
    checked = 0
    for method, path, (permission,) in _routes(api.client.app):
        url = path.replace("{company_id}", str(api.company_id)).replace("{period}", "2026-01")
        url = re.sub(r"\{\w+\}", "999999", url)
        for role in ROLES:
            kwargs = {"json": {}} if method in ("POST", "PATCH", "PUT") else {}
            response = api.client.request(method, url, headers=api.headers(role), **kwargs)
            if role in PERMISSIONS[permission]:
                assert response.status_code != 403, (method, path, role, response.text)
            else:
                assert response.status_code == 403, (method, path, role, response.status_code)
                assert response.headers["content-type"] == "application/problem+json"
            checked += 1
    assert checked > 250
