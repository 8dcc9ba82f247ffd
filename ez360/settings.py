"""One typed settings object for every layer, read from EZ360_* environment variables and `.env`.

Embedded defaults put every piece of state under `var/`; production points the URLs at PostgreSQL
and the real Stripe / ERPNext. `.env.example` documents every key.
"""

from __future__ import annotations

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
    erpnext_url: str = "http://127.0.0.1:8001"
    erpnext_api_key: str = "ez360-sandbox"
    erpnext_api_secret: SecretStr = SecretStr("ez360-sandbox-secret")

    host: str = "127.0.0.1"
    api_port: int = 8000
    dashboards_port: int = 8501
    dagster_port: int = 3000
    stripe_sandbox_port: int = 12111
    erpnext_sandbox_port: int = 8001

    demo_seed: int = 42
    demo_scale: int = 1
    demo_password: SecretStr = SecretStr("ez360-demo-password")

    sentry_dsn: str = ""

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
        return self

    @property
    def uses_sandboxes(self) -> bool:
        """True when Stripe and ERPNext are the local sandboxes (the embedded default)."""
        return self.stripe_api_base.startswith(("http://127.", "http://localhost"))


@lru_cache
def get_settings() -> Settings:
    return Settings()
