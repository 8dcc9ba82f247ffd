"""Error monitoring with Sentry (sentry-sdk) for every long-running part: the API, the pipelines, the dashboards.

`init_sentry(settings, component)` does nothing without `EZ360_SENTRY_DSN`. With it, events carry the environment
(`EZ360_ENVIRONMENT`), the release (`EZ360_RELEASE`) and a `component` tag, and every event passes `scrub_event`
before it leaves the process: a finance app's errors must not ship its secrets to a third party. The scrubber
walks the whole event (request headers, cookies, bodies, query strings, URLs, extra data, breadcrumbs, log
messages) and replaces

- the value of any key that names a secret: passwords, TOTP codes, secrets and recovery codes, cookies and
  sessions, CSRF tokens, API keys, tokens, authorization headers, signatures, DSNs;
- secrets recognisable by their shape wherever they appear in text: EZ360 API tokens (`ez360_...`), bearer
  credentials, Stripe keys and webhook secrets, `otpauth://` URIs, and `token=`/`code=`/`password=`... pairs
  in query strings and URLs.

Local variables of stack frames are not collected at all (`include_local_variables=False`): they hold
plaintexts under any name, which no key list can foresee. Personal data stays at the SDK's default (off).
"""

from __future__ import annotations

import re
from typing import Any

from ez360.core.settings import Settings

FILTERED = "[Filtered]"
# a key naming a secret, compared in lower case with '-' read as '_'
SECRET_KEY_PARTS = ("password", "passwd", "secret", "token", "totp", "otp", "recovery", "cookie", "session",
                    "csrf", "authorization", "api_key", "apikey", "signature", "dsn", "credential", "private_key")
SECRET_KEYS = frozenset({"code", "codes", "auth", "key", "x_api_key"})
SECRET_SHAPES = [
    re.compile(r"ez360_[A-Za-z0-9_\-]{8,}"),  # EZ360 API tokens
    re.compile(r"(?i)\bbearer\s+[^\s,;\"']+"),
    re.compile(r"\b(?:sk|rk|pk)_(?:live|test)_[A-Za-z0-9_]+"),  # Stripe keys
    re.compile(r"\bwhsec_[A-Za-z0-9_]+"),  # Stripe webhook secrets
    re.compile(r"otpauth://\S+"),
    re.compile(r"(?i)\b((?:[a-z_]*(?:password|passwd|secret|token|session|csrf|api_?key)|(?:recovery_|totp_)?code"
               r"|otp)=)[^&\s\"']*"),  # key=value pairs of query strings and URLs
]


def _secret_key(key: Any) -> bool:
    name = str(key).lower().replace("-", "_")
    return name in SECRET_KEYS or any(part in name for part in SECRET_KEY_PARTS)


def scrub_text(text: str) -> str:
    for shape in SECRET_SHAPES:
        text = shape.sub(lambda m: (m.group(1) if m.groups() else "") + FILTERED, text)
    return text


def scrub(value: Any) -> Any:
    """A copy of `value` with secrets replaced, recursively (dicts, lists, header pairs, strings)."""
    if isinstance(value, dict):
        return {k: FILTERED if _secret_key(k) and v not in (None, "", [], {}) else scrub(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        if len(value) == 2 and isinstance(value[0], str) and _secret_key(value[0]):  # a [name, value] header pair
            return [value[0], FILTERED]
        return [scrub(v) for v in value]
    if isinstance(value, str):
        return scrub_text(value)
    return value


def scrub_event(event: dict, _hint: dict | None = None) -> dict:
    """Sentry's before_send (and before_breadcrumb): the event with every secret replaced."""
    return scrub(event)


def init_sentry(settings: Settings, component: str) -> bool:
    """Start Sentry for this process if a DSN is configured; returns whether it did."""
    if not settings.sentry_dsn:
        return False
    import sentry_sdk

    client = sentry_sdk.get_client()
    if client.is_active() and client.dsn == settings.sentry_dsn:
        return True  # already running (Streamlit re-runs its script on every interaction)
    sentry_sdk.init(
        dsn=settings.sentry_dsn,
        environment=settings.environment,
        release=settings.release or None,
        before_send=scrub_event,
        before_send_transaction=scrub_event,
        before_breadcrumb=scrub_event,
        include_local_variables=False,
        traces_sample_rate=0.0,
    )
    sentry_sdk.get_global_scope().set_tag("component", component)  # every thread and request of the process
    return True
