from pathlib import Path

import pytest

from ez360.core.settings import Settings
from ez360.core.warehouse import WarehouseUrlError, parse_warehouse_url


def test_embedded_defaults_put_all_state_under_var(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    s = Settings(_env_file=None)
    var = tmp_path / "var"
    assert s.database_url == f"sqlite:///{var / 'ops.sqlite3'}"
    assert parse_warehouse_url(s.warehouse_url).path == var / "warehouse" / "warehouse.duckdb"
    assert {s.dagster_home, s.landing_dir, s.published_dir, s.demo_dir} == {
        var / "dagster", var / "landing", var / "published", var / "demo"}


def test_environment_and_dotenv_override_defaults(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    (tmp_path / ".env").write_text("EZ360_WAREHOUSE_URL=postgresql://wh@db.internal:5433/warehouse\n")
    monkeypatch.setenv("EZ360_DATABASE_URL", "postgresql://ops@db.internal/ops")
    s = Settings()
    assert s.database_url == "postgresql://ops@db.internal/ops"
    wh = parse_warehouse_url(s.warehouse_url)
    assert (wh.kind, wh.host, wh.port, wh.database, wh.user) == ("postgres", "db.internal", 5433, "warehouse", "wh")
    assert wh.dbt_env()["EZ360_DBT_TARGET"] == "postgres"


def test_env_example_documents_every_setting():
    documented = Path(__file__).resolve().parent.parent.joinpath(".env.example").read_text()
    for name in Settings.model_fields:
        assert f"EZ360_{name.upper()}" in documented, f"EZ360_{name.upper()} missing from .env.example"


@pytest.mark.parametrize("url", ["duckdb:///", "mysql://x/y", "postgresql:///nodb", "duckdb:///dir/"])
def test_bad_warehouse_urls_are_refused_naming_the_setting(url):
    with pytest.raises(WarehouseUrlError, match="EZ360_WAREHOUSE_URL"):
        parse_warehouse_url(url)


def test_duckdb_urls_follow_the_sqlalchemy_path_convention(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert parse_warehouse_url("duckdb:////abs/w.duckdb").path == Path("/abs/w.duckdb")
    assert parse_warehouse_url("duckdb:///rel/w.duckdb").path == tmp_path / "rel" / "w.duckdb"


def test_a_postgres_warehouse_password_with_url_characters_survives_the_round_trip():
    from urllib.parse import quote

    from sqlalchemy.engine import make_url

    user, password, database = "etl@corp", "p@ss/w:rd#%?x", "warehouse"
    url = f"postgresql://{quote(user, safe='')}:{quote(password, safe='')}@db.internal:5433/{database}"
    warehouse = parse_warehouse_url(url)
    assert (warehouse.user, warehouse.password, warehouse.database) == (user, password, database)
    parsed = make_url(warehouse.sqlalchemy_url())  # what SQLAlchemy, dlt and psycopg2 read back
    assert (parsed.username, parsed.password, parsed.host, parsed.port, parsed.database) == (
        user, password, "db.internal", 5433, database)
    assert parse_warehouse_url(warehouse.postgres_dsn()) == warehouse
