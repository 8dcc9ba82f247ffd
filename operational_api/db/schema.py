"""Schema lifecycle of the ops DB through Alembic: the only way tables are created or changed."""

from __future__ import annotations

from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import inspect

from operational_api.db.engine import make_engine

MIGRATIONS = Path(__file__).resolve().parent.parent / "migrations"


def alembic_config(url: str) -> Config:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    cfg.set_main_option("sqlalchemy.url", url.replace("%", "%%"))
    return cfg


def upgrade(url: str, revision: str = "heads") -> None:
    """Migrate to the latest revision of every branch (features add their own branches off a common base)."""
    if url.startswith("sqlite:///"):
        Path(url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
    command.upgrade(alembic_config(url), revision)


def downgrade(url: str, revision: str = "base") -> None:
    command.downgrade(alembic_config(url), revision)


def has_data(url: str) -> bool:
    engine = make_engine(url)
    try:
        if "companies" not in inspect(engine).get_table_names():
            return False
        with engine.connect() as conn:
            return conn.exec_driver_sql("SELECT 1 FROM companies LIMIT 1").first() is not None
    finally:
        engine.dispose()


def reset(url: str) -> None:
    """Empty the ops DB by migrating down to nothing and up again."""
    downgrade(url, "base")
    upgrade(url)
