"""A whole platform in a temporary folder: settings via EZ360_* variables, free ports for the sandboxes."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from ez360.core.settings import Settings


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def configure(monkeypatch: pytest.MonkeyPatch, var_dir: Path, **overrides: str) -> Settings:
    """Point every EZ360_* setting at `var_dir` and free ports; returns the settings children will see."""
    stripe_port, erp_port = free_port(), free_port()
    env = {
        "EZ360_VAR_DIR": str(var_dir), "EZ360_STRIPE_SANDBOX_PORT": str(stripe_port),
        "EZ360_STRIPE_API_BASE": f"http://127.0.0.1:{stripe_port}", "EZ360_ERPNEXT_SANDBOX_PORT": str(erp_port),
        "EZ360_ERPNEXT_URL": f"http://127.0.0.1:{erp_port}", "EZ360_API_PORT": str(free_port()),
        "EZ360_DASHBOARDS_PORT": str(free_port()), "EZ360_DAGSTER_PORT": str(free_port()),
        "EZ360_DATABASE_URL": "", "EZ360_WAREHOUSE_URL": "", "EZ360_DAGSTER_STORAGE_URL": "",
        **overrides,
    }
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    monkeypatch.setenv("DAGSTER_HOME", str(var_dir / "dagster"))
    var_dir.parent.mkdir(parents=True, exist_ok=True)
    monkeypatch.chdir(var_dir.parent)
    return Settings(_env_file=None)
