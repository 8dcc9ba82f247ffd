"""CSRF protection for cookie-authenticated requests (ASVS 5.0 V3.5).

Two layers:
1. Every state-changing request (POST, PUT, PATCH, DELETE) that does not carry an `Authorization` header is
   refused when the browser says it comes from another site (`Sec-Fetch-Site: cross-site`, or an `Origin`
   that is neither this host nor `EZ360_PUBLIC_BASE_URL`). This also covers login and registration forms.
2. A state change authenticated by the session cookie must echo the session's synchronizer token in the
   `X-CSRF-Token` header (the token is returned by login and by `GET /api/v1/auth/session`). API clients
   using bearer tokens are exempt: a browser never adds that header across sites on its own.
"""

from __future__ import annotations

import hmac
from urllib.parse import urlsplit

from fastapi import HTTPException, Request

from operational_api.db.security_models import UserSession

UNSAFE = frozenset({"POST", "PUT", "PATCH", "DELETE"})
HEADER = "x-csrf-token"


def cross_site_reason(request: Request, public_base_url: str) -> str | None:
    """Why this request looks forged by another site, or None."""
    if request.method not in UNSAFE or request.headers.get("authorization"):
        return None
    if request.headers.get("sec-fetch-site", "").lower() == "cross-site":
        return "cross-site request refused"
    origin = request.headers.get("origin")
    if origin is None:
        return None
    parts = urlsplit(origin)
    public = urlsplit(public_base_url)
    if origin == "null" or (parts.netloc != request.headers.get("host", "")
                            and (parts.scheme, parts.netloc) != (public.scheme, public.netloc)):
        return f"request from origin {origin} refused"
    return None


def check_token(request: Request, session: UserSession) -> None:
    if request.method not in UNSAFE:
        return
    sent = request.headers.get(HEADER, "")
    if not sent or not hmac.compare_digest(sent.encode(), session.csrf_token.encode()):
        raise HTTPException(403, "CSRF token missing or wrong: send the session's token in X-CSRF-Token")
