"""Write-audit-publish (publish half) and the dashboards' read side, on real DuckDB files and PostgreSQL."""

from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from datetime import date
from decimal import Decimal
from pathlib import Path

import duckdb
import psycopg2
import pytest

from apps.data import NothingPublishedYet, PublishedData
from ez360.core.settings import Settings
from ez360.core.warehouse import parse_warehouse_url
from pipelines.publish import PublishError, publish, record_gate_failure, snapshot_path, status_path

MART = "marts.rpt_revenue_by_company_month"

# company_id, slug, name, month, currency, exponent, invoices, net, tax, gross (minor units)
ROWS = [
    (1, "acme", "Acme Consulting", date(2025, 1, 1), "USD", 2, 3, 1_000_000, 234_567, 1_234_567),
    (1, "acme", "Acme Consulting", date(2025, 2, 1), "USD", 2, 2, 900_000, 100_000, 1_000_000),
    (2, "kaizen", "Kaizen KK", date(2025, 1, 1), "JPY", 0, 1, 900_000, 100_000, 1_000_000),
    (2, "kaizen", "Kaizen KK", date(2025, 2, 1), "JPY", 0, 1, 234_000, 0, 234_000),
    (3, "gulf", "Gulf Advisory", date(2025, 1, 1), "KWD", 3, 1, 10_000, 0, 10_000),
    (3, "gulf", "Gulf Advisory", date(2025, 2, 1), "KWD", 3, 1, 2_000, 345, 2_345),
    (3, "gulf", "Gulf Advisory", date(2025, 2, 1), "USD", 2, 1, 50, 0, 50),
]
# What the dashboard must show as each company's gross total per currency.
EXPECTED_GROSS = {
    "Acme Consulting": ["22,345.67 USD"],
    "Kaizen KK": ["1,234,000 JPY"],
    "Gulf Advisory": ["12.345 KWD", "0.50 USD"],
}

_CREATE_MART = f"""
CREATE TABLE {MART} (
    company_id INTEGER, company_slug VARCHAR, company_name VARCHAR, revenue_month DATE, currency VARCHAR,
    currency_exponent INTEGER, invoice_count INTEGER, net_revenue_minor BIGINT, tax_minor BIGINT,
    gross_revenue_minor BIGINT)
"""


def make_duckdb_warehouse(path: Path, rows=ROWS) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("CREATE SCHEMA IF NOT EXISTS marts")
        con.execute(f"DROP TABLE IF EXISTS {MART}")
        con.execute(_CREATE_MART)
        if rows:
            con.executemany(f"INSERT INTO {MART} VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)", rows)
    finally:
        con.close()
    return path


def duckdb_settings(var_dir: Path) -> Settings:
    return Settings(_env_file=None, var_dir=var_dir, warehouse_url="", published_dir=None)


class HeldConnection:
    """A DuckDB connection held open by ANOTHER process (as dbt or a dashboard would hold one)."""

    _SCRIPT = textwrap.dedent("""
        import json, sys, duckdb
        con = duckdb.connect(sys.argv[1], read_only=sys.argv[2] == "ro")
        print("ready", flush=True)
        for line in sys.stdin:
            print(json.dumps(con.execute(line).fetchall(), default=str), flush=True)
    """)

    def __init__(self, path: Path, read_only: bool):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", self._SCRIPT, str(path), "ro" if read_only else "rw"],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )
        assert self.proc.stdout.readline().strip() == "ready"

    def query(self, sql: str):
        self.proc.stdin.write(sql.replace("\n", " ") + "\n")
        self.proc.stdin.flush()
        return json.loads(self.proc.stdout.readline())

    def close(self) -> None:
        self.proc.stdin.close()
        self.proc.wait(timeout=10)


@pytest.fixture
def duck(tmp_path):
    """(warehouse, published_dir, PublishedData) for an embedded DuckDB setup under tmp_path."""
    settings = duckdb_settings(tmp_path / "var")
    warehouse = parse_warehouse_url(settings.warehouse_url)
    make_duckdb_warehouse(warehouse.path)
    return warehouse, settings.published_dir, PublishedData.from_settings(settings)


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def _leftovers(published_dir: Path) -> list[str]:
    return sorted(p.name for p in published_dir.iterdir() if ".tmp-" in p.name or p.name.endswith(".wal"))


# ------------------------------------------------------------------------------------------------ DuckDB


def test_published_snapshot_is_readable_while_a_writer_holds_the_warehouse(duck):
    warehouse, published_dir, data = duck
    result = publish(warehouse, published_dir, [MART], run_id="run-1")
    assert result.row_counts == {MART: len(ROWS)}
    assert result.location == str(snapshot_path(published_dir))

    writer = HeldConnection(warehouse.path, read_only=False)  # e.g. dbt building the next run
    try:
        with pytest.raises(duckdb.IOException):  # the lock is real: the warehouse itself is unreadable now
            duckdb.connect(str(warehouse.path), read_only=True)
        revenue = data.revenue_by_company_month()
        companies = data.companies()
    finally:
        writer.close()

    assert list(companies["company_name"]) == ["Acme Consulting", "Gulf Advisory", "Kaizen KK"]
    assert len(revenue) == len(ROWS)
    acme_jan = revenue[(revenue.company_id == 1) & (revenue.revenue_month == date(2025, 1, 1))].iloc[0]
    assert acme_jan["gross_revenue"] == Decimal("12345.67") and isinstance(acme_jan["gross_revenue"], Decimal)
    assert acme_jan["net_revenue"] == Decimal("10000.00")
    kaizen = revenue[revenue.company_id == 2]
    assert list(kaizen["gross_revenue"]) == [Decimal("1000000"), Decimal("234000")]
    kwd = revenue[revenue.currency == "KWD"]
    assert sum(kwd["gross_revenue"], Decimal(0)) == Decimal("12.345")
    assert str(kwd.iloc[0]["gross_revenue"]) == "10.000"
    assert _leftovers(published_dir) == []


def test_reads_can_be_limited_to_a_tenants_companies(duck):
    warehouse, published_dir, data = duck
    publish(warehouse, published_dir, [MART], run_id="run-1")
    assert set(data.revenue_by_company_month([2])["company_name"]) == {"Kaizen KK"}
    assert list(data.companies([3, 1])["company_id"]) == [1, 3]
    empty = data.revenue_by_company_month([])
    assert empty.empty and "gross_revenue" in empty.columns and "company_name" in empty.columns


def test_publish_while_the_warehouse_is_being_written_fails_clearly_and_keeps_the_snapshot(duck):
    warehouse, published_dir, data = duck
    publish(warehouse, published_dir, [MART], run_id="run-1")
    before = _sha256(snapshot_path(published_dir))
    writer = HeldConnection(warehouse.path, read_only=False)
    try:
        with pytest.raises(PublishError, match="run-2 failed.*unchanged"):
            publish(warehouse, published_dir, [MART], run_id="run-2")
    finally:
        writer.close()
    assert _sha256(snapshot_path(published_dir)) == before
    assert data.status().last_published_run_id == "run-1"
    assert _leftovers(published_dir) == []


def test_second_publish_swaps_the_snapshot_atomically_and_keeps_the_log(duck):
    warehouse, published_dir, data = duck
    first = publish(warehouse, published_dir, [MART], run_id="run-1")
    old_reader = HeldConnection(snapshot_path(published_dir), read_only=True)  # a dashboard mid-read
    try:
        make_duckdb_warehouse(warehouse.path, ROWS[:2])  # the next dbt run: only Acme left
        second = publish(warehouse, published_dir, [MART], run_id="run-2")
        # The reader that held the old file keeps a consistent view of it ...
        assert old_reader.query(f"SELECT count(*) FROM published.{MART.split('.')[1]}") == [[len(ROWS)]]
    finally:
        old_reader.close()
    # ... while every new read sees the new snapshot.
    assert second.row_counts == {MART: 2}
    assert set(data.companies()["company_name"]) == {"Acme Consulting"}
    status = data.status()
    assert status.last_published_run_id == "run-2" and not status.latest_attempt_failed
    assert status.last_published_at == second.published_at and second.published_at >= first.published_at
    assert status.row_counts == {MART: 2}
    with duckdb.connect(str(snapshot_path(published_dir)), read_only=True) as con:
        log = con.execute("SELECT run_id, status, row_counts FROM published.publish_log ORDER BY published_at")
        assert [(r, s, json.loads(c)) for r, s, c in log.fetchall()] == [
            ("run-1", "published", {MART: len(ROWS)}), ("run-2", "published", {MART: 2})]
    assert json.loads(status_path(published_dir).read_text())["last_attempt_status"] == "published"
    assert _leftovers(published_dir) == []


def test_failed_publish_midway_leaves_the_previous_snapshot_intact(duck):
    warehouse, published_dir, data = duck
    publish(warehouse, published_dir, [MART], run_id="run-1")
    before = _sha256(snapshot_path(published_dir))
    make_duckdb_warehouse(warehouse.path, ROWS[:1])

    # The first table copies fine, the second does not exist: nothing of run-2 may become visible.
    with pytest.raises(PublishError, match=r"marts\.does_not_exist.*previous snapshot .* unchanged"):
        publish(warehouse, published_dir, [MART, "marts.does_not_exist"], run_id="run-2")

    assert _sha256(snapshot_path(published_dir)) == before
    assert len(data.revenue_by_company_month()) == len(ROWS)
    assert data.status().last_published_run_id == "run-1"
    assert _leftovers(published_dir) == []


def test_bad_table_names_are_refused_before_anything_runs(duck):
    warehouse, published_dir, _ = duck
    for tables in ([], ["rpt_revenue_by_company_month"], ["marts.x; DROP TABLE y"],
                   [MART, "staging.rpt_revenue_by_company_month"]):
        with pytest.raises(ValueError):
            publish(warehouse, published_dir, tables, run_id="run-1")
    assert not snapshot_path(published_dir).exists()


def test_gate_failure_is_reported_while_the_data_stays_the_last_good_run(duck):
    warehouse, published_dir, data = duck
    publish(warehouse, published_dir, [MART], run_id="run-1")
    before = _sha256(snapshot_path(published_dir))
    make_duckdb_warehouse(warehouse.path, ROWS[:1])  # the bad run's data, never to be shown

    record_gate_failure(warehouse, published_dir, "run-2", ["gross_equals_net_plus_tax", "currency_is_iso"])

    status = data.status()
    assert status.latest_attempt_failed
    assert status.last_attempt_run_id == "run-2"
    assert status.failed_checks == ("gross_equals_net_plus_tax", "currency_is_iso")
    assert status.last_published_run_id == "run-1"
    assert status.last_attempt_at >= status.last_published_at
    assert _sha256(snapshot_path(published_dir)) == before
    assert len(data.revenue_by_company_month()) == len(ROWS)

    # The next good run clears the warning, and the failure stays in the snapshot's history.
    publish(warehouse, published_dir, [MART], run_id="run-3")
    status = data.status()
    assert not status.latest_attempt_failed and status.failed_checks == ()
    assert status.last_published_run_id == "run-3"
    with duckdb.connect(str(snapshot_path(published_dir)), read_only=True) as con:
        log = con.execute("SELECT run_id, status, detail FROM published.publish_log ORDER BY published_at")
        rows = log.fetchall()
    assert [(r, s) for r, s, _ in rows] == [("run-1", "published"), ("run-2", "gate_failed"),
                                            ("run-3", "published")]
    assert json.loads(rows[1][2]) == {"failed_checks": ["gross_equals_net_plus_tax", "currency_is_iso"]}


def test_nothing_published_yet_is_a_specific_error_with_a_way_forward(tmp_path):
    data = PublishedData.from_settings(duckdb_settings(tmp_path / "var"))
    with pytest.raises(NothingPublishedYet, match="ez360 pipeline run"):
        data.revenue_by_company_month()
    with pytest.raises(NothingPublishedYet, match="ez360 pipeline run"):
        data.companies()
    status = data.status()
    assert not status.has_published and not status.latest_attempt_failed

    # A first run that fails its gate: still nothing to show, but the failure is visible.
    warehouse = parse_warehouse_url(data.settings.warehouse_url)
    record_gate_failure(warehouse, data.published_dir, "run-1", ["row_count_positive"])
    status = data.status()
    assert not status.has_published
    assert status.latest_attempt_failed and status.failed_checks == ("row_count_positive",)


# ------------------------------------------------------------------------------------------------ PostgreSQL


def _pg_make_mart(url: str, rows=ROWS) -> None:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("CREATE SCHEMA IF NOT EXISTS marts")
        cur.execute(f"DROP TABLE IF EXISTS {MART}")
        cur.execute(_CREATE_MART.replace("VARCHAR", "text"))
        cur.executemany(f"INSERT INTO {MART} VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s)", rows)
    conn.close()


def _pg_published_tables(url: str) -> list[str]:
    with psycopg2.connect(url) as conn, conn.cursor() as cur:
        cur.execute("SELECT table_name FROM information_schema.tables WHERE table_schema = 'published'"
                    " ORDER BY table_name")
        names = [r[0] for r in cur.fetchall()]
    conn.close()
    return names


@pytest.mark.postgres
def test_postgres_publish_swaps_tables_in_one_transaction_and_reports_gate_failures(postgres_url, tmp_path):
    settings = Settings(_env_file=None, var_dir=tmp_path / "var", warehouse_url=postgres_url)
    warehouse = parse_warehouse_url(settings.warehouse_url)
    data = PublishedData.from_settings(settings)
    try:
        with pytest.raises(NothingPublishedYet, match="ez360 pipeline run"):
            data.revenue_by_company_month()
        assert not data.status().has_published

        _pg_make_mart(postgres_url)
        first = publish(warehouse, settings.published_dir, [MART], run_id="run-1")
        assert first.row_counts == {MART: len(ROWS)} and "password" not in first.location
        revenue = data.revenue_by_company_month()
        assert len(revenue) == len(ROWS)
        assert sum(revenue[revenue.currency == "USD"]["gross_revenue"], Decimal(0)) == Decimal("22346.17")
        assert list(data.companies()["company_name"]) == ["Acme Consulting", "Gulf Advisory", "Kaizen KK"]
        assert set(data.revenue_by_company_month([1])["company_id"]) == {1}

        # Second run replaces the data and keeps the log.
        _pg_make_mart(postgres_url, ROWS[:2])
        publish(warehouse, settings.published_dir, [MART], run_id="run-2")
        assert set(data.companies()["company_name"]) == {"Acme Consulting"}

        # A failure midway rolls the whole transaction back: run-2's tables stay, no __new leftovers.
        _pg_make_mart(postgres_url, ROWS[:1])
        with pytest.raises(PublishError, match=r"run-3 failed.*does_not_exist.*Nothing was changed"):
            publish(warehouse, settings.published_dir, [MART, "marts.does_not_exist"], run_id="run-3")
        assert len(data.revenue_by_company_month()) == 2
        assert _pg_published_tables(postgres_url) == ["publish_log", "rpt_revenue_by_company_month"]

        record_gate_failure(warehouse, settings.published_dir, "run-4", ["gross_equals_net_plus_tax"])
        status = data.status()
        assert status.last_published_run_id == "run-2"
        assert status.latest_attempt_failed and status.last_attempt_run_id == "run-4"
        assert status.failed_checks == ("gross_equals_net_plus_tax",)
        assert status.row_counts == {MART: 2}
        assert len(data.revenue_by_company_month()) == 2
        assert not (settings.published_dir / "status.json").exists()  # status lives in the database

        with psycopg2.connect(postgres_url) as conn, conn.cursor() as cur:
            cur.execute("SELECT run_id, status FROM published.publish_log ORDER BY published_at")
            assert cur.fetchall() == [("run-1", "published"), ("run-2", "published"), ("run-4", "gate_failed")]
        conn.close()
    finally:
        data.close()


@pytest.mark.postgres
def test_postgres_first_run_failing_its_gate_is_visible_before_anything_is_published(postgres_url, tmp_path):
    settings = Settings(_env_file=None, var_dir=tmp_path / "var", warehouse_url=postgres_url)
    data = PublishedData.from_settings(settings)
    try:
        record_gate_failure(parse_warehouse_url(postgres_url), settings.published_dir, "run-1", ["not_empty"])
        status = data.status()
        assert not status.has_published and status.latest_attempt_failed
        assert status.failed_checks == ("not_empty",)
        with pytest.raises(NothingPublishedYet):
            data.companies()
    finally:
        data.close()
