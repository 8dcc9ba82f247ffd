"""The warehouse target named by EZ360_WAREHOUSE_URL, in the shapes each tool wants (dbt, dlt, SQLAlchemy)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote, unquote, urlparse

RAW_SCHEMAS = {"ops": "raw_ops", "stripe": "raw_stripe", "erpnext": "raw_erpnext", "files": "raw_files"}
PUBLISHED_SCHEMA = "published"


class WarehouseUrlError(ValueError):
    pass


@dataclass(frozen=True)
class Warehouse:
    kind: str  # "duckdb" | "postgres"
    path: Path | None = None
    host: str = ""
    port: int = 5432
    user: str = ""
    password: str = ""
    database: str = ""

    def postgres_dsn(self) -> str:
        """A URL again, user and password percent-encoded (a password may hold @ / : # ? or %)."""
        auth = quote(self.user, safe="") + (f":{quote(self.password, safe='')}" if self.password else "")
        host = f"[{self.host}]" if ":" in self.host else self.host  # an IPv6 address
        return f"postgresql://{auth}@{host}:{self.port}/{self.database}"

    def sqlalchemy_url(self) -> str:
        if self.kind == "duckdb":
            return f"duckdb:///{self.path}"
        return self.postgres_dsn().replace("postgresql://", "postgresql+psycopg2://", 1)

    def dbt_env(self) -> dict[str, str]:
        """Environment read by dbt_project/profiles.yml."""
        env = {"EZ360_DBT_TARGET": self.kind}
        if self.kind == "duckdb":
            env["EZ360_DBT_DUCKDB_PATH"] = str(self.path)
        else:
            env.update(
                EZ360_DBT_PG_HOST=self.host, EZ360_DBT_PG_PORT=str(self.port), EZ360_DBT_PG_USER=self.user,
                EZ360_DBT_PG_PASSWORD=self.password, EZ360_DBT_PG_DATABASE=self.database,
            )
        return env


def parse_warehouse_url(url: str) -> Warehouse:
    parsed = urlparse(url)
    scheme = parsed.scheme.split("+")[0]
    if scheme == "duckdb":
        # SQLAlchemy convention: duckdb:///relative/file.duckdb, duckdb:////absolute/file.duckdb
        raw = unquote(url.split("://", 1)[1])
        raw = raw[1:] if raw.startswith("/") else raw
        if not raw or raw.endswith("/"):
            raise WarehouseUrlError(f"EZ360_WAREHOUSE_URL {url!r} names no DuckDB file (duckdb:///path/to/file.duckdb)")
        return Warehouse(kind="duckdb", path=Path(raw).resolve())
    if scheme in ("postgresql", "postgres"):
        database = parsed.path.lstrip("/")
        if not parsed.hostname or not database:
            raise WarehouseUrlError(f"EZ360_WAREHOUSE_URL {url!r} needs a host and a database name")
        return Warehouse(
            kind="postgres", host=parsed.hostname, port=parsed.port or 5432,
            user=unquote(parsed.username or "postgres"), password=unquote(parsed.password or ""), database=database,
        )
    raise WarehouseUrlError(f"EZ360_WAREHOUSE_URL {url!r}: the scheme must be duckdb:// or postgresql://")
