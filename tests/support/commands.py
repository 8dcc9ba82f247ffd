"""Long-running `ez360` commands as an operator starts them: their own session, output to a log file, an
environment of EZ360_* variables alone; and what is left of them after they stop."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import psutil
import pytest

from tests.support.platform import free_port

ROOT = Path(__file__).resolve().parents[2]
EZ360 = [sys.executable, "-m", "ez360.cli"]


def platform_env(var_dir: Path, **overrides: str) -> dict[str, str]:
    """Every setting pointed at `var_dir` and free ports, as environment variables for a child process."""
    stripe, erp = free_port(), free_port()
    env = {
        **os.environ, "EZ360_VAR_DIR": str(var_dir), "EZ360_DATABASE_URL": "", "EZ360_WAREHOUSE_URL": "",
        "EZ360_DAGSTER_STORAGE_URL": "", "EZ360_STRIPE_SANDBOX_PORT": str(stripe),
        "EZ360_STRIPE_API_BASE": f"http://127.0.0.1:{stripe}", "EZ360_ERPNEXT_SANDBOX_PORT": str(erp),
        "EZ360_ERPNEXT_URL": f"http://127.0.0.1:{erp}", "EZ360_API_PORT": str(free_port()),
        "EZ360_DASHBOARDS_PORT": str(free_port()), "EZ360_DAGSTER_PORT": str(free_port()),
        "DAGSTER_HOME": str(var_dir / "dagster"), "COLUMNS": "200",
    }
    env.update(overrides)
    return env


def ports(env: dict[str, str]) -> dict[str, int]:
    names = ("STRIPE_SANDBOX", "ERPNEXT_SANDBOX", "API", "DASHBOARDS", "DAGSTER")
    return {name.lower(): int(env[f"EZ360_{name}_PORT"]) for name in names}


def listening(port: int) -> bool:
    return any(c.laddr.port == port and c.status == psutil.CONN_LISTEN
               for c in psutil.net_connections(kind="tcp"))


class Running:
    """A command started in its own session, its combined output in a log file."""

    def __init__(self, argv: list[str], env: dict[str, str], log: Path, cwd: Path = ROOT) -> None:
        self.log = log
        with log.open("wb") as out:
            self.proc = subprocess.Popen(argv, env=env, cwd=cwd, stdout=out, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)

    @property
    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def wait_for(self, marker: str, timeout: float = 1800) -> None:
        """Until the output shows `marker`; fails at once if the command ends first."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if marker in self.output:
                return
            if self.proc.poll() is not None:
                break
            time.sleep(0.5)
        pytest.fail(f"never printed {marker!r} (status {self.proc.poll()}):\n{self.output[-4000:]}")

    def tree(self) -> list[psutil.Process]:
        root = psutil.Process(self.proc.pid)
        return [root, *root.children(recursive=True)]

    def wait_exit(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            pytest.fail(f"still running {timeout:.0f}s after the signal:\n{self.output[-3000:]}")



def cmdline(proc: psutil.Process) -> str:
    """A process's command line, or "" once it has exited (a zombie has none)."""
    try:
        return " ".join(proc.cmdline())
    except psutil.Error:
        return ""


def still_alive(processes: list[psutil.Process]) -> list[str]:
    alive = []
    for proc in processes:
        try:
            if proc.is_running() and proc.status() != psutil.STATUS_ZOMBIE:
                alive.append(f"{proc.pid} {' '.join(proc.cmdline())[:120]}")
        except psutil.NoSuchProcess:
            continue
    return alive


def kill_all(processes: list[psutil.Process]) -> None:
    """Last-resort clean-up after a failed assertion, so no test leaves servers behind."""
    for proc in processes:
        try:
            proc.kill()
        except psutil.Error:
            pass


def wait_until_gone(processes: list[psutil.Process], ports_: list[int], timeout: float) -> tuple[list, list]:
    """Polls until every process has exited and every port is free, or the timeout; returns what remains."""
    deadline = time.monotonic() + timeout
    while True:
        alive, busy = still_alive(processes), [p for p in ports_ if listening(p)]
        if (not alive and not busy) or time.monotonic() > deadline:
            return alive, busy
        time.sleep(0.25)
