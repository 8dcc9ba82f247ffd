"""`ez360 ingest run` configured by EZ360_* variables alone, and `ez360 ingest replay` rebuilding every raw
schema from the landing archive with the sources gone: the same tables, row for row."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from ez360.cli import app
from ez360.core.settings import Settings
from ingest.sandboxes import frappe_server, stripe_server
from tests.support.live_server import serve_app
from tests.support.localstripe_server import build_world
from tests.support.platform import free_port
from tests.support.raw_tables import Raw
from tests.support.sandbox_data import (
    BETA,
    ERP_KEY,
    ERP_SECRET,
    STRIPE_KEY,
    T0,
    build_erpnext,
    build_stripe,
    stripe_charge_bundle,
    write_erpnext_json,
    write_stripe_json,
)

runner = CliRunner()
SCHEMAS = {"stripe": "raw_stripe", "erpnext": "raw_erpnext", "files": "raw_files", "ops": "raw_ops"}


@pytest.fixture
def env(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    monkeypatch.chdir(tmp_path)  # no developer .env
    for name, value in {"EZ360_VAR_DIR": str(tmp_path / "var"), "EZ360_SANDBOXES": "off",
                        "EZ360_WAREHOUSE_URL": "", "EZ360_DATABASE_URL": f"sqlite:///{tmp_path / 'ops.sqlite3'}",
                        "EZ360_STRIPE_API_KEY": STRIPE_KEY, "EZ360_STRIPE_ACCOUNTS": "self,connected",
                        "EZ360_ERPNEXT_API_KEY": ERP_KEY, "EZ360_ERPNEXT_API_SECRET": ERP_SECRET,
                        "EZ360_STRIPE_COMPANY_MAP": f"{BETA}=beta", "EZ360_INGEST_BACKOFF_SECONDS": "0.01"}.items():
        monkeypatch.setenv(name, value)
    return tmp_path


def ingest(*args: str) -> dict:
    result = runner.invoke(app, ["ingest", *args, "--json"])
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)  # dlt logs its warnings to stderr


def test_every_source_replays_from_the_archive_without_calling_it_to_the_same_tables(
        env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    build_world(f"sqlite:///{env / 'ops.sqlite3'}")
    stripe_data = build_stripe()
    stripe_path, erp_path = write_stripe_json(env, stripe_data), write_erpnext_json(env, build_erpnext())
    inbox = env / "var" / "inbox" / "bank_statement_lines"
    inbox.mkdir(parents=True)
    (inbox / "jan.csv").write_text("booking_date,amount,currency,bank_account\n2026-01-09,10.50,EUR,Main\n")
    with serve_app(stripe_server.create_app(stripe_path)) as stripe_url, \
            serve_app(frappe_server.create_app(erp_path)) as erp_url:
        monkeypatch.setenv("EZ360_STRIPE_API_BASE", stripe_url)
        monkeypatch.setenv("EZ360_ERPNEXT_URL", erp_url)
        for source in SCHEMAS:
            assert ingest("run", source)["rows"] > 0, source
    # a second Stripe load on a restarted server: the archive holds two loads that replay in order
    bundle = stripe_charge_bundle("ch_B3", T0 + 5000, 999, "cus_B1", "INV-1003")
    stripe_data["accounts"][BETA]["charges"] += bundle["charges"]
    stripe_data["accounts"][BETA]["balance_transactions"] += bundle["balance_transactions"]
    write_stripe_json(env, stripe_data)
    with serve_app(stripe_server.create_app(stripe_path)) as stripe_url:
        monkeypatch.setenv("EZ360_STRIPE_API_BASE", stripe_url)
        assert ingest("run", "stripe")["row_counts"] == {"charges": 1, "balance_transactions": 1}

    settings = Settings(_env_file=None)
    raw = Raw(settings.warehouse_url)
    try:
        before = {source: raw.snapshot(schema, with_dlt=False) for source, schema in SCHEMAS.items()}
        assert len(list((settings.landing_dir / "stripe").glob("*/manifest.json"))) == 2
        # nothing listens any more at the source URLs: replay must not need them
        nowhere = f"http://127.0.0.1:{free_port()}"
        monkeypatch.setenv("EZ360_STRIPE_API_BASE", nowhere)
        monkeypatch.setenv("EZ360_ERPNEXT_URL", nowhere)
        monkeypatch.setenv("EZ360_DATABASE_URL", f"sqlite:///{env / 'gone.sqlite3'}")
        for source, schema in SCHEMAS.items():
            report = ingest("replay", source)
            assert report["replayed"] and report["rows"] > 0
            assert raw.snapshot(schema, with_dlt=False) == before[source], source
        assert raw.scalar("select count(*) from raw_stripe.charges where id = 'ch_B3'") == 1
    finally:
        raw.close()

    with serve_app(stripe_server.create_app(stripe_path)) as stripe_url:  # the live state survived the replay
        monkeypatch.setenv("EZ360_STRIPE_API_BASE", stripe_url)
        assert ingest("run", "stripe")["rows"] == 0


def test_a_partial_load_exits_3_and_names_what_failed(env: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with serve_app(frappe_server.create_app(write_erpnext_json(env, build_erpnext()))) as erp_url:
        monkeypatch.setenv("EZ360_ERPNEXT_URL", erp_url)
        monkeypatch.setenv("EZ360_ERPNEXT_DOCTYPES", "Company,Spaceship")
        result = runner.invoke(app, ["ingest", "run", "erpnext"])
    assert result.exit_code == 3, result.output
    assert "PARTIAL" in result.output and "failed Spaceship" in result.output and "404" in result.output
    assert runner.invoke(app, ["ingest", "replay", "nothing"]).exit_code == 2
