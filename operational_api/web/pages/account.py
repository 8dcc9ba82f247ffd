"""The signed-in person's pages before a company: home (which company), creating a company with sensible
defaults, and two-factor enrolment (QR code rendered on the server by segno, through the API's functions)."""

from __future__ import annotations

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from operational_api.api.context import Identity, current_session, get_db
from operational_api.api.routers import account as api_account
from operational_api.api.routers import company_settings as api_company
from operational_api.db.models import Company, User
from operational_api.db.security_models import UserSecurity, UserSession
from operational_api.security import totp
from operational_api.services import billing, invitations
from operational_api.services.errors import DomainError
from operational_api.web.forms import FormState, form_data
from operational_api.web.l10n import user_locale
from operational_api.web.pages.auth import carry_cookies, first_error, safe_next
from operational_api.web.rendering import companies_of, go, render

router = APIRouter(include_in_schema=False)
CURRENCIES = ("USD", "EUR", "GBP", "CAD", "AUD", "CHF", "JPY", "SEK", "NOK", "DKK", "NZD", "SGD", "INR", "KWD")


def _invitations(db: Session, user: User) -> list:
    return [api_account._for_me(db, i) for i in db.scalars(invitations.open_for_user(user).limit(50))]


@router.get("/app")
def home(request: Request, row: UserSession = Depends(current_session), db: Session = Depends(get_db)):
    mine, user = companies_of(db, row.user_id), db.get(User, row.user_id)
    waiting = _invitations(db, user)
    if not mine and not waiting:
        return go("/app/companies/new", request.query_params.get("done"))
    if len(mine) == 1 and not waiting:
        return go(f"/app/c/{mine[0][0].id}", request.query_params.get("done"))
    return render(request, "account/companies.html", csrf=row.csrf_token, companies=mine, user=user,
                  invitations=waiting)


# -- invitations (the invitee's side) ----------------------------------------------------------------------

@router.get("/invitations/accept")
def invitation_page(request: Request, token: str = "", row: UserSession = Depends(current_session),
                    db: Session = Depends(get_db)):
    """The emailed link: which company invites you, with which role; accept or decline (signed in as the
    invited address; anyone else gets a 404 and learns nothing)."""
    user = db.get(User, row.user_id)
    invitation = api_account._for_me(db, invitations.find_for_user(db, user, token=token[:200]))
    return render(request, "account/invitation.html", csrf=row.csrf_token, user=user, invitation=invitation,
                  token=token[:200])


@router.post("/invitations/accept")
def accept_by_link(request: Request, form: dict = Depends(form_data), row: UserSession = Depends(current_session),
                   db: Session = Depends(get_db)):
    joined = api_account.accept_invitation_link(api_account.InvitationTokenIn(token=form.get("token", "")[:200] or
                                                                              "-"), request, row, db)
    db.commit()
    return go(f"/app/c/{joined.company_id}", "joined")


@router.post("/app/invitations/{invitation_id}/accept")
def accept(request: Request, invitation_id: int, row: UserSession = Depends(current_session),
           db: Session = Depends(get_db)):
    joined = api_account.accept_invitation(invitation_id, request, row, db)
    db.commit()
    return go(f"/app/c/{joined.company_id}", "joined")


@router.post("/app/invitations/{invitation_id}/decline")
def decline(request: Request, invitation_id: int, row: UserSession = Depends(current_session),
            db: Session = Depends(get_db)):
    api_account.decline_invitation(invitation_id, request, row, db)
    db.commit()
    return go("/app", "invitation_declined")


def _currency_for(request: Request) -> str:
    territory = user_locale(request).territory or "US"
    from babel.numbers import get_territory_currencies
    found = get_territory_currencies(territory)
    return found[0] if found and found[0] in CURRENCIES else "USD"


@router.get("/app/companies/new")
def new_company_page(request: Request, row: UserSession = Depends(current_session), db: Session = Depends(get_db)):
    values = {"base_currency": _currency_for(request), "payment_terms_days": "30", "fiscal_year_start_month": "1"}
    return render(request, "account/new_company.html", csrf=row.csrf_token, form=FormState(values=values),
                  currencies=CURRENCIES, has_companies=bool(companies_of(db, row.user_id)))


def _slug(name: str) -> str:
    import re
    slug = re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")[:40].strip("-")
    return slug if len(slug) >= 2 else f"company-{slug}".strip("-")


def _prefix(name: str) -> str:
    words = [w for w in name.upper().replace("-", " ").split() if w[0].isalnum()]
    letters = "".join(w[0] for w in words)[:3] if len(words) > 1 else (words[0][:3] if words else "INV")
    return "".join(ch for ch in letters if ch.isalnum()) or "INV"


@router.post("/app/companies/new")
def create_company(request: Request, form: dict = Depends(form_data), row: UserSession = Depends(current_session),
                   db: Session = Depends(get_db)):
    fields = ("name", "slug", "base_currency", "invoice_prefix", "payment_terms_days", "fiscal_year_start_month")
    state = FormState(values={k: form.get(k, "").strip() for k in fields})
    name = state.values["name"]
    data = {"name": name, "slug": state.values["slug"] or _slug(name),
            "base_currency": state.values["base_currency"].upper(),
            "invoice_prefix": state.values["invoice_prefix"] or _prefix(name),
            "payment_terms_days": state.values["payment_terms_days"] or "30",
            "fiscal_year_start_month": state.values["fiscal_year_start_month"] or "1"}
    identity = Identity(user_id=row.user_id, via="session", session_id=row.id, mfa=row.mfa_verified)
    try:
        created = api_company.create_company(api_company.CompanyIn(**data), request, identity, db)
        billing.install_default_tax_rates(db, db.get(Company, created.id))  # the default tax rates
        db.commit()
    except ValidationError as exc:
        name_, message = first_error(exc)
        state.errors[name_ if name_ in fields else "name"] = message
    except DomainError as exc:
        db.rollback()
        state.fail(exc, fields)
    if not state.ok:
        return render(request, "account/new_company.html", csrf=row.csrf_token, form=state, currencies=CURRENCIES,
                      status=422, has_companies=bool(companies_of(db, row.user_id)))
    return go(f"/app/c/{created.id}", "company_created")


# -- two-factor enrolment ----------------------------------------------------------------------------------

def _pending_qr(db: Session, user: User) -> tuple[str, str] | None:
    security = db.get(UserSecurity, user.id)
    if security is None or security.totp_pending_secret is None:
        return None
    secret = security.totp_pending_secret
    return secret, totp.qr_svg(totp.provisioning_uri(secret, user.email))


@router.get("/app/account/two-factor")
def two_factor_page(request: Request, next: str | None = None, row: UserSession = Depends(current_session),
                    db: Session = Depends(get_db)):
    user = db.get(User, row.user_id)
    return render(request, "account/two_factor.html", csrf=row.csrf_token, user=user, enabled=totp.enabled(db, user.id),
                  form=FormState(values={"next": safe_next(next)}), step="start")


@router.post("/app/account/two-factor/start")
def two_factor_start(request: Request, form: dict = Depends(form_data), row: UserSession = Depends(current_session),
                     db: Session = Depends(get_db)):
    user = db.get(User, row.user_id)
    state = FormState(values={"next": safe_next(form.get("next"))})
    try:
        body = api_account.Reauth(password=form.get("password", ""), code=form.get("code", "").strip() or None)
        started = api_account.setup_two_factor(body, request, row, db)
    except (ValidationError, HTTPException) as exc:
        state.errors["password"] = (str(exc.detail) if isinstance(exc, HTTPException)
                                    else "enter your password")
        return render(request, "account/two_factor.html", csrf=row.csrf_token, user=user, form=state, step="start",
                      enabled=totp.enabled(db, user.id), status=403)
    return render(request, "account/two_factor.html", csrf=row.csrf_token, user=user, form=state, step="confirm",
                  secret=started["secret"], qr_svg=started["qr_svg"], enabled=False)


@router.post("/app/account/two-factor/enable")
def two_factor_enable(request: Request, background: BackgroundTasks, form: dict = Depends(form_data),
                      row: UserSession = Depends(current_session), db: Session = Depends(get_db)):
    user = db.get(User, row.user_id)
    state = FormState(values={"next": safe_next(form.get("next"))})
    carrier = Response()
    try:
        result = api_account.enable_two_factor(api_account.CodeIn(code=form.get("code", "")[:10]), request, carrier,
                                               background, row, db)
    except (ValidationError, HTTPException) as exc:
        state.errors["code"] = (str(exc.detail) if isinstance(exc, HTTPException)
                                else "enter the 6-digit code from your app")
        pending = _pending_qr(db, user)
        if pending is None:
            return go("/app/account/two-factor")
        return render(request, "account/two_factor.html", csrf=row.csrf_token, user=user, form=state, step="confirm",
                      secret=pending[0], qr_svg=pending[1], enabled=False, status=400)
    page = render(request, "account/two_factor.html", csrf=result["csrf_token"], user=user, form=state, step="codes",
                  codes=result["recovery_codes"], enabled=True)
    return carry_cookies(carrier, page)
