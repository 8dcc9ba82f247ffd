"""The Streamlit dashboard in a real browser (Chromium via Playwright), reading a real published snapshot.

Needs Chromium at /usr/bin/chromium (Debian: `apt-get install -y chromium`); `playwright install` is not used.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest

from ez360.core.warehouse import parse_warehouse_url
from pipelines.publish import publish, record_gate_failure
from tests.support.platform import free_port
from tests.test_publish import EXPECTED_GROSS, MART, duckdb_settings, make_duckdb_warehouse

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
CHROMIUM = "/usr/bin/chromium"
TIMEOUT_MS = 30_000



class Dashboard:
    """`streamlit run apps/dashboard.py` as the CLI launches it, on a free port, with EZ360_* pointing at var_dir."""

    def __init__(self, var_dir: Path, log_path: Path):
        settings = duckdb_settings(var_dir)
        self.var_dir = var_dir
        self.warehouse = parse_warehouse_url(settings.warehouse_url)
        self.published_dir = settings.published_dir
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EZ360_", "STREAMLIT_"))}
        env.update(
            EZ360_ENVIRONMENT="test", EZ360_VAR_DIR=str(var_dir), EZ360_WAREHOUSE_URL=settings.warehouse_url,
            EZ360_PUBLISHED_DIR=str(settings.published_dir),
        )
        self._log = open(log_path, "w")
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "streamlit", "run", "apps/dashboard.py", "--server.port", str(self.port),
             "--server.address", "127.0.0.1", "--server.headless", "true", "--browser.gatherUsageStats", "false",
             "--server.fileWatcherType", "none"],
            cwd=REPO, env=env, stdout=self._log, stderr=subprocess.STDOUT,
        )

    def wait_healthy(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                pytest.fail(f"streamlit exited with {self.proc.returncode}:\n{self.log_path.read_text()}")
            try:
                with urllib.request.urlopen(f"{self.url}/_stcore/health", timeout=2) as resp:
                    if resp.status == 200 and resp.read().strip() == b"ok":
                        return
            except OSError:
                pass
            time.sleep(0.3)
        pytest.fail(f"streamlit did not answer on {self.url} within {timeout}s:\n{self.log_path.read_text()}")

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(timeout=5)
        self._log.close()


@pytest.fixture
def dashboard(tmp_path) -> Iterator[Dashboard]:
    server = Dashboard(tmp_path / "var", tmp_path / "streamlit.log")
    try:
        server.wait_healthy()
        yield server
    finally:
        server.stop()


@pytest.fixture
def browser():
    if not Path(CHROMIUM).exists():
        if os.environ.get("CI", "").lower() == "true":
            pytest.fail(f"CI requires Chromium at {CHROMIUM} (apt-get install -y chromium)")
        pytest.skip(f"SKIPPING BROWSER TEST: no Chromium at {CHROMIUM} (apt-get install -y chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as pw:
        chromium = pw.chromium.launch(
            executable_path=CHROMIUM, args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"])
        try:
            yield chromium
        finally:
            chromium.close()


def _open(browser, url: str):
    page = browser.new_page(viewport={"width": 1400, "height": 2400})  # tall: Streamlit scrolls inside
    page.set_default_timeout(TIMEOUT_MS)
    requests: list[str] = []
    page.on("request", lambda request: requests.append(request.url))
    page.goto(url)
    return page, requests


def _settled(page) -> None:
    """Wait until the script run has finished (Streamlit shows its running widget meanwhile)."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)
    frames = page.get_by_test_id("stDataFrame")
    for i in range(frames.count()):  # tables are canvas grids: wait for their (accessible) cells
        expect(frames.nth(i).locator('[data-testid^="glide-cell-"]').first).to_be_attached()


def _only_local(requests: list[str], base: str) -> list[str]:
    return [u for u in requests if not u.startswith((base, "data:", "blob:", "about:"))]


def test_dashboard_shows_every_company_with_exact_totals_and_warns_after_a_gate_failure(
        dashboard, browser, tmp_path):
    from playwright.sync_api import expect

    make_duckdb_warehouse(dashboard.warehouse.path)
    publish(dashboard.warehouse, dashboard.published_dir, [MART], run_id="run-good-1")

    page, requests = _open(browser, dashboard.url)
    expect(page.get_by_role("heading", name="Revenue by company and month")).to_be_visible()
    for company, totals in EXPECTED_GROSS.items():
        section = page.get_by_test_id("stVerticalBlock").filter(
            has=page.get_by_role("heading", name=company, exact=True)).last
        expect(section).to_be_visible()
        for total in totals:
            expect(section.get_by_test_id("stMetricValue").filter(has_text=total)).to_have_text(total)
    expect(page.get_by_test_id("stCaptionContainer").filter(has_text="run-good-1")).to_be_visible()
    expect(page.get_by_test_id("stAlertContentWarning")).to_have_count(0)
    _settled(page)
    # The monthly tables carry exact figures too (one month of Acme, of Kaizen and of Gulf's KWD).
    cells = page.get_by_test_id("stDataFrame").locator('[data-testid^="glide-cell-"]')
    for figure in ("12,345.67 USD", "2,345.67 USD", "234,000 JPY", "2.345 KWD", "0.345 KWD"):
        expect(cells.filter(has_text=re.compile(rf"^\s*{re.escape(figure)}\s*$")).first).to_be_attached()
    page.screenshot(path=tmp_path / "dashboard.png", full_page=True)

    # The next run fails its gate: same figures, plus a visible warning naming the failed checks.
    make_duckdb_warehouse(dashboard.warehouse.path, [])  # the bad run emptied the mart
    record_gate_failure(dashboard.warehouse, dashboard.published_dir, "run-bad-2",
                        ["gross_equals_net_plus_tax", "currency_is_iso_4217"])
    page.reload()
    warning = page.get_by_test_id("stAlertContentWarning")
    expect(warning).to_contain_text("run-bad-2")
    expect(warning).to_contain_text("gross_equals_net_plus_tax, currency_is_iso_4217")
    expect(warning).to_contain_text("last good run run-good-1")
    for totals in EXPECTED_GROSS.values():
        for total in totals:
            expect(page.get_by_test_id("stMetricValue").filter(has_text=total)).to_have_count(1)
    _settled(page)
    page.screenshot(path=tmp_path / "dashboard_gate_failed.png", full_page=True)

    # The company filter: removing Kaizen KK removes its section only.
    page.get_by_test_id("stMultiSelect").get_by_role("button", name="Remove Kaizen KK").click()
    expect(page.get_by_role("heading", name="Kaizen KK", exact=True)).to_have_count(0)
    expect(page.get_by_role("heading", name="Acme Consulting", exact=True)).to_be_visible()
    expect(page.get_by_test_id("stMetricValue").filter(has_text="1,234,000 JPY")).to_have_count(0)

    assert _only_local(requests, dashboard.url) == [], "the page made outbound requests"


def test_dashboard_explains_how_to_run_the_pipeline_when_nothing_is_published(dashboard, browser, tmp_path):
    from playwright.sync_api import expect

    page, requests = _open(browser, dashboard.url)
    expect(page.get_by_role("heading", name="Revenue by company and month")).to_be_visible()
    info = page.get_by_test_id("stAlertContentInfo")
    expect(info).to_contain_text("Nothing has been published yet")
    expect(info).to_contain_text("ez360 pipeline run")
    expect(page.get_by_test_id("stMetricValue")).to_have_count(0)
    _settled(page)
    page.screenshot(path=tmp_path / "dashboard_empty.png", full_page=True)
    assert _only_local(requests, dashboard.url) == []
