"""The permission matrix: which role may do what, as data in one place. Routes name a permission;
`operational_api.api.context.require` enforces it (403 for a member without it)."""

from __future__ import annotations

ALL = frozenset({"owner", "admin", "finance", "staff", "viewer"})
MANAGERS = frozenset({"owner", "admin"})
FINANCE = frozenset({"owner", "admin", "finance"})
WORKERS = frozenset({"owner", "admin", "finance", "staff"})

PERMISSIONS: dict[str, frozenset[str]] = {
    "company:read": ALL,
    "company:update": MANAGERS,
    "members:read": ALL,
    "members:manage": MANAGERS,
    "tokens:manage": MANAGERS,
    "clients:read": ALL,
    "clients:write": WORKERS,
    "projects:read": ALL,
    "projects:write": WORKERS,
    "time:read": ALL,
    "time:write": WORKERS,
    "time:write_others": FINANCE,  # staff change only their own time entries
    "expenses:read": ALL,
    "expenses:write": WORKERS,
    "invoices:read": ALL,
    "invoices:write": FINANCE,
    "invoices:send": FINANCE,
    "payments:read": ALL,
    "payments:write": FINANCE,
    "payments:refund": FINANCE,
    "ledger:read": FINANCE,
    "ledger:write": FINANCE,
    "ledger:close_period": MANAGERS,
    "ledger:reopen_period": frozenset({"owner"}),
    "audit:read": FINANCE,  # finance reconciles the books: it reads (never writes) the audit trail
    "usage:read": MANAGERS,
    "onboarding:read": ALL,
    "dashboards:read": FINANCE | {"viewer"},  # the finance and executive dashboards (executives are viewers)
    # dashboards (apps/): executives (viewers) and managers read the KPIs; finance reconciles
    "dashboards:kpis": MANAGERS | {"viewer"},
    "reconcile": FINANCE,  # write reconciliation resolutions (append-only, audited)
}


def allowed(role: str, permission: str) -> bool:
    try:
        return role in PERMISSIONS[permission]
    except KeyError:
        raise KeyError(f"unknown permission {permission!r}: add it to PERMISSIONS") from None
