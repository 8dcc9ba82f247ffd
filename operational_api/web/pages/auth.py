"""Sign-up, email verification, sign-in with the second factor, password reset and sign-out, as pages.

Each form calls the API's own route function for the flow (`api/routers/auth.py`, `account.py`) with the same
request, so throttling, session rotation, CSRF, audit records and mail are exactly the API's; the page only
turns the outcome into a redirect or a form error, and carries the session cookie the function set.
"""

from __future__ import annotations

from urllib.parse import quote, urlsplit

from fastapi import APIRouter, BackgroundTasks, Depends, HTTPException, Request, Response
from pydantic import ValidationError
from sqlalchemy.orm import Session

from operational_api.api.context import current_session, get_db, pending_session
from operational_api.api.routers import auth as api_auth
from operational_api.app import SECURITY_HEADERS
from operational_api.db.security_models import UserSession
from operational_api.security import sessions
from operational_api.services.errors import DomainError
from operational_api.web.forms import FormState, form_data
from operational_api.web.rendering import go, render

router = APIRouter(include_in_schema=False)


def carry_cookies(source: Response, target: Response) -> Response:
    """Move the Set-Cookie headers an API function put on `source` onto the page's answer."""
    for name, value in source.raw_headers:
        if name == b"set-cookie":
            target.raw_headers.append((name, value))
    return target


def safe_next(value: str | None, default: str = "/app", dashboards_url: str | None = None) -> str:
    """Only a path on this site (no scheme, no host, no //), or an address under the dashboards' own base URL
    (the one sign-on sends visitors back there): an open redirect would help phishing."""
    if value and value.startswith("/") and not value.startswith("//") and "\\" not in value:
        return value
    if value and dashboards_url and "\\" not in value and (value == dashboards_url
                                                          or value.startswith(dashboards_url.rstrip("/") + "/")
                                                          or value.startswith(dashboards_url.rstrip("/") + "?")):
        return value
    return default


def _next(request: Request, value: str | None) -> str:
    return safe_next(value, dashboards_url=request.app.state.settings.dashboards_base_url)


def _sign_in_form(request: Request, template: str, **values) -> Response:
    return _form_may_return_to_dashboards(request, render(request, template, **values))


def _form_may_return_to_dashboards(request: Request, response: Response) -> Response:
    """The sign-in forms answer with a redirect to `next`, which may be the dashboards on another origin (another
    port locally): CSP `form-action` governs that redirect too, so these pages allow the dashboards' origin."""
    parts = urlsplit(request.app.state.settings.dashboards_base_url)
    if parts.scheme in ("http", "https") and parts.netloc:
        csp = SECURITY_HEADERS["Content-Security-Policy"]
        response.headers["Content-Security-Policy"] = csp.replace(
            "form-action 'self'", f"form-action 'self' {parts.scheme}://{parts.netloc}")
    return response


def _signed_in(request: Request, db: Session) -> UserSession | None:
    settings = request.app.state.settings
    return sessions.resolve(db, request.cookies.get(settings.session_cookie_name), sessions.Timeouts.of(settings))


def first_error(exc: ValidationError) -> tuple[str, str]:
    err = exc.errors()[0]
    return str(err["loc"][-1]) if err["loc"] else "", err["msg"]


# -- sign in --------------------------------------------------------------------------------------------

@router.get("/app/login")
def login_page(request: Request, next: str | None = None, db: Session = Depends(get_db)):
    if _signed_in(request, db) is not None:
        return go(_next(request, next))
    return _sign_in_form(request, "auth/login.html", form=FormState(values={"next": _next(request, next)}))


@router.post("/app/login")
def login(request: Request, form: dict = Depends(form_data)):
    state = FormState(values={"email": form.get("email", ""), "next": _next(request, form.get("next"))})
    carrier = Response()
    try:
        body = api_auth.LoginIn(email=form.get("email", ""), password=form.get("password", ""))
        result = api_auth.login(body, request, carrier)
    except ValidationError:
        state.error = api_auth.accounts.GENERIC_FAILURE
        return _sign_in_form(request, "auth/login.html", form=state, status=422)
    except HTTPException as exc:
        state.error = str(exc.detail)
        return _sign_in_form(request, "auth/login.html", form=state, status=exc.status_code)
    target = "/app/login/code" if result["status"] == "mfa_required" else state.values["next"]
    params = {"next": state.values["next"]} if result["status"] == "mfa_required" else {}
    return carry_cookies(carrier, go(target, **params))


@router.get("/app/login/code")
def second_factor_page(request: Request, next: str | None = None,
                       pending: UserSession = Depends(pending_session)):
    return _sign_in_form(request, "auth/second_factor.html", csrf=pending.csrf_token,
                  form=FormState(values={"next": _next(request, next)}))


@router.post("/app/login/code")
def second_factor(request: Request, form: dict = Depends(form_data), pending: UserSession = Depends(pending_session),
                  db: Session = Depends(get_db)):
    state = FormState(values={"next": _next(request, form.get("next"))})
    carrier = Response()
    code, recovery = form.get("code", "").strip() or None, form.get("recovery_code", "").strip() or None
    try:
        body = api_auth.SecondFactorIn(code=code, recovery_code=recovery)
        api_auth.second_factor(body, request, carrier, pending, db)
        db.commit()  # the new session must exist when the browser follows the redirect
    except (ValidationError, HTTPException) as exc:
        field = "recovery_code" if recovery and not code else "code"
        state.errors[field] = ("the code is incorrect or was already used" if isinstance(exc, ValidationError)
                               else str(exc.detail))
        return _sign_in_form(request, "auth/second_factor.html", csrf=pending.csrf_token, form=state, status=401)
    return carry_cookies(carrier, go(state.values["next"]))


@router.post("/app/logout")
def logout(request: Request, db: Session = Depends(get_db)):
    answer = api_auth.logout(request, db)
    db.commit()
    return carry_cookies(answer, go("/app/login", "signed_out"))


# -- registration and verification -----------------------------------------------------------------------

@router.get("/app/register")
def register_page(request: Request):
    return render(request, "auth/register.html", form=FormState())


@router.post("/app/register")
def register(request: Request, background: BackgroundTasks, form: dict = Depends(form_data),
             db: Session = Depends(get_db)):
    state = FormState(values={k: form.get(k, "") for k in ("full_name", "email")})
    try:
        body = api_auth.RegisterIn(email=form.get("email", ""), password=form.get("password", ""),
                                   full_name=form.get("full_name", ""))
        api_auth.register(body, request, background, db)
    except ValidationError as exc:
        name, message = first_error(exc)
        state.errors[name or "email"] = message
        return render(request, "auth/register.html", form=state, status=422)
    except DomainError as exc:
        db.rollback()
        state.fail(exc, ("email", "password", "full_name"))
        if exc.detail.startswith("password refused") or "password" in exc.detail.split(":")[0]:
            state.errors.setdefault("password", exc.detail)
            state.error = None
        return render(request, "auth/register.html", form=state, status=exc.status)
    except HTTPException as exc:
        state.error = str(exc.detail)
        return render(request, "auth/register.html", form=state, status=exc.status_code)
    return render(request, "auth/check_inbox.html", email=state.values["email"])


@router.get("/verify-email")
def verify_page(request: Request, token: str = ""):
    """The mailed link opens a page whose button confirms (a mail scanner fetching the link changes nothing)."""
    return render(request, "auth/verify.html", token=token)


@router.post("/verify-email")
def verify(request: Request, background: BackgroundTasks, form: dict = Depends(form_data),
           db: Session = Depends(get_db)):
    try:
        api_auth.verify_email(api_auth.EmailLinkIn(token=form.get("token", "")[:200]), request, background, db)
    except HTTPException as exc:
        return render(request, "auth/verify.html", token="", error=str(exc.detail), status=400)
    return go("/app/login", "verified")


# -- password reset --------------------------------------------------------------------------------------

@router.get("/app/forgot-password")
def forgot_page(request: Request):
    return render(request, "auth/forgot.html", form=FormState())


@router.post("/app/forgot-password")
def forgot(request: Request, background: BackgroundTasks, form: dict = Depends(form_data),
           db: Session = Depends(get_db)):
    state = FormState(values={"email": form.get("email", "")})
    try:
        api_auth.request_reset(api_auth.ResetRequestIn(email=form.get("email", "")[:254]), request, background, db)
    except HTTPException as exc:
        state.error = str(exc.detail)
        return render(request, "auth/forgot.html", form=state, status=exc.status_code)
    return go("/app/login", "reset_sent")


@router.get("/reset-password")
def reset_page(request: Request, token: str = ""):
    return render(request, "auth/reset.html", form=FormState(values={"token": token}))


@router.post("/reset-password")
def reset(request: Request, background: BackgroundTasks, form: dict = Depends(form_data),
          db: Session = Depends(get_db)):
    state = FormState(values={"token": form.get("token", "")})
    try:
        body = api_auth.ResetConfirmIn(token=form.get("token", "")[:200], new_password=form.get("new_password", ""),
                                       code=form.get("code", "").strip() or None,
                                       recovery_code=form.get("recovery_code", "").strip() or None)
        api_auth.confirm_reset(body, request, background, db)
    except ValidationError as exc:
        name, message = first_error(exc)
        state.errors[name or "new_password"] = message
        return render(request, "auth/reset.html", form=state, status=422)
    except DomainError as exc:
        db.rollback()
        state.errors["new_password"] = exc.detail
        return render(request, "auth/reset.html", form=state, status=exc.status)
    except HTTPException as exc:
        if exc.status_code == 401:
            state.errors["code"] = str(exc.detail)
        else:
            state.error = str(exc.detail)
        return render(request, "auth/reset.html", form=state, status=exc.status_code)
    return go("/app/login", "password_reset")


def login_redirect(request: Request) -> str:
    here = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    return f"/app/login?next={quote(here, safe='')}"


__all__ = ["router", "carry_cookies", "current_session", "login_redirect", "safe_next"]
