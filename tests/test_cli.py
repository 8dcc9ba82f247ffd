"""The `ez360` command as a newcomer meets it: help everywhere, a doctor that names what to fix."""

from __future__ import annotations

import pytest
from typer.testing import CliRunner

from ez360.cli.app import app

runner = CliRunner()


@pytest.fixture(autouse=True)
def _isolated(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    for name in ("EZ360_DATABASE_URL", "EZ360_WAREHOUSE_URL", "EZ360_DAGSTER_STORAGE_URL"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("EZ360_VAR_DIR", str(tmp_path / "var"))


@pytest.mark.parametrize("command", [[], ["seed"], ["migrate"], ["pipeline"], ["pipeline", "run"], ["serve"],
                                     ["demo"], ["doctor"]])
def test_every_command_explains_itself_with_help(command):
    result = runner.invoke(app, [*command, "--help"])
    assert result.exit_code == 0, result.output
    assert "Usage" in result.output and len(result.output.splitlines()) > 5


def test_doctor_passes_on_the_embedded_defaults_of_a_fresh_checkout():
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 0, result.output
    assert "configuration looks good" in result.output


def test_doctor_names_an_unreachable_postgres_ops_db(monkeypatch):
    monkeypatch.setenv("EZ360_DATABASE_URL", "postgresql://postgres@127.0.0.1:1/ez360")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code != 0
    assert "FAIL ops DB" in result.output and "EZ360_DATABASE_URL: cannot connect" in result.output
    assert "fix: EZ360_DATABASE_URL" in result.output


def test_doctor_names_a_bad_warehouse_path(tmp_path, monkeypatch):
    blocker = tmp_path / "not-a-dir"
    blocker.write_text("a file where a folder should be")
    monkeypatch.setenv("EZ360_WAREHOUSE_URL", f"duckdb:///{blocker}/warehouse.duckdb")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code != 0
    assert "EZ360_WAREHOUSE_URL: cannot create" in result.output and "is a file, not a directory" in result.output


def test_doctor_names_a_warehouse_url_it_cannot_parse(monkeypatch):
    monkeypatch.setenv("EZ360_WAREHOUSE_URL", "mysql://somewhere/db")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code != 0
    assert "EZ360_WAREHOUSE_URL" in result.output and "duckdb:// or postgresql://" in result.output


def test_doctor_names_an_unreachable_postgres_warehouse(monkeypatch):
    monkeypatch.setenv("EZ360_WAREHOUSE_URL", "postgresql://postgres@127.0.0.1:1/warehouse")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code != 0
    assert "fix: EZ360_WAREHOUSE_URL" in result.output


def test_invalid_setting_value_names_the_variable(monkeypatch):
    monkeypatch.setenv("EZ360_API_PORT", "eighty")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code == 2
    assert "EZ360_API_PORT" in result.output


def test_seed_refuses_to_replace_data_without_reset_and_replaces_it_with():
    assert runner.invoke(app, ["seed", "--seed", "3"]).exit_code == 0
    again = runner.invoke(app, ["seed", "--seed", "3"])
    assert again.exit_code == 1 and "--reset" in again.output
    assert runner.invoke(app, ["seed", "--seed", "3", "--reset"]).exit_code == 0


def test_serve_rejects_an_unknown_target():
    result = runner.invoke(app, ["serve", "everything"])
    assert result.exit_code == 2 and "choose one of" in result.output


def test_doctor_fails_in_production_without_webhook_secrets_or_mail_server(monkeypatch):
    monkeypatch.setenv("EZ360_ENVIRONMENT", "production")
    monkeypatch.setenv("EZ360_STRIPE_API_KEY", "sk_live_example")
    monkeypatch.setenv("EZ360_STRIPE_WEBHOOK_SECRETS_LIVE", "")
    monkeypatch.setenv("EZ360_SMTP_PORT", "1")
    result = runner.invoke(app, ["doctor"])
    assert result.exit_code != 0
    assert "EZ360_STRIPE_WEBHOOK_SECRETS_LIVE: no live signing secret" in result.output
    assert "FAIL SMTP" in result.output
