"""One typed settings object for every layer, read from EZ360_* environment variables and `.env`.

Embedded defaults put every piece of state under `var/`; production points the URLs at PostgreSQL
and the real Stripe / ERPNext. `.env.example` documents every key.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

Environment = Literal["development", "test", "production"]


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="EZ360_", env_file=".env", extra="ignore")

    environment: Environment = "development"
    var_dir: Path = Path("var")

    database_url: str = Field("", description="Ops DB SQLAlchemy URL; default SQLite under var/")
    warehouse_url: str = Field("", description="duckdb:///path or postgresql://...; default DuckDB under var/")
    dagster_home: Path | None = None
    dagster_storage_url: str = Field("", description="PostgreSQL URL for Dagster storage; empty = local files")
    landing_dir: Path | None = None
    published_dir: Path | None = None
    demo_dir: Path | None = None

    stripe_api_key: SecretStr = SecretStr("sk_test_ez360_sandbox")
    stripe_api_base: str = Field("http://127.0.0.1:12111", description="empty = the real Stripe API")
    # --- Stripe webhooks (operational_api/stripe_integration) ---
    stripe_mode: Literal["auto", "test", "live"] = Field(
        "auto", description="which Stripe mode this deployment is in; auto = live in production, test elsewhere")
    stripe_webhook_secrets_test: SecretStr = Field(
        SecretStr(""), description="comma-separated whsec_ secrets of test-mode endpoints (several = rotation)")
    stripe_webhook_secrets_live: SecretStr = Field(
        SecretStr(""), description="comma-separated whsec_ secrets of live-mode endpoints (several = rotation)")
    stripe_platform_company: str = Field(
        "", description="slug of the company whose books take platform-account payouts; empty = such events "
                        "fail with reason platform_company_not_configured")
    stripe_process_on_delivery: bool = Field(
        True, description="process the event queue right after each webhook delivery (no worker needed)")

    @property
    def stripe_livemode(self) -> bool:
        """The `livemode` every accepted Stripe event must carry."""
        if self.stripe_mode == "auto":
            return self.environment == "production"
        return self.stripe_mode == "live"

    def stripe_webhook_secrets(self) -> list[str]:
        """The webhook secrets of this deployment's mode only: a test secret never verifies in live mode."""
        raw = (self.stripe_webhook_secrets_live if self.stripe_livemode else self.stripe_webhook_secrets_test)
        return [s.strip() for s in raw.get_secret_value().split(",") if s.strip()]
    erpnext_url: str = "http://127.0.0.1:8001"
    erpnext_api_key: str = "ez360-sandbox"
    erpnext_api_secret: SecretStr = SecretStr("ez360-sandbox-secret")

    host: str = "127.0.0.1"
    api_port: int = 8000
    dashboards_port: int = 8501
    dagster_port: int = 3000
    stripe_sandbox_port: int = 12111
    erpnext_sandbox_port: int = 8001

    # --- process supervision (ez360 serve / demo) ---
    stop_grace_seconds: float = Field(30.0, gt=0, le=300, description="how long servers get to stop after SIGTERM "
                                      "before they are killed")
    start_timeout_seconds: float = Field(600.0, gt=0, description="how long a starting server may take to answer "
                                         "its health check (the Dagster UI loads every definition first)")

    demo_seed: int = 42
    demo_scale: int = 1
    demo_password: SecretStr = SecretStr("ez360-demo-password")

    sentry_dsn: str = ""
    release: str = Field("", description="release name reported to Sentry (e.g. a git sha); empty = none")

    # --- ops security: secrets at rest, proxies (operational_api/security) ---
    totp_encryption_keys: SecretStr = Field(
        SecretStr(""), description="comma-separated Fernet keys; the first encrypts, all decrypt (rotation); "
                                   "empty = a fixed development key, refused in production")
    trusted_proxies: str = Field(
        "", description="comma-separated addresses or networks of reverse proxies whose X-Forwarded-For is "
                        "believed; empty = none (the peer address is the client)")
    audit_key: SecretStr = Field(
        SecretStr(""), description="comma-separated audit chain keys (HMAC-SHA256); the first seals new audit rows, "
                                   "all are accepted by `ez360 audit verify` (rotation); empty = a fixed development "
                                   "key, refused in production")

    # --- ingest (ingest/: Stripe, ERPNext, export files) ---
    sandboxes: Literal["on", "off"] | None = Field(
        None, description="use (and let `ez360 pipeline run` start) the local Stripe/ERPNext sandboxes; "
                          "empty = on in development and test, off in production")
    stripe_accounts: str = Field(
        "", description="self | self,connected | self,acct_...; empty = self (+connected when sandboxes are on)")
    stripe_objects: str = Field("", description="Stripe object types to read, comma-separated; empty = all")
    stripe_repull_days: int = Field(90, ge=1, description="window re-read when the events kept do not cover a gap")
    stripe_company_map: str = Field("", description="acct_x=company-slug,... (explicit company of each account)")
    erpnext_doctypes: str = Field(
        "Company,Account,Customer,Sales Invoice,Payment Entry,Journal Entry,GL Entry,Bank Transaction",
        description="ERPNext doctypes to read, comma-separated")
    erpnext_company_map: str = Field("", description="ERP Company Name=company-slug,...")
    erpnext_page_size: int = Field(500, ge=1)
    inbox_dir: Path | None = None
    ingest_max_attempts: int = Field(6, ge=1, description="tries per request (429, 5xx, dropped connection)")
    ingest_backoff_seconds: float = Field(1.0, ge=0, description="first retry wait; doubles per attempt")
    ingest_max_wait_seconds: float = Field(60.0, ge=0, description="longest single wait, Retry-After included")

    # --- accounts security: email, sessions, login throttling (operational_api/security) ---
    public_base_url: str = Field("", description="base of the web app's links (mails, the dashboards' sign-in); "
                                 "default: this machine's API address, http://EZ360_HOST:EZ360_API_PORT")
    smtp_host: str = "127.0.0.1"
    smtp_port: int = 8025
    smtp_username: str = ""
    smtp_password: SecretStr = SecretStr("")
    smtp_starttls: bool = False
    smtp_timeout_seconds: float = 10.0
    mail_from: str = "EZ360 <no-reply@ez360.invalid>"
    outbox_max_attempts: int = Field(10, ge=1)
    outbox_retry_seconds: int = Field(30, ge=1, description="first retry delay; doubles per failed attempt")
    session_idle_timeout_minutes: int = Field(30, ge=1)
    session_absolute_timeout_hours: int = Field(12, ge=1)
    session_cookie_secure: bool = Field(True, description="Secure cookie named __Host-ez360_session")
    login_free_attempts: int = Field(5, ge=1, description="failures per account before delays start")
    login_delay_seconds: float = Field(2.0, ge=0, description="first delay; doubles per further failure")
    login_lockout_threshold: int = Field(10, ge=2, description="failures per account that lock it")
    login_lockout_minutes: float = Field(15.0, gt=0)
    login_ip_free_attempts: int = Field(20, ge=1)
    login_ip_lockout_threshold: int = Field(50, ge=2)
    login_failure_window_minutes: float = Field(60.0, gt=0, description="failures older than this are forgotten")

    # --- pipeline alerts and freshness (pipelines/monitoring) ---
    alert_webhook_url: str = Field("", description="Slack-compatible incoming webhook for pipeline alerts; empty = off")
    alert_email_to: str = Field("", description="comma-separated addresses for pipeline alerts (via the SMTP server)")
    source_stale_after_minutes: int = Field(180, ge=1, description="a source not loaded for this long is stale")
    published_stale_after_minutes: int = Field(180, ge=1, description="published data older than this is stale")

    # --- web app (operational_api/web) ---
    dashboards_public_url: str = Field("", description="address of the dashboards linked from the web app; "
                                                       "empty = http://{host}:{dashboards_port}")

    # --- dashboards (apps/) ---
    platform_admin_emails: str = Field("", description="comma-separated emails of platform admins: they see every "
                                                        "company in the dashboards (company switcher)")
    dashboards_cache_seconds: int = Field(300, ge=0, description="how long the dashboards cache a published read")

    @model_validator(mode="after")
    def _derive_paths(self) -> Settings:
        var = self.var_dir.resolve()
        self.var_dir = var
        if not self.database_url:
            self.database_url = f"sqlite:///{var / 'ops.sqlite3'}"
        if not self.warehouse_url:
            self.warehouse_url = f"duckdb:///{var / 'warehouse' / 'warehouse.duckdb'}"
        self.dagster_home = (self.dagster_home or var / "dagster").resolve()
        self.landing_dir = (self.landing_dir or var / "landing").resolve()
        self.published_dir = (self.published_dir or var / "published").resolve()
        self.demo_dir = (self.demo_dir or var / "demo").resolve()
        self.inbox_dir = (self.inbox_dir or var / "inbox").resolve()
        self.public_base_url = self.public_base_url or f"http://{self.host}:{self.api_port}"
        return self

    @model_validator(mode="after")
    def _production_cookies_are_secure(self) -> Settings:
        if self.environment == "production" and not self.session_cookie_secure:
            raise ValueError("EZ360_SESSION_COOKIE_SECURE must be true in production")
        return self

    @model_validator(mode="after")
    def _trusted_proxies_are_addresses(self) -> Settings:
        for item in self.trusted_proxy_list:
            try:
                ipaddress.ip_network(item, strict=False)
            except ValueError:
                raise ValueError(f"EZ360_TRUSTED_PROXIES: {item!r} is not an IP address or network") from None
        return self

    @property
    def trusted_proxy_list(self) -> list[str]:
        return [p.strip() for p in self.trusted_proxies.split(",") if p.strip()]

    @property
    def platform_admin_list(self) -> frozenset[str]:
        return frozenset(e.strip().lower() for e in self.platform_admin_emails.split(",") if e.strip())

    @property
    def dashboards_base_url(self) -> str:
        return (self.dashboards_public_url or f"http://{self.host}:{self.dashboards_port}").rstrip("/")

    @property
    def session_cookie_name(self) -> str:
        """`__Host-` binds the cookie to this exact host over HTTPS (no Domain, Path=/, Secure)."""
        return "__Host-ez360_session" if self.session_cookie_secure else "ez360_session"

    @property
    def uses_sandboxes(self) -> bool:
        """True when Stripe and ERPNext are the local sandboxes: EZ360_SANDBOXES, never guessed from a URL."""
        if self.sandboxes is not None:
            return self.sandboxes == "on"
        return self.environment != "production"


@lru_cache
def get_settings() -> Settings:
    return Settings()
