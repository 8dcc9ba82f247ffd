"""One sign-on: the dashboards keep no users. The browser sends the operational web app's session cookie (same
host), and every script run validates it against the ops DB's server-side sessions with the web app's own rules
(`operational_api.security.sessions.resolve`), so 2FA, sign-out, idle/absolute timeouts and deactivation hold
here at once. A company is open to the viewer only as the API would open it: a membership, a verified email,
and the second factor when the user enrolled or the company requires it for the role.

Platform admins (`EZ360_PLATFORM_ADMIN_EMAILS`) see every company, read-only, with a company switcher.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy.orm import Session, sessionmaker

from ez360.core.settings import Settings
from operational_api.db.models import Company, Membership, User
from operational_api.permissions import allowed
from operational_api.security import sessions, totp

PLATFORM_ROLE = "platform_admin"


@dataclass(frozen=True)
class CompanyAccess:
    company_id: int
    name: str
    slug: str
    base_currency: str
    role: str  # the membership role, or PLATFORM_ROLE

    def may(self, permission: str) -> bool:
        """May see what `permission` covers (platform admins see every page of every company)."""
        return self.role == PLATFORM_ROLE or allowed(self.role, permission)

    @property
    def may_resolve(self) -> bool:
        """Writes resolutions: a member with `reconcile` (platform admins read; the API refuses non-members)."""
        return self.role != PLATFORM_ROLE and allowed(self.role, "reconcile")


@dataclass(frozen=True)
class Viewer:
    user_id: int
    email: str
    name: str
    platform_admin: bool
    companies: tuple[CompanyAccess, ...]
    # companies the user belongs to but may not open here, with the reason (shown, never silently dropped)
    refused: tuple[tuple[str, str], ...] = field(default=())
    session_id: int | None = None
    csrf_token: str = field(default="", repr=False)  # echoed to the ops API when the viewer writes through it

    def company(self, company_id: int | None) -> CompanyAccess | None:
        for access in self.companies:
            if access.company_id == company_id:
                return access
        return None


class OpsSessions:
    """Reads the ops DB for the dashboards: one engine per process (cached by the caller)."""

    def __init__(self, settings: Settings):
        self.settings = settings
        self.engine = sa.create_engine(settings.database_url, pool_pre_ping=True)
        self.sessionmaker = sessionmaker(self.engine, expire_on_commit=False)

    def viewer(self, token: str | None) -> Viewer | None:
        """The signed-in viewer for this cookie value, or None (no cookie, unknown, revoked, timed out,
        half-way through the second factor, or deactivated: all look the same)."""
        if not token:
            return None
        with self.sessionmaker() as db:
            row = sessions.resolve(db, token, sessions.Timeouts.of(self.settings))
            if row is None:
                return None
            if sessions.touch(db, row):  # reading dashboards is activity: the idle deadline moves, as in the app
                db.commit()
            user = db.get(User, row.user_id)
            return _viewer(db, self.settings, user, row)


def _viewer(db: Session, settings: Settings, user: User, row) -> Viewer:
    platform_admin = user.email.lower() in settings.platform_admin_list and user.email_verified_at is not None
    enrolled = totp.enabled(db, user.id)
    accesses: list[CompanyAccess] = []
    refused: list[tuple[str, str]] = []
    if platform_admin and (row.mfa_verified or not enrolled):
        for company in db.scalars(sa.select(Company).order_by(Company.name, Company.id)):
            accesses.append(_access(company, PLATFORM_ROLE))
        return Viewer(user.id, user.email, user.full_name, True, tuple(accesses), (), row.id, row.csrf_token)
    memberships = db.execute(sa.select(Company, Membership.role).join(Membership, Membership.company_id == Company.id)
                             .where(Membership.user_id == user.id).order_by(Company.name, Company.id)).all()
    for company, role in memberships:
        if user.email_verified_at is None:
            refused.append((company.name, "verify your email address first (the web app sends the link again)"))
        elif (enrolled or role in totp.required_roles(db, company.id)) and not row.mfa_verified:
            refused.append((company.name, f"two-factor authentication is required for your role ({role}): "
                                          "enrol or sign in again with your code in the web app"))
        else:
            accesses.append(_access(company, role))
    return Viewer(user.id, user.email, user.full_name, False, tuple(accesses), tuple(refused), row.id,
                  row.csrf_token)


def _access(company: Company, role: str) -> CompanyAccess:
    return CompanyAccess(company.id, company.name, company.slug, company.base_currency, role)


def sign_in_url(settings: Settings, back_to: str | None) -> str:
    """The web app's sign-in page, which sends the visitor back to `back_to` (a dashboards address)."""
    base = settings.public_base_url.rstrip("/")
    target = back_to or settings.dashboards_base_url + "/"
    return f"{base}/app/login?next={quote(target, safe='')}"
