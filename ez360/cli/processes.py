"""Starting and stopping the platform's servers as child processes with one shared configuration."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from ez360.cli.guard import KILLED_EXIT, die_with_parent
from ez360.core.settings import Settings

ROOT = Path(__file__).resolve().parents[2]


class ServiceError(RuntimeError):
    pass


@dataclass(frozen=True)
class Service:
    name: str
    purpose: str
    argv: list[str]
    host: str
    port: int
    health_path: str | None  # None: no HTTP; healthy when still running after a short grace period

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"


def child_env(settings: Settings) -> dict[str, str]:
    """The parent's environment plus every resolved setting, so children agree on paths and URLs."""
    env = dict(os.environ)
    env.update({
        "EZ360_VAR_DIR": str(settings.var_dir), "EZ360_DATABASE_URL": settings.database_url,
        "EZ360_WAREHOUSE_URL": settings.warehouse_url, "EZ360_DAGSTER_HOME": str(settings.dagster_home),
        "EZ360_PUBLISHED_DIR": str(settings.published_dir), "EZ360_DEMO_DIR": str(settings.demo_dir),
        "DAGSTER_HOME": str(settings.dagster_home), "RUNTIME__DLTHUB_TELEMETRY": "false",
        # nothing may phone home: usage statistics off for every tool that has them
        "STREAMLIT_BROWSER_GATHER_USAGE_STATS": "false", "DAGSTER_DISABLE_TELEMETRY": "true",
        "DBT_SEND_ANONYMOUS_USAGE_STATS": "false", "DO_NOT_TRACK": "1",
        "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH", "")])),
    })
    return env


def api_workers(settings: Settings, requested: int | None = None) -> int:
    """Processes serving the API: as asked, else one per core on PostgreSQL (a Python process uses one core at
    a time) and one on the embedded SQLite database (a single writer: more processes only queue on its lock)."""
    if requested:
        return requested
    if settings.database_url.startswith("sqlite"):
        return 1
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)


def services(settings: Settings, host: str | None = None, port: int | None = None,
             workers: int | None = None) -> dict[str, Service]:
    host = host or settings.host
    workers = api_workers(settings, workers)
    py = sys.executable
    demo = settings.demo_dir

    def pick(default: int) -> int:
        return port or default

    return {
        "stripe-sandbox": Service(
            "stripe-sandbox", "Stripe API sandbox serving the demo world",
            [py, "-m", "ingest.sandboxes.stripe_server", "--data", str(demo / "stripe.json"), "--host", host,
             "--port", str(settings.stripe_sandbox_port)], host, settings.stripe_sandbox_port, "/"),
        "erpnext-sandbox": Service(
            "erpnext-sandbox", "ERPNext (Frappe REST) sandbox serving the demo world",
            [py, "-m", "ingest.sandboxes.frappe_server", "--data", str(demo / "erpnext.json"), "--host", host,
             "--port", str(settings.erpnext_sandbox_port)], host, settings.erpnext_sandbox_port, "/"),
        "api": Service(
            "api", "operational API (staff records, health, OpenAPI at /openapi.json)",
            [py, "-m", "uvicorn", "operational_api.app:create_app", "--factory", "--host", host,
             "--port", str(pick(settings.api_port)), "--no-access-log",
             *(["--workers", str(workers)] if workers > 1 else []),
             # X-Forwarded-For only from EZ360_TRUSTED_PROXIES (uvicorn would believe 127.0.0.1 by default)
             *(["--forwarded-allow-ips", settings.trusted_proxies] if settings.trusted_proxy_list
               else ["--no-proxy-headers"])], host, pick(settings.api_port),
            "/health/live"),
        "dashboards": Service(
            "dashboards", "Streamlit dashboards (revenue by company and month)",
            [py, "-m", "streamlit", "run", str(ROOT / "apps" / "dashboard.py"), "--server.port",
             str(pick(settings.dashboards_port)), "--server.address", host, "--server.headless", "true",
             "--browser.gatherUsageStats", "false", "--server.fileWatcherType", "none",
             "--client.toolbarMode", "viewer"], host, pick(settings.dashboards_port), "/_stcore/health"),
        "dagster": Service(
            "dagster", "Dagster UI (runs, assets, checks, schedules)",
            [str(Path(py).parent / "dagster-webserver"), "-m", "pipelines.definitions", "-h", host, "-p",
             str(pick(settings.dagster_port))], host, pick(settings.dagster_port), "/server_info"),
        "dagster-daemon": Service(
            "dagster-daemon", "Dagster daemon (runs schedules and sensors once you turn them on in the UI)",
            [str(Path(py).parent / "dagster-daemon"), "run", "-m", "pipelines.definitions"], host, 0, None),
    }


def port_open(host: str, port: int) -> bool:
    with socket.socket() as sock:
        sock.settimeout(0.5)
        return sock.connect_ex((host, port)) == 0


def start(service: Service, settings: Settings, log_dir: Path, timeout: float | None = None) -> subprocess.Popen:
    """Start a service under its guardian (`ez360.cli.guard`) and wait until it answers HTTP; fail with its log tail
    if it dies or stalls. The returned process is the guardian: it leads its own process group and dies with us."""
    if service.port and port_open(service.host, service.port):
        raise ServiceError(f"{service.name}: port {service.port} on {service.host} is already in use "
                           f"(stop what runs there or choose another port with --port / EZ360_*_PORT)")
    log_dir.mkdir(parents=True, exist_ok=True)
    log_path = log_dir / f"{service.name}.log"
    log = log_path.open("wb")
    argv = [sys.executable, "-m", "ez360.cli.guard", "--name", service.name,
            "--grace", str(settings.stop_grace_seconds), "--", *service.argv]
    proc = subprocess.Popen(argv, env=child_env(settings), cwd=ROOT, stdout=log, stderr=subprocess.STDOUT,
                            stdin=subprocess.DEVNULL, start_new_session=True, preexec_fn=die_with_parent)
    proc.service_name = service.name  # type: ignore[attr-defined]  # for what stop() reports
    if service.health_path is None:
        deadline = time.monotonic() + 3
        while time.monotonic() < deadline and proc.poll() is None:
            time.sleep(0.1)
        if proc.poll() is not None:
            raise ServiceError(f"{service.name} exited with {proc.returncode}:\n{_tail(log_path)}")
        return proc
    timeout = settings.start_timeout_seconds if timeout is None else timeout
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise ServiceError(f"{service.name} exited with {proc.returncode}:\n{_tail(log_path)}")
        try:
            httpx.get(service.url + service.health_path, timeout=2)
            return proc
        except httpx.HTTPError:
            time.sleep(0.3)
    stop([proc])
    raise ServiceError(f"{service.name} did not answer on {service.url} within {timeout:.0f}s:\n{_tail(log_path)}")


def _leads_group(proc: subprocess.Popen) -> bool:
    try:
        return os.getpgid(proc.pid) == proc.pid
    except ProcessLookupError:
        return False


def _signal(proc: subprocess.Popen, sig: int) -> None:
    """SIGTERM/SIGKILL to the child's whole process group when it leads one (our guardians do), else to it alone."""
    try:
        if _leads_group(proc):
            os.killpg(proc.pid, sig)
        else:
            proc.send_signal(sig)
    except ProcessLookupError:
        pass


def stop(procs: list[subprocess.Popen], grace: float = 15.0, report=None) -> list[str]:
    """Stop children: SIGTERM to each one's process group, wait up to `grace` seconds for all of them, then SIGKILL
    what is left. Returns the names of the children that had to be killed (or whose guardian had to kill)."""
    running = [p for p in procs if p.poll() is None]
    for proc in running:
        _signal(proc, signal.SIGTERM)
    deadline = time.monotonic() + grace
    killed: list[str] = []
    for proc in running:
        name = getattr(proc, "service_name", str(proc.pid))
        try:
            proc.wait(timeout=max(0.0, deadline - time.monotonic()))
        except subprocess.TimeoutExpired:
            _signal(proc, signal.SIGKILL)
            proc.wait(timeout=30)
            killed.append(name)
        else:
            if proc.returncode == KILLED_EXIT:
                killed.append(name)  # its guardian had to SIGKILL part of it
        if report:
            report(f"stopped {name}" + (" (killed)" if name in killed else ""))
    return killed


def command_line(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace").strip()[:200]
    except OSError:
        return "?"


def kill_pid(pid: int) -> None:
    try:
        os.kill(pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass


def _tail(path: Path, lines: int = 20) -> str:
    return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
