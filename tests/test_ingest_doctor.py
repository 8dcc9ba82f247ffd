"""`ez360 doctor` authenticates with Stripe and ERPNext and names a refused key, a wrong URL, a missing doctype;
whether the sandboxes are in use is the EZ360_SANDBOXES setting, never a guess from a loopback address."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from ez360.cli import app
from ez360.cli.doctor import check_erpnext, check_stripe
from ez360.core.settings import Settings
from ingest.sandboxes import frappe_server, stripe_server
from tests.support.live_server import serve_app
from tests.support.platform import free_port
from tests.support.sandbox_data import (
    ERP_KEY,
    ERP_SECRET,
    STRIPE_KEY,
    build_erpnext,
    write_erpnext_json,
    write_stripe_json,
)
from tests.support.stripe_fixture_server import create_app, load_world


@pytest.fixture(scope="module")
def servers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[dict[str, str]]:
    folder = tmp_path_factory.mktemp("doctor")
    erp = build_erpnext()
    erp["denied_doctypes"] = ["Bank Transaction"]
    with serve_app(stripe_server.create_app(write_stripe_json(folder))) as stripe_url, \
            serve_app(frappe_server.create_app(write_erpnext_json(folder, erp))) as erp_url, \
            serve_app(create_app(load_world())) as standard_url:
        yield {"stripe": stripe_url, "erpnext": erp_url, "standard": standard_url}


def settings(tmp_path: Path, servers: dict[str, str], **values: Any) -> Settings:
    base = dict(var_dir=tmp_path / "var", stripe_api_key=STRIPE_KEY, stripe_api_base=servers["stripe"],
                erpnext_url=servers["erpnext"], erpnext_api_key=ERP_KEY, erpnext_api_secret=ERP_SECRET,
                erpnext_doctypes="Company,GL Entry", sandboxes="on")
    return Settings(_env_file=None, **{**base, **values})


def test_a_working_configuration_is_authenticated_on_both(tmp_path: Path, servers: dict[str, str]) -> None:
    stripe = check_stripe(settings(tmp_path, servers))
    assert stripe.ok and f"authenticated as {stripe_server.PLATFORM_ACCOUNT['id']}" in stripe.detail
    erp = check_erpnext(settings(tmp_path, servers))
    assert erp.ok and "authenticated as Administrator" in erp.detail


def test_a_refused_key_is_named(tmp_path: Path, servers: dict[str, str]) -> None:
    stripe = check_stripe(settings(tmp_path, servers, stripe_api_key="sk_test_revoked_key_0000"))
    assert (stripe.ok, stripe.setting) == (False, "EZ360_STRIPE_API_KEY") and "refused the key" in stripe.detail
    assert "revoked_key" not in stripe.detail  # Stripe masks the key in its message; so do we
    erp = check_erpnext(settings(tmp_path, servers, erpnext_api_secret="wrong"))
    assert (erp.ok, erp.setting, erp.blocking) == (False, "EZ360_ERPNEXT_API_KEY", True)


def test_a_wrong_url_is_named_and_blocks_unless_the_sandboxes_are_on(tmp_path: Path, servers: dict[str, str]) -> None:
    nowhere = f"http://127.0.0.1:{free_port()}"
    real = check_stripe(settings(tmp_path, servers, stripe_api_base=nowhere, sandboxes="off"))
    assert (real.ok, real.setting, real.blocking) == (False, "EZ360_STRIPE_API_BASE", True)
    assert "unreachable" in real.detail  # a loopback URL with sandboxes off is a real service that is down
    sandbox = check_stripe(settings(tmp_path, servers, stripe_api_base=nowhere, sandboxes="on"))
    assert (sandbox.ok, sandbox.blocking) == (False, False) and "sandbox not running" in sandbox.detail
    not_frappe = check_erpnext(settings(tmp_path, servers, erpnext_url=servers["stripe"], sandboxes="off"))
    assert (not_frappe.ok, not_frappe.setting) == (False, "EZ360_ERPNEXT_URL") and "not a Frappe site" in \
        not_frappe.detail


def test_a_missing_or_unreadable_doctype_is_named(tmp_path: Path, servers: dict[str, str]) -> None:
    erp = check_erpnext(settings(tmp_path, servers, erpnext_doctypes="Company,Spaceship,Bank Transaction"))
    assert (erp.ok, erp.setting) == (False, "EZ360_ERPNEXT_DOCTYPES")
    assert "Spaceship does not exist" in erp.detail and "may not read Bank Transaction" in erp.detail


def test_connected_accounts_configured_for_a_standard_account_are_named(tmp_path: Path,
                                                                         servers: dict[str, str]) -> None:
    standard = dict(stripe_api_base=servers["standard"], stripe_api_key="sk_test_fixture_standard_account",
                    sandboxes="off")
    assert check_stripe(settings(tmp_path, servers, **standard)).ok  # the default: the key's own account
    refused = check_stripe(settings(tmp_path, servers, stripe_accounts="self,connected", **standard))
    assert (refused.ok, refused.setting) == (False, "EZ360_STRIPE_ACCOUNTS") and "EZ360_STRIPE_ACCOUNTS=self" in \
        refused.fix


def test_the_doctor_command_says_which_setting_to_fix(tmp_path: Path, servers: dict[str, str],
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    for name, value in {"EZ360_VAR_DIR": str(tmp_path / "var"), "EZ360_SANDBOXES": "on",
                        "EZ360_STRIPE_API_BASE": servers["stripe"], "EZ360_STRIPE_API_KEY": "sk_test_revoked_0000",
                        "EZ360_ERPNEXT_URL": servers["erpnext"], "EZ360_ERPNEXT_API_KEY": ERP_KEY,
                        "EZ360_ERPNEXT_API_SECRET": ERP_SECRET, "EZ360_ERPNEXT_DOCTYPES": "Company,Spaceship",
                        "EZ360_DATABASE_URL": "", "EZ360_WAREHOUSE_URL": ""}.items():
        monkeypatch.setenv(name, value)
    result = CliRunner().invoke(app, ["doctor"])
    assert result.exit_code == 1
    assert "FAIL Stripe" in result.output and "FAIL ERPNext" in result.output and "Spaceship" in result.output
    assert "fix: EZ360_ERPNEXT_DOCTYPES, EZ360_STRIPE_API_KEY" in result.output


def test_the_pipeline_starts_the_sandboxes_only_when_the_setting_is_on(tmp_path: Path) -> None:
    import typer

    from ez360.cli.app import sandboxes_running
    from ez360.cli.processes import port_open

    port = free_port()
    loopback = dict(var_dir=tmp_path / "var", stripe_api_base=f"http://127.0.0.1:{port}", stripe_sandbox_port=port,
                    erpnext_url=f"http://127.0.0.1:{port}", erpnext_sandbox_port=port)
    assert Settings(_env_file=None, environment="production", **loopback).uses_sandboxes is False
    assert Settings(_env_file=None, environment="development", **loopback).uses_sandboxes is True
    with sandboxes_running(Settings(_env_file=None, sandboxes="off", **loopback)):
        assert not port_open("127.0.0.1", port)  # a loopback URL alone starts nothing
    with pytest.raises(typer.Exit):  # on: it sets out to start them, and needs the demo files for that
        with sandboxes_running(Settings(_env_file=None, sandboxes="on", **loopback)):
            pass
