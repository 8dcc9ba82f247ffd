"""The demo world on the embedded defaults after its first pipeline run, shared by the tests that go on from there.

Seeding the demo (seed 42, scale 1) and running the whole pipeline once (ingest, every dbt model and test, the
gates, the publish) is the most expensive step of the suite. The incremental runs (test_orchestration_incremental)
and the whole embedded slice (test_pipeline_end_to_end) both start from exactly that state, so they share one
world: the incremental module's runs first (a run with no new data, a run killed in dbt, a run after a new
payment), then the slice (finance's decision in the browser, the next run, the failing gates).
tests/conftest.py keeps them on one worker in that order.

The world's EZ360_* environment (free ports, the var dir, the alert addresses) is set only while a test uses it
(`apply`), never for the rest of the session. Alerts go to an SMTP server (aiosmtpd) and a webhook kept up for
the session.
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass
from pathlib import Path

import pytest

from ez360.core.settings import Settings
from tests.support.platform import configure, free_port
from tests.support.security_world import Inbox, smtp_server
from tests.support.webhook import Webhook

SEED = 42
ALERTS_TO = "data-team@example.test"


@dataclass
class EmbeddedWorld:
    settings: Settings
    base: Path  # the var dir's parent: the working directory of the world's runs
    env: dict[str, str]  # the EZ360_* (and DAGSTER_HOME) variables the world was built with
    generated: object  # ez360.demo.generate's result: the sandbox files
    first: object  # the first run's pipelines.run result
    first_seconds: float
    inbox: Inbox
    hook: Webhook

    def apply(self, monkeypatch: pytest.MonkeyPatch) -> Settings:
        """The world's environment and working directory for one test or module; returns its settings."""
        for name, value in self.env.items():
            monkeypatch.setenv(name, value)
        monkeypatch.chdir(self.base)
        return self.settings


@contextmanager
def embedded_world(base: Path) -> Iterator[EmbeddedWorld]:
    from ez360.cli.app import sandboxes_running
    from ez360.demo.generate import generate
    from pipelines.run import run_pipeline

    with ExitStack() as stack:
        smtp_port = free_port()
        inbox = stack.enter_context(smtp_server(smtp_port))
        hook = stack.enter_context(Webhook())
        mp = pytest.MonkeyPatch()
        before = dict(os.environ)
        try:
            settings = configure(mp, base / "var", EZ360_SMTP_PORT=str(smtp_port), EZ360_ALERT_EMAIL_TO=ALERTS_TO,
                                 EZ360_ALERT_WEBHOOK_URL=hook.url)
            env = {name: value for name, value in os.environ.items() if before.get(name) != value}
            generated = generate(settings, SEED, 1)
            with sandboxes_running(settings):
                started = time.monotonic()
                first = run_pipeline(settings)
                seconds = time.monotonic() - started
        finally:
            mp.undo()
        yield EmbeddedWorld(settings, base, env, generated, first, seconds, inbox, hook)
