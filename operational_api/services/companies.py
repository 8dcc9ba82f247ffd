"""Companies (tenants and their book settings), users and memberships with roles."""

from __future__ import annotations

import re

from argon2 import PasswordHasher
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from operational_api.db.models import Company, Membership, User, utcnow
from operational_api.services import plans, validation
from operational_api.services.errors import Conflict, ValidationFailed
from operational_api.services.ledger import install_default_chart

ROLES = ("owner", "admin", "finance", "staff", "viewer")
PLANS = tuple(plans.PLANS)
_hasher = PasswordHasher()
SLUG = re.compile(r"^[a-z0-9][a-z0-9-]{1,39}$")


def hash_password(password: str) -> str:
    return _hasher.hash(password)


# An invoice number format is literal text and these placeholders only (a whitelist, not str.format's whole
# mini-language, whose specs such as {seq:.0e} or {seq:,} make numbers collide or fail at send time).
NUMBER_PLACEHOLDER = re.compile(r"\{(prefix|year|seq)(?::0([1-9]|1[0-2])d)?\}")
NUMBER_LITERAL = re.compile(r"[A-Za-z0-9 ._/#-]*")
NUMBER_FORMAT_HELP = ("invoice_number_format is literal text (letters, digits, space and . _ / # -) with the "
                      "placeholders {prefix}, {year}, {seq} or {seq:0Nd} (N from 1 to 12, zero-padded), and uses "
                      "{seq} exactly once")


def check_number_format(fmt: str, prefix: str = "INV") -> str:
    """Refuse any format outside the whitelist; the numbers it makes are unique because {seq} is."""
    validation.text(fmt, "invoice_number_format", max_length=60, required=True)
    pieces = NUMBER_PLACEHOLDER.split(fmt)  # literal, name, width, literal, name, width, ..., literal
    literals, names = pieces[0::3], pieces[1::3]
    specs = pieces[2::3]
    if not all(NUMBER_LITERAL.fullmatch(text) for text in literals) or names.count("seq") != 1 \
            or any(spec and name != "seq" for name, spec in zip(names, specs, strict=True)):
        raise ValidationFailed(NUMBER_FORMAT_HELP)
    if len(fmt.format(prefix=prefix, year=2026, seq=99999)) > 40:
        raise ValidationFailed("invoice_number_format makes numbers longer than 40 characters")
    return fmt


def _check_settings(*, name=None, invoice_prefix=None, plan=None, payment_terms_days=None,
                    fiscal_year_start_month=None) -> None:
    if name is not None:
        validation.text(name, "name", max_length=200, required=True)
    if invoice_prefix is not None:
        validation.text(invoice_prefix, "invoice_prefix", max_length=10, required=True)
    if plan is not None and plan not in PLANS:
        raise ValidationFailed(f"unknown plan {plan!r}; choose one of {', '.join(PLANS)}")
    if payment_terms_days is not None and not 0 <= payment_terms_days <= 365:
        raise ValidationFailed("payment_terms_days must be between 0 and 365")
    if fiscal_year_start_month is not None and not 1 <= fiscal_year_start_month <= 12:
        raise ValidationFailed("fiscal_year_start_month must be a month number, 1 to 12")


def create_company(
    session: Session, *, slug: str, name: str, base_currency: str, invoice_prefix: str,
    plan: str = "pro", payment_terms_days: int = 30, fiscal_year_start_month: int = 1,
    stripe_account_id: str | None = None, invoice_number_format: str = "{prefix}-{year}-{seq:05d}",
) -> Company:
    base_currency = validation.currency_code(base_currency, "base_currency")
    _check_settings(name=name, invoice_prefix=invoice_prefix, plan=plan, payment_terms_days=payment_terms_days,
                    fiscal_year_start_month=fiscal_year_start_month)
    if not SLUG.match(slug or ""):
        raise ValidationFailed("slug must be 2-40 lowercase letters, digits or dashes")
    check_number_format(invoice_number_format, invoice_prefix)
    if session.scalar(select(Company.id).where(Company.slug == slug)):
        raise Conflict(f"a company with slug {slug!r} already exists")
    company = Company(
        slug=slug, name=name, base_currency=base_currency, invoice_prefix=invoice_prefix,
        plan=plan, payment_terms_days=payment_terms_days, fiscal_year_start_month=fiscal_year_start_month,
        stripe_account_id=stripe_account_id, invoice_number_format=invoice_number_format,
    )
    session.add(company)
    session.flush()
    install_default_chart(session, company)
    return company


def update_company(session: Session, company: Company, **changes) -> Company:
    """Change book settings. The base currency is fixed once chosen (the books are kept in it); the plan is not a
    setting (`plans.change_plan`: billing or a platform admin)."""
    allowed = {"name", "invoice_prefix", "payment_terms_days", "fiscal_year_start_month", "invoice_number_format"}
    unknown = set(changes) - allowed
    if unknown:
        raise ValidationFailed(f"cannot change {', '.join(sorted(unknown))}")
    _check_settings(**{k: v for k, v in changes.items() if k != "invoice_number_format"})
    if "invoice_number_format" in changes:
        check_number_format(changes["invoice_number_format"], changes.get("invoice_prefix", company.invoice_prefix))
    for key, value in changes.items():
        setattr(company, key, value)
    session.flush()
    return company


def create_user(session: Session, *, email: str, full_name: str, password_hash: str, verified: bool = True) -> User:
    validation.text(email, "email", max_length=254, required=True)
    validation.text(full_name, "full_name", max_length=200)
    if session.scalar(select(User.id).where(User.email == email.lower())):
        raise Conflict(f"a user with email {email.lower()} already exists")
    user = User(
        email=email.lower(), full_name=full_name, password_hash=password_hash,
        email_verified_at=utcnow() if verified else None,
    )
    session.add(user)
    session.flush()
    return user


def add_member(session: Session, company: Company, user: User, role: str) -> Membership:
    if role not in ROLES:
        raise ValidationFailed(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    if session.scalar(select(Membership.id).where(Membership.company_id == company.id,
                                                  Membership.user_id == user.id)):
        raise Conflict(f"{user.email} is already a member")
    plans.check_room(session, company, "users")
    membership = Membership(company_id=company.id, user_id=user.id, role=role)
    session.add(membership)
    session.flush()
    return membership


def _owners(session: Session, company: Company) -> int:
    return session.scalar(select(func.count()).select_from(Membership)
                          .where(Membership.company_id == company.id, Membership.role == "owner"))


def _may_manage(acting_role: str, target_role: str) -> None:
    if "owner" in (target_role,) and acting_role != "owner":
        raise ValidationFailed("only an owner may grant, change or remove the owner role")


def change_role(session: Session, company: Company, membership: Membership, role: str, acting_role: str) -> Membership:
    if role not in ROLES:
        raise ValidationFailed(f"unknown role {role!r}; choose one of {', '.join(ROLES)}")
    _may_manage(acting_role, membership.role)
    _may_manage(acting_role, role)
    if membership.role == "owner" and role != "owner" and _owners(session, company) == 1:
        raise Conflict("a company keeps at least one owner")
    membership.role = role
    session.flush()
    return membership


def remove_member(session: Session, company: Company, membership: Membership, acting_role: str) -> None:
    _may_manage(acting_role, membership.role)
    if membership.role == "owner" and _owners(session, company) == 1:
        raise Conflict("a company keeps at least one owner")
    session.delete(membership)
    session.flush()
