"""Acceptance: `bin/demo` seeds, runs the pipeline, serves every UI on loopback, refuses a second instance before
touching anything, and stops everything on Ctrl-C even as a background job."""

from __future__ import annotations

import signal
import subprocess
import time

import httpx
import psutil
import pytest
from playwright.sync_api import expect
from sqlalchemy import create_engine, text

from ez360.core.money import format_money
from ez360.core.settings import Settings
from ez360.demo.catalog import COMPANIES
from tests.support.browser import chromium
from tests.support.commands import EZ360, ROOT, cmdline, kill_all, platform_env, wait_until_gone

pytestmark = pytest.mark.slow


def _tree_addresses(root: psutil.Process) -> set[str]:
    addresses = set()
    for proc in [root, *root.children(recursive=True)]:
        try:
            for conn in proc.net_connections(kind="inet"):
                addresses.add(conn.laddr.ip)
                if conn.raddr:
                    addresses.add(conn.raddr.ip)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return addresses


def gross_by_company(settings) -> dict[str, list[str]]:
    """Each company's gross revenue per currency as the dashboard must show it, from the ops DB itself: issued
    invoices less their credit notes."""
    engine = create_engine(settings.database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("""select c.slug, i.currency, sum(i.total_minor) - coalesce(sum(
                                        (select sum(n.total_minor) from credit_notes n where n.invoice_id = i.id)), 0)
                                    from invoices i join companies c on c.id = i.company_id
                                    where i.status in ('sent', 'partially_paid', 'paid')
                                    group by c.slug, i.currency""")).all()
    engine.dispose()
    totals: dict[str, list[str]] = {}
    for slug, currency, minor in rows:
        totals.setdefault(slug, []).append(format_money(int(minor), currency))
    return totals


def test_demo_serves_api_dashboards_and_dagster_with_revenue_for_every_company(tmp_path, monkeypatch):
    """`bin/demo` started in the background from a non-interactive shell (SIGINT is ignored there unless the
    program installs its own handler), used, refused a second time, then stopped with SIGINT."""
    # the northwind owner is also the platform's admin here: one sign-in sees every company's revenue
    env = platform_env(tmp_path / "var", EZ360_STOP_GRACE_SECONDS="60",
                       EZ360_PLATFORM_ADMIN_EMAILS="owner@northwind.example.com")
    for name, value in env.items():
        if name.startswith("EZ360_"):
            monkeypatch.setenv(name, value)
    settings = Settings(_env_file=None)
    log, status, pid = tmp_path / "demo.log", tmp_path / "demo.status", tmp_path / "demo.pid"
    # a background job of a non-interactive shell (SIGINT and SIGQUIT ignored); the job's own shell records bin/demo's
    # pid and, when it ends, its exit status
    subprocess.run(["bash", "-c", f"( bin/demo > {log} 2>&1 & echo $! > {pid}; wait $!; echo $? > {status} ) &"],
                   cwd=ROOT, env=env, check=True, start_new_session=True)
    demo = psutil.Process(int(_wait_for_file(pid, 60)))
    tree: list[psutil.Process] = []
    try:
        _wait_for_log(log, "Press Ctrl-C", demo, 1800)
        output = log.read_text()
        tree = [demo, *demo.children(recursive=True)]
        for email in ("owner@northwind.example.com", "finance@aurora.example.com", "viewer@sakura.example.com"):
            assert email in output
        host = "http://127.0.0.1"
        assert httpx.get(f"{host}:{settings.api_port}/health/ready").json()["status"] == "ok"
        assert httpx.get(f"{host}:{settings.dashboards_port}/_stcore/health").status_code == 200
        assert httpx.get(f"{host}:{settings.dagster_port}/server_info").status_code == 200
        for port in (settings.api_port, settings.dashboards_port, settings.dagster_port):
            assert f"{host}:{port}" in output
        assert any("dagster-daemon" in cmdline(c) for c in tree), "no Dagster daemon: no schedules"

        expected = gross_by_company(settings)
        with chromium() as browser:
            page = browser.new_page()
            page.goto(f"{host}:{settings.dashboards_port}/revenue", wait_until="domcontentloaded")
            # one sign-on: the dashboards send the visitor to the web app's sign-in, and back once signed in
            expect(page.get_by_role("heading", name="Sign in to EZ360")).to_be_visible(timeout=60_000)
            page.get_by_label("Email address").fill("owner@northwind.example.com")
            page.get_by_label("Password", exact=True).fill(settings.demo_password.get_secret_value())
            page.get_by_role("button", name="Sign in").click()
            expect(page.get_by_role("heading", name="Revenue by company and month")).to_be_visible(timeout=60_000)
            for company in COMPANIES:
                section = page.get_by_test_id("stVerticalBlock").filter(
                    has=page.get_by_role("heading", name=company.name, exact=True)).last
                for total in expected[company.slug]:
                    expect(section.get_by_test_id("stMetricValue").filter(has_text=total)).to_have_text(
                        total, timeout=30_000)
            expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)
            page.screenshot(path=str(tmp_path / "demo-dashboard.png"), full_page=True)

        non_loopback = {a for a in _tree_addresses(demo) if not a.startswith(("127.", "::1"))}
        assert non_loopback == set(), f"demo processes talk beyond loopback: {non_loopback}"

        # a second demo while this one runs is refused before it touches anything (seeding would wipe the ops DB)
        ops_db = settings.var_dir / "ops.sqlite3"
        before = (ops_db.stat().st_mtime_ns, gross_by_company(settings))
        second = subprocess.run([*EZ360, "demo"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=120)
        assert second.returncode != 0 and "already in use" in second.stdout + second.stderr
        assert (ops_db.stat().st_mtime_ns, gross_by_company(settings)) == before

        demo.send_signal(signal.SIGINT)  # what Ctrl-C sends; ignored by default in a background job
        assert _wait_for_file(status, 120) == "0", log.read_text()[-3000:]
        alive, busy = wait_until_gone(tree, [settings.api_port, settings.dashboards_port, settings.dagster_port,
                                             settings.stripe_sandbox_port, settings.erpnext_sandbox_port], timeout=5)
        assert alive == [] and busy == []
    finally:
        kill_all(tree or [demo])


def _wait_for_file(path, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.read_text().strip():
            return path.read_text().strip()
        time.sleep(0.1)
    pytest.fail(f"{path} never written")


def _wait_for_log(log, marker: str, proc: psutil.Process, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if log.exists() and marker in log.read_text(errors="replace"):
            return
        if not proc.is_running() or proc.status() == psutil.STATUS_ZOMBIE:
            break
        time.sleep(1)
    pytest.fail(f"`bin/demo` never printed {marker!r}:\n{log.read_text(errors='replace')[-4000:]}")
