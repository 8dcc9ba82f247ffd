"""The dashboards in a real headless Chromium (Playwright) behind the web app's one sign-on, for the browser tests
and the end-to-end pipeline test: the staff web app (real uvicorn, in this process) and `streamlit run
apps/dashboard.py` (a real process) on free ports of the same host, so the browser sends the web app's session
cookie to both.

Needs Chromium at /usr/bin/chromium (Debian: `apt-get install -y chromium`); `playwright install` is not used.
Screenshots go to $EZ360_TEST_ARTIFACTS/dashboards (default var/test-artifacts/dashboards of the checkout).
"""

from __future__ import annotations

import os
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from ez360.core.settings import Settings
from operational_api.app import create_app
from tests.support.browser import chromium
from tests.support.live_server import serve_app
from tests.support.platform import free_port

REPO = Path(__file__).resolve().parents[2]
TIMEOUT_MS = 30_000
PHONE = {"width": 390, "height": 844}
# absolute: the end-to-end test runs from a temporary folder (tests.support.platform.configure changes directory)
ARTIFACTS = (REPO / os.environ.get("EZ360_TEST_ARTIFACTS", "var/test-artifacts")).resolve() / "dashboards"


class Dashboard:
    """`streamlit run apps/dashboard.py` as the CLI launches it, on a free port, with EZ360_* from `env`."""

    def __init__(self, port: int, env_settings: dict[str, str], log_path: Path):
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log_path = log_path
        env = {k: v for k, v in os.environ.items() if not k.startswith(("EZ360_", "STREAMLIT_"))}
        env.update(env_settings)
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
            time.sleep(0.3)  # polling a server's health endpoint, not waiting for a state in the page
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


@dataclass
class SignOn:
    """The web app and the dashboards behind it, and the browser that visits both."""
    web: str
    dashboards: Dashboard
    settings: Settings  # the web app's
    browser: object

    def context(self, **kwargs):
        context = self.browser.new_context(viewport={"width": 1400, "height": 2400}, accept_downloads=True,
                                           **kwargs)
        context.set_default_timeout(TIMEOUT_MS)
        return context


@contextmanager
def web_app_and_dashboards(settings: Settings, dashboard_env: dict[str, str], log_dir: Path) -> Iterator[SignOn]:
    """Serve the web app with `settings` (its public address filled in here) and the dashboards with the EZ360_*
    variables `dashboard_env` plus the addresses that tie the two together, and launch Chromium."""
    from playwright.sync_api import expect

    expect.set_options(timeout=TIMEOUT_MS)  # a loaded machine: wait longer for the same states
    port = free_port()
    settings.dashboards_public_url = f"http://127.0.0.1:{port}"
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    with serve_app(create_app(settings)) as web, chromium() as browser:
        settings.public_base_url = web
        env = {"EZ360_ENVIRONMENT": "test", "EZ360_SESSION_COOKIE_SECURE": "false", "EZ360_PUBLIC_BASE_URL": web,
               "EZ360_DASHBOARDS_PUBLIC_URL": settings.dashboards_public_url, "EZ360_DASHBOARDS_CACHE_SECONDS": "0",
               **dashboard_env}
        dashboards = Dashboard(port, env, log_dir / "streamlit.log")
        try:
            dashboards.wait_healthy()
            yield SignOn(web, dashboards, settings, browser)
        finally:
            dashboards.stop()


def settled(page) -> None:
    """Wait until the script run has finished (Streamlit shows its running widget meanwhile)."""
    from playwright.sync_api import expect

    expect(page.get_by_test_id("stApp")).to_have_attribute("data-test-script-state", "notRunning")
    expect(page.get_by_test_id("stStatusWidget")).to_have_count(0)
    frames = page.get_by_test_id("stDataFrame")
    for i in range(frames.count()):  # tables are canvas grids: wait for their (accessible) cells
        if frames.nth(i).is_visible():  # (a collapsed expander's table draws no cells)
            expect(frames.nth(i).locator('[data-testid^="glide-cell-"]').first).to_be_attached()


def sign_in_on_the_web_app(page, email: str, password: str) -> None:
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name="Sign in to EZ360")).to_be_visible()
    page.get_by_label("Email address").fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def grid_rows(frame) -> list[list[str]]:
    """A st.dataframe's rows as the browser shows them (its accessible cells), header row first. Waits for the
    grid's cells first: a rerun redraws the grid, briefly empty."""
    from playwright.sync_api import expect

    expect(frame.locator('table[role=grid] [data-testid^="glide-cell-"]').first).to_be_attached()
    return frame.locator("table[role=grid] tr").evaluate_all(
        "rows => rows.map(r => Array.from(r.children).map(c => c.innerText.trim()))")
