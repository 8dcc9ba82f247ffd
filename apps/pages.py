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
    permission: str  # no icons: Streamlit would fetch Material Symbols from fonts.gstatic.com


PAGES: tuple[PageSpec, ...] = (
    PageSpec("views/overview.py", "Executive overview", "overview", "dashboards:kpis"),
    PageSpec("views/reconciliation.py", "Reconciliation", "reconciliation", "reconcile"),
    PageSpec("views/revenue.py", "Revenue by month", "revenue", "dashboards:read"),
    PageSpec("views/adoption.py", "Product adoption", "adoption", "dashboards:read"),
    PageSpec("views/health.py", "Data health", "data-health", "dashboards:read"),
)


def visible_pages(ctx: RunContext) -> list[PageSpec]:
    return [p for p in PAGES if ctx.company.may(p.permission)]
