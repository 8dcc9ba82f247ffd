"""`ez360 doctor`: checks configuration and connectivity and says which setting to fix, and how."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import httpx
from sqlalchemy import create_engine, text

from ez360.core.settings import Settings
from ez360.core.warehouse import WarehouseUrlError, parse_warehouse_url


@dataclass(frozen=True)
class Finding:
    check: str
    setting: str
    ok: bool
    detail: str
    fix: str = ""
    blocking: bool = True  # a non-blocking finding warns but does not fail the doctor


def _writable_dir(path: Path) -> str | None:
    """None if `path` is (or can become) a writable directory, else why not."""
    probe = path
    while not probe.exists():
        probe = probe.parent
    if not probe.is_dir():
        return f"{probe} is a file, not a directory"
    if not os.access(probe, os.W_OK):
        return f"{probe} is not writable"
    return None


def _sql_ping(url: str) -> None:
    engine = create_engine(url, connect_args={"connect_timeout": 3} if url.startswith("postgres") else {})
    try:
        with engine.connect() as conn:
            conn.execute(text("SELECT 1"))
    finally:
        engine.dispose()


def check_ops_db(s: Settings) -> Finding:
    url = s.database_url
    if url.startswith("sqlite:///"):
        path = Path(url.removeprefix("sqlite:///"))
        problem = "it is a directory" if path.is_dir() else _writable_dir(path.parent)
        if problem:
            return Finding("ops DB", "EZ360_DATABASE_URL", False, f"cannot use {path}: {problem}",
                           "point it at a SQLite file in a writable directory")
        if not path.exists():
            return Finding("ops DB", "EZ360_DATABASE_URL", True, f"{path} (created by `ez360 seed`)")
    try:
        _sql_ping(url)
    except Exception as exc:  # noqa: BLE001 - any failure is reported with its cause
        return Finding("ops DB", "EZ360_DATABASE_URL", False, f"cannot connect: {_first_line(exc)}",
                       "check host, port, database name and credentials; is the server running?")
    return Finding("ops DB", "EZ360_DATABASE_URL", True, _redact(url))


def check_warehouse(s: Settings) -> Finding:
    try:
        wh = parse_warehouse_url(s.warehouse_url)
    except WarehouseUrlError as exc:
        return Finding("warehouse", "EZ360_WAREHOUSE_URL", False, str(exc),
                       "use duckdb:////abs/path/warehouse.duckdb or postgresql://user@host:5432/db")
    if wh.kind == "duckdb":
        if wh.path.is_dir():
            return Finding("warehouse", "EZ360_WAREHOUSE_URL", False, f"{wh.path} is a directory, not a DuckDB file",
                           "name a file, e.g. duckdb:////.../warehouse.duckdb")
        problem = _writable_dir(wh.path.parent)
        if problem:
            return Finding("warehouse", "EZ360_WAREHOUSE_URL", False, f"cannot create {wh.path}: {problem}",
                           "point it at a file in a writable directory")
        return Finding("warehouse", "EZ360_WAREHOUSE_URL", True, f"DuckDB file {wh.path}")
    try:
        _sql_ping(wh.sqlalchemy_url())
    except Exception as exc:  # noqa: BLE001
        return Finding("warehouse", "EZ360_WAREHOUSE_URL", False, f"cannot connect: {_first_line(exc)}",
                       "check the PostgreSQL URL and that the server is running")
    return Finding("warehouse", "EZ360_WAREHOUSE_URL", True, _redact(s.warehouse_url))


def check_dagster(s: Settings) -> Finding:
    problem = _writable_dir(s.dagster_home)
    if problem:
        return Finding("Dagster home", "EZ360_DAGSTER_HOME", False, problem, "point it at a writable directory")
    if s.dagster_storage_url:
        try:
            _sql_ping(s.dagster_storage_url)
        except Exception as exc:  # noqa: BLE001
            return Finding("Dagster storage", "EZ360_DAGSTER_STORAGE_URL", False, f"cannot connect: {_first_line(exc)}",
                           "check the PostgreSQL URL, or leave it empty for local storage")
        return Finding("Dagster storage", "EZ360_DAGSTER_STORAGE_URL", True, _redact(s.dagster_storage_url))
    return Finding("Dagster storage", "EZ360_DAGSTER_HOME", True, f"local storage in {s.dagster_home}")


def check_stripe(s: Settings) -> Finding:
    key = s.stripe_api_key.get_secret_value()
    if not key.startswith(("sk_test_", "sk_live_", "rk_test_", "rk_live_")):
        return Finding("Stripe", "EZ360_STRIPE_API_KEY", False, "not a Stripe secret or restricted key",
                       "use an sk_test_/sk_live_ (or rk_) key from the Stripe dashboard")
    if s.environment == "production" and "_test_" in key:
        return Finding("Stripe", "EZ360_STRIPE_API_KEY", False, "a test key in production",
                       "set a live key, or EZ360_ENVIRONMENT=development")
    base = (s.stripe_api_base or "https://api.stripe.com").rstrip("/")
    headers = {"Authorization": f"Bearer {key}"}
    response = _get("Stripe", "EZ360_STRIPE_API_BASE", f"{base}/v1/account", headers, s)
    if isinstance(response, Finding):
        return response
    if response.status_code in (401, 403):
        return Finding("Stripe", "EZ360_STRIPE_API_KEY", False,
                       f"Stripe refused the key at {base}: {_api_message(response)}",
                       "copy a current secret (or restricted) key from the Stripe dashboard")
    if response.status_code != 200 or not isinstance(_json(response), dict) or "id" not in _json(response):
        return Finding("Stripe", "EZ360_STRIPE_API_BASE", False,
                       f"GET {base}/v1/account answered HTTP {response.status_code}: not the Stripe API",
                       "leave EZ360_STRIPE_API_BASE empty for the real Stripe, or point it at the sandbox")
    account = _json(response)["id"]
    accounts = s.stripe_accounts or ("self,connected" if s.uses_sandboxes else "self")
    if "connected" in accounts.split(","):
        listed = _get("Stripe", "EZ360_STRIPE_API_BASE", f"{base}/v1/accounts?limit=1", headers, s)
        if isinstance(listed, Finding):
            return listed
        if listed.status_code != 200:
            return Finding("Stripe", "EZ360_STRIPE_ACCOUNTS", False,
                           f"the key's account {account} cannot list connected accounts "
                           f"(HTTP {listed.status_code}: {_api_message(listed)})",
                           "a standard (non-Connect) account has none: set EZ360_STRIPE_ACCOUNTS=self")
    return Finding("Stripe", "EZ360_STRIPE_API_KEY", True, f"authenticated as {account} at {base}")


def check_erpnext(s: Settings) -> Finding:
    base = s.erpnext_url.rstrip("/")
    headers = {"Authorization": f"token {s.erpnext_api_key}:{s.erpnext_api_secret.get_secret_value()}"}
    response = _get("ERPNext", "EZ360_ERPNEXT_URL", f"{base}/api/method/frappe.auth.get_logged_user", headers, s)
    if isinstance(response, Finding):
        return response
    body = _json(response)
    frappe_like = isinstance(body, dict) and bool({"exc_type", "exception", "_server_messages", "message"} & set(body))
    if response.status_code in (401, 403) and frappe_like:
        return Finding("ERPNext", "EZ360_ERPNEXT_API_KEY", False,
                       f"ERPNext refused the API key and secret at {base}: {_api_message(response)}",
                       "generate keys for the API user (User > Settings > API Access) and set "
                       "EZ360_ERPNEXT_API_KEY and EZ360_ERPNEXT_API_SECRET")
    user = body.get("message") if isinstance(body, dict) else None
    if response.status_code != 200 or not user:
        return Finding("ERPNext", "EZ360_ERPNEXT_URL", False,
                       f"GET {base}/api/method/frappe.auth.get_logged_user answered HTTP {response.status_code}: "
                       "not a Frappe site", "set the site's base URL, e.g. https://erp.example.com")
    problems = []
    for doctype in [d.strip() for d in s.erpnext_doctypes.split(",") if d.strip()]:
        listed = _get("ERPNext", "EZ360_ERPNEXT_URL", f"{base}/api/resource/{doctype}?limit_page_length=1",
                      headers, s)
        if isinstance(listed, Finding):
            return listed
        if listed.status_code == 404:
            problems.append(f"{doctype} does not exist")
        elif listed.status_code == 403:
            problems.append(f"{user} may not read {doctype}")
        elif listed.status_code != 200:
            problems.append(f"{doctype} answered HTTP {listed.status_code}")
    if problems:
        return Finding("ERPNext", "EZ360_ERPNEXT_DOCTYPES", False, "; ".join(problems),
                       "remove the doctype from EZ360_ERPNEXT_DOCTYPES or give the API user read permission")
    return Finding("ERPNext", "EZ360_ERPNEXT_URL", True, f"authenticated as {user} at {base}")


def _get(name: str, setting: str, url: str, headers: dict[str, str], s: Settings) -> httpx.Response | Finding:
    """The response, or the finding that names the unreachable URL (a sandbox not running only warns)."""
    try:
        return httpx.get(url, headers=headers, timeout=5)
    except httpx.HTTPError as exc:
        if s.uses_sandboxes:
            return Finding(name, setting, False, f"sandbox not running at {url.split('/api/')[0].split('/v1/')[0]}",
                           "`ez360 pipeline run` starts it when needed; `ez360 serve sandboxes` keeps it up",
                           blocking=False)
        return Finding(name, setting, False, f"unreachable: {_first_line(exc)}", "check the URL and the network")


def _json(response: httpx.Response):
    try:
        return response.json()
    except ValueError:
        return None


def _api_message(response: httpx.Response) -> str:
    body = _json(response)
    if isinstance(body, dict):
        error = body.get("error")
        if isinstance(error, dict):
            return str(error.get("message", error))[:200]
        return str(body.get("exception") or body.get("message") or body)[:200]
    return response.text[:200]


def check_inbox(s: Settings) -> Finding:
    problem = _writable_dir(s.inbox_dir)
    if problem:
        return Finding("export inbox", "EZ360_INBOX_DIR", False, problem, "point it at a writable directory")
    return Finding("export inbox", "EZ360_INBOX_DIR", True, str(s.inbox_dir))


def check_demo_data(s: Settings) -> Finding:
    missing = [n for n in ("stripe.json", "erpnext.json") if not (s.demo_dir / n).exists()]
    if missing and s.uses_sandboxes:
        return Finding("demo data", "EZ360_DEMO_DIR", False, f"missing {', '.join(missing)} in {s.demo_dir}",
                       "run `ez360 seed` (or `ez360 demo`)", blocking=False)
    return Finding("demo data", "EZ360_DEMO_DIR", True, str(s.demo_dir))


def check_webhooks(s: Settings) -> Finding:
    mode = "live" if s.stripe_livemode else "test"
    setting = f"EZ360_STRIPE_WEBHOOK_SECRETS_{mode.upper()}"
    if not s.stripe_webhook_secrets():
        return Finding("Stripe webhooks", setting, False, f"no {mode} signing secret: /webhooks/stripe answers 503",
                       "copy the endpoint's signing secret (whsec_...) from the Stripe dashboard",
                       blocking=s.environment == "production")
    return Finding("Stripe webhooks", setting, True, f"{len(s.stripe_webhook_secrets())} {mode} secret(s)")


def check_smtp(s: Settings) -> Finding:
    try:
        with socket.create_connection((s.smtp_host, s.smtp_port), timeout=3):
            pass
    except OSError as exc:
        return Finding("SMTP", "EZ360_SMTP_HOST", False,
                       f"{s.smtp_host}:{s.smtp_port} unreachable ({exc.strerror or exc}): mail waits in the outbox",
                       "point EZ360_SMTP_HOST/EZ360_SMTP_PORT at your mail server",
                       blocking=s.environment == "production")
    return Finding("SMTP", "EZ360_SMTP_HOST", True, f"{s.smtp_host}:{s.smtp_port}")


CHECKS: tuple[Callable[[Settings], Finding], ...] = (
    check_ops_db, check_warehouse, check_dagster, check_stripe, check_erpnext, check_inbox, check_demo_data,
    check_webhooks, check_smtp,
)


def diagnose(settings: Settings) -> list[Finding]:
    return [check(settings) for check in CHECKS]


def _first_line(exc: Exception) -> str:
    return (str(exc).strip().splitlines() or [type(exc).__name__])[0]


def _redact(url: str) -> str:
    if "@" in url and ":" in url.split("@")[0].split("://")[-1]:
        scheme, rest = url.split("://", 1)
        creds, host = rest.split("@", 1)
        return f"{scheme}://{creds.split(':')[0]}:***@{host}"
    return url
