"""Acceptance: `ez360 demo` (what `bin/demo` runs) seeds, runs the pipeline and serves every UI on loopback."""

from __future__ import annotations

import os
import queue
import signal
import subprocess
import sys
import threading
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
from tests.support.platform import configure

pytestmark = pytest.mark.slow


def _reader(stream, lines: queue.Queue) -> None:
    for line in stream:
        lines.put(line)


def _wait_for(lines: queue.Queue, marker: str, proc: subprocess.Popen, timeout: float, seen: list[str]) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            line = lines.get(timeout=1)
        except queue.Empty:
            if proc.poll() is not None:
                break
            continue
        seen.append(line)
        if marker in line:
            return
    pytest.fail(f"`ez360 demo` never printed {marker!r}:\n{''.join(seen[-40:])}")


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
    """Each company's gross revenue per currency as the dashboard must show it, from the ops DB itself."""
    engine = create_engine(settings.database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("""select c.slug, i.currency, sum(i.total_minor) from invoices i
                                    join companies c on c.id = i.company_id
                                    where i.status in ('sent', 'partially_paid', 'paid')
                                    group by c.slug, i.currency""")).all()
    engine.dispose()
    totals: dict[str, list[str]] = {}
    for slug, currency, minor in rows:
        totals.setdefault(slug, []).append(format_money(int(minor), currency))
    return totals


def test_demo_serves_api_dashboards_and_dagster_with_revenue_for_every_company(tmp_path, monkeypatch):
    configure(monkeypatch, tmp_path / "var")
    settings = Settings(_env_file=None)
    proc = subprocess.Popen([sys.executable, "-m", "ez360.cli", "demo"], stdout=subprocess.PIPE,
                            stderr=subprocess.STDOUT, text=True, env={**os.environ, "COLUMNS": "200"},
                            start_new_session=True)
    lines: queue.Queue = queue.Queue()
    threading.Thread(target=_reader, args=(proc.stdout, lines), daemon=True).start()
    seen: list[str] = []
    try:
        _wait_for(lines, "Press Ctrl-C", proc, 600, seen)
        output = "".join(seen)
        for email in ("owner@northwind.example.com", "finance@aurora.example.com", "viewer@sakura.example.com"):
            assert email in output
        host = "http://127.0.0.1"
        assert httpx.get(f"{host}:{settings.api_port}/health/ready").json()["status"] == "ok"
        assert httpx.get(f"{host}:{settings.dashboards_port}/_stcore/health").status_code == 200
        assert httpx.get(f"{host}:{settings.dagster_port}/server_info").status_code == 200
        for port in (settings.api_port, settings.dashboards_port, settings.dagster_port):
            assert f"{host}:{port}" in output
        children = [" ".join(c.cmdline()) for c in psutil.Process(proc.pid).children(recursive=True)]
        assert any("dagster-daemon" in c for c in children), "no Dagster daemon: schedules would never run"

        expected = gross_by_company(settings)
        with chromium() as browser:
            page = browser.new_page()
            page.goto(f"{host}:{settings.dashboards_port}/", wait_until="domcontentloaded")
            expect(page.get_by_role("heading", name="Revenue by company and month")).to_be_visible(timeout=60_000)
            for company in COMPANIES:
                section = page.get_by_test_id("stVerticalBlock").filter(
                    has=page.get_by_role("heading", name=company.name, exact=True)).last
                for total in expected[company.slug]:
                    expect(section.get_by_test_id("stMetricValue").filter(has_text=total)).to_have_text(
                        total, timeout=30_000)
            expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)
            page.screenshot(path=str(tmp_path / "demo-dashboard.png"), full_page=True)

        non_loopback = {a for a in _tree_addresses(psutil.Process(proc.pid)) if not a.startswith(("127.", "::1"))}
        assert non_loopback == set(), f"demo processes talk beyond loopback: {non_loopback}"
    finally:
        os.killpg(proc.pid, signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode is not None
