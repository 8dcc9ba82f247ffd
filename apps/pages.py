"""Which pages exist and which role sees each: one table, read by the navigation and by the tests. Each page
names a permission of the operational app's matrix (`operational_api.permissions`), so the dashboards grant
exactly what the web app and the API grant."""

from __future__ import annotations

from dataclasses import dataclass

from apps.session import RunContext


@dataclass(frozen=True)
class PageSpec:
    path: str  # relative to apps/dashboard.py
    title: str
    url_path: str
    permission: str
    icon: str
    platform_only: bool = False


PAGES: tuple[PageSpec, ...] = (
    PageSpec("views/overview.py", "Executive overview", "overview", "dashboards:kpis", ":material/monitoring:"),
    PageSpec("views/reconciliation.py", "Reconciliation", "reconciliation", "reconcile", ":material/rule:"),
    PageSpec("views/revenue.py", "Revenue by month", "revenue", "dashboards:read", ":material/bar_chart:"),
    PageSpec("views/adoption.py", "Product adoption", "adoption", "dashboards:read", ":material/groups:"),
    PageSpec("views/health.py", "Data health", "data-health", "dashboards:read", ":material/health_and_safety:"),
)


def visible_pages(ctx: RunContext) -> list[PageSpec]:
    return [p for p in PAGES if ctx.company.may(p.permission) and (not p.platform_only or ctx.viewer.platform_admin)]
