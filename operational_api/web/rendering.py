"""Rendering pages: one Jinja2 environment, the per-request formatting helpers, the navigation a role may see,
and the one style of success message (a redirect carries a known `done` key; the page shows its sentence)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, datetime
from decimal import Decimal
from pathlib import Path
from urllib.parse import urlencode

from babel import Locale
from babel.dates import format_date, format_datetime
from fastapi import Request
from fastapi.responses import HTMLResponse, RedirectResponse
from fastapi.templating import Jinja2Templates
from sqlalchemy import select
from sqlalchemy.orm import Session

from ez360.core.money import exponent
from operational_api.api.deps import Ctx
from operational_api.db.models import Company, Membership
from operational_api.db.security_models import UserSession
from operational_api.permissions import allowed
from operational_api.web import l10n

HERE = Path(__file__).resolve().parent
templates = Jinja2Templates(directory=HERE / "templates")
templates.env.trim_blocks = True
templates.env.lstrip_blocks = True

# (label, path under /app/c/{id}, permission to see it)
NAV: tuple[tuple[str, str, str], ...] = (
    ("Home", "", "company:read"),
    ("Clients", "/clients", "clients:read"),
    ("Projects", "/projects", "projects:read"),
    ("Time", "/time", "time:read"),
    ("Expenses", "/expenses", "expenses:read"),
    ("Invoices", "/invoices", "invoices:read"),
    ("Payments", "/payments", "payments:read"),
    ("Ledger", "/ledger", "ledger:read"),
    ("Audit log", "/audit", "audit:read"),
    ("Members", "/members", "members:read"),
    ("API tokens", "/tokens", "tokens:manage"),
    ("Settings", "/settings", "company:update"),
)

NOTICES = {
    "verified": "Your email address is verified. Sign in to continue.",
    "signed_out": "You are signed out.",
    "reset_sent": "If the address has an account, a link to reset the password is on its way.",
    "password_reset": "Your password was changed. Sign in with the new one.",
    "registered": "Check your inbox: we sent a link to verify your email address.",
    "company_created": "Your company is ready, with a chart of accounts, tax rates, invoice numbering and "
                       "payment terms to start from. The checklist below shows what to do next.",
    "two_factor_on": "Two-factor authentication is on.",
    "client_created": "Client added.", "client_saved": "Client saved.", "client_deleted": "Client deleted.",
    "client_restored": "Client restored.",
    "project_created": "Project added.", "project_saved": "Project saved.", "project_deleted": "Project deleted.",
    "time_logged": "Time logged.", "time_saved": "Time entry saved.", "time_deleted": "Time entry deleted.",
    "expense_recorded": "Expense recorded and posted to the ledger.", "expense_deleted": "Expense deleted.",
    "invoice_created": "Draft invoice saved. Check it, then send it.", "invoice_saved": "Draft saved.",
    "invoice_from_work": "Draft invoice created from the unbilled work, which is now marked billed.",
    "invoice_sent": "Invoice sent: it is numbered, posted to the ledger and mailed to the client.",
    "invoice_sent_no_mail": "Invoice sent: it is numbered and posted. The client has no email address, so "
                            "nothing was mailed.",
    "invoice_deleted": "Draft deleted; its work can be billed again.",
    "credit_note_issued": "Credit note issued.",
    "payment_recorded": "Payment recorded.", "credit_applied": "Credit applied.", "refund_recorded": "Refund "
                                                                                                     "recorded.",
    "entry_created": "Journal entry saved as a draft.", "entry_posted": "Journal entry posted.",
    "entry_reversed": "Reversal entry posted.", "entry_deleted": "Draft entry deleted.",
    "account_created": "Account added.", "period_closed": "Period closed.", "period_reopened": "Period reopened.",
    "member_invited": "Invitation sent: they become a member when they accept it.",
    "invitation_revoked": "Invitation revoked; its link no longer works.",
    "joined": "Welcome: you are now a member of this company.",
    "invitation_declined": "Invitation declined.", "role_changed": "Role changed; the member signs in again.",
    "member_removed": "Member removed.", "token_revoked": "Token revoked.",
    "settings_saved": "Settings saved.", "tax_rate_added": "Tax rate added.", "tax_default": "Default tax rate "
                                                                                             "changed.",
}


@dataclass(frozen=True)
class Fmt:
    """Formatting in the reader's locale, for templates."""

    locale: Locale

    def money(self, minor, currency: str) -> str:
        return l10n.money(minor, currency, self.locale)

    def amount(self, minor, currency: str) -> str:
        return l10n.amount(minor, currency, self.locale)

    def example(self, currency: str) -> str:
        return l10n.example(currency, self.locale)

    def money_help(self, currency: str) -> str:
        places = exponent(currency)
        return (f"Type the amount as you write it, for example {self.example(currency)}; {currency} has "
                f"{places} decimal{'s' if places != 1 else ''}, and more are refused rather than rounded.")

    def number(self, value) -> str:
        return l10n.decimal_text(Decimal(value), self.locale) if value is not None else ""

    def day(self, value: date) -> str:
        """A day in a week's grid: "Mon 23"."""
        return format_date(value, "EEE d", locale=self.locale)

    def date(self, value: date | None) -> str:
        return format_date(value, "medium", locale=self.locale) if value else ""

    def datetime(self, value: datetime | None) -> str:
        return format_datetime(value, "medium", locale=self.locale) if value else ""


def fmt(request: Request) -> Fmt:
    return Fmt(l10n.user_locale(request))


def csrf_of(db: Session, session_id: int | None) -> str:
    row = db.get(UserSession, session_id) if session_id else None
    return row.csrf_token if row is not None else ""


def companies_of(db: Session, user_id: int) -> list[tuple[Company, str]]:
    rows = db.execute(select(Company, Membership.role).join(Membership, Membership.company_id == Company.id)
                      .where(Membership.user_id == user_id).order_by(Company.name))
    return [(c, r) for c, r in rows.all()]


def render(request: Request, template: str, *, ctx: Ctx | None = None, status: int = 200, csrf: str = "",
           **values) -> HTMLResponse:
    notice = NOTICES.get(request.query_params.get("done", "")) if status < 400 else None
    base = {"fmt": fmt(request), "notice": notice, "csrf": csrf,
            "dashboards_url": None}
    if ctx is not None:
        role = ctx.principal.role
        home = f"/app/c/{ctx.company.id}"
        base.update(company=ctx.company, role=role, home=home, user=ctx.user,
                    csrf=csrf_of(ctx.db, ctx.principal.session_id),
                    nav=[(label, home + path) for label, path, perm in NAV if allowed(role, perm)],
                    can=lambda permission: allowed(role, permission),
                    my_companies=companies_of(ctx.db, ctx.principal.user_id))
        if allowed(role, "dashboards:read"):
            settings = request.app.state.settings
            base["dashboards_url"] = settings.dashboards_public_url or \
                f"http://{settings.host}:{settings.dashboards_port}"
    return templates.TemplateResponse(request, template, {**base, **values}, status_code=status)


def go(url: str, done: str | None = None, **params) -> RedirectResponse:
    """Post/redirect/get, with the success message key."""
    query = {k: v for k, v in {"done": done, **params}.items() if v is not None}
    return RedirectResponse(url + ("?" + urlencode(query) if query else ""), status_code=303)
