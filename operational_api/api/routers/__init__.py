"""One router module per resource; `ROUTERS` is what the app mounts."""

from operational_api.api.routers import companies, health

ROUTERS = [health.router, companies.router]
