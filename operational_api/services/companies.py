"""Companies, users and memberships."""

from __future__ import annotations

from argon2 import PasswordHasher
from sqlalchemy.orm import Session

from ez360.money import exponent
from operational_api.db.models import Company, Membership, User, utcnow
from operational_api.services.errors import ValidationFailed
from operational_api.services.ledger import install_default_chart

ROLES = ("owner", "admin", "finance", "staff", "viewer")
PLANS = ("free", "pro", "business")
_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def create_company(
    session: Session, *, slug: str, name: str, base_currency: str, invoice_prefix: str,
    plan: str = "pro", payment_terms_days: int = 30, fiscal_year_start_month: int = 1,
    stripe_account_id: str | None = None,
) -> Company:
    exponent(base_currency)  # refuses unknown currencies
    if plan not in PLANS:
        raise ValidationFailed(f"unknown plan {plan!r}; choose one of {', '.join(PLANS)}")
    company = Company(
        slug=slug, name=name, base_currency=base_currency.upper(), invoice_prefix=invoice_prefix,
        plan=plan, payment_terms_days=payment_terms_days, fiscal_year_start_month=fiscal_year_start_month,
        stripe_account_id=stripe_account_id,
    )
    session.add(company)
    session.flush()
    install_default_chart(session, company)
    return company


def create_user(session: Session, *, email: str, full_name: str, password_hash: str, verified: bool = True) -> User:
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
    membership = Membership(company_id=company.id, user_id=user.id, role=role)
    session.add(membership)
    session.flush()
    return membership
