"""Stopping the platform stops everything: `ez360 serve` under a supervisor's signals (systemd, Docker, a shell).

Each test starts the command as an operator would (its own session, settings from EZ360_* variables only), sends
the signal a supervisor sends, and then looks at the machine: every port free, no process of the tree left.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap

import psutil
import pytest

from tests.support.commands import (
    EZ360,
    Running,
    cmdline,
    kill_all,
    listening,
    platform_env,
    ports,
    still_alive,
    wait_until_gone,
)

GRACE = 60  # EZ360_STOP_GRACE_SECONDS here: a loaded machine stops Dagster slowly; a clean stop returns at once
STOP_WITHIN = GRACE + 30  # the guardians' grace, the supervisor's margin, and a loaded machine

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def seeded(tmp_path_factory):
    """Demo data for the sandboxes (they serve files), seeded once for the module."""
    var = tmp_path_factory.mktemp("supervision") / "var"
    env = platform_env(var, EZ360_STOP_GRACE_SECONDS=str(GRACE))
    subprocess.run([*EZ360, "seed"], env=env, check=True, capture_output=True, timeout=300)
    return var


def _serve(seeded, log, *args: str) -> tuple[Running, dict]:
    """`ez360 serve ...` with a var dir of its own (Dagster storage, logs) and the seeded demo files."""
    env = platform_env(log.parent / f"{log.stem}-var", EZ360_STOP_GRACE_SECONDS=str(GRACE),
                       EZ360_DEMO_DIR=str(seeded / "demo"))
    return Running([*EZ360, "serve", *args], env, log), env


def _started(run: Running) -> list[psutil.Process]:
    run.wait_for("Press Ctrl-C")
    return run.tree()


@pytest.fixture(scope="module")
def two_platforms(seeded, tmp_path_factory):
    """Two whole platforms (`serve all`) started side by side, since starting one is the slow part: one is stopped
    by a supervisor's SIGTERM, the other loses its parent to SIGKILL."""
    logs = tmp_path_factory.mktemp("serve-all")
    runs = [_serve(seeded, logs / f"{name}.log", "all") for name in ("sigterm", "sigkill")]
    trees = [_started(run) for run, _ in runs]
    yield [(run, env, tree) for (run, env), tree in zip(runs, trees, strict=True)]
    for tree in trees:
        kill_all(tree)


def test_sigterm_to_the_group_of_serve_all_stops_every_server_and_frees_every_port(two_platforms):
    run, env, tree = two_platforms[0]
    assert all(listening(port) for port in ports(env).values()), run.output
    assert any("dagster-daemon" in cmdline(p) for p in tree)
    os.killpg(run.proc.pid, signal.SIGTERM)  # as systemd and `kill -TERM -- -PGID` send it
    assert run.wait_exit(STOP_WITHIN) == 0, run.output
    alive, busy = wait_until_gone(tree, list(ports(env).values()), timeout=5)
    assert alive == [] and busy == [], run.output
    for name in ("stripe-sandbox", "erpnext-sandbox", "api", "dashboards", "dagster", "dagster-daemon"):
        assert f"stopped {name}" in run.output


def test_servers_die_with_their_parent_when_it_is_killed(two_platforms):
    run, env, tree = two_platforms[1]
    assert all(listening(port) for port in ports(env).values()), run.output
    os.kill(run.proc.pid, signal.SIGKILL)  # no handler runs: only the parent-death signal can help
    run.proc.wait(timeout=10)
    alive, busy = wait_until_gone(tree, list(ports(env).values()), timeout=STOP_WITHIN)
    assert alive == [] and busy == []


def test_a_server_that_dies_on_its_own_is_reported_and_the_others_are_stopped(seeded, tmp_path):
    run, env = _serve(seeded, tmp_path / "serve.log", "sandboxes")
    tree = _started(run)
    try:
        stripe = next(p for p in tree if "ingest.sandboxes.stripe_server" in cmdline(p))
        stripe.kill()
        assert run.wait_exit(STOP_WITHIN) != 0
        assert "stripe-sandbox exited on its own" in run.output
        assert "the other servers are stopped too" in run.output
        alive, busy = wait_until_gone(tree, [ports(env)["erpnext_sandbox"]], timeout=5)
        assert alive == [] and busy == []
    finally:
        kill_all(tree)


def test_keep_going_keeps_the_others_up_and_sighup_then_stops_them(seeded, tmp_path):
    run, env = _serve(seeded, tmp_path / "serve.log", "sandboxes", "--keep-going")
    tree = _started(run)
    try:
        next(p for p in tree if "ingest.sandboxes.stripe_server" in cmdline(p)).kill()
        # the death is reported while the ERPNext sandbox keeps serving
        run.wait_for("stripe-sandbox exited on its own", timeout=60)
        assert run.proc.poll() is None and listening(ports(env)["erpnext_sandbox"])
        os.kill(run.proc.pid, signal.SIGHUP)  # the terminal went away
        assert run.wait_exit(STOP_WITHIN) != 0  # a server died during the run: not a clean exit
        alive, busy = wait_until_gone(tree, [ports(env)["erpnext_sandbox"]], timeout=5)
        assert alive == [] and busy == []
    finally:
        kill_all(tree)


STUBBORN = textwrap.dedent("""
    import signal, subprocess, sys, time
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    # a grandchild that leaves our process group and session, as daemonizing servers do
    subprocess.Popen([sys.executable, "-c", "import time; time.sleep(600)"], start_new_session=True)
    print("ready", flush=True)
    time.sleep(600)
""")


def test_the_guardian_kills_what_ignores_sigterm_and_what_left_its_group(tmp_path):
    run = Running([sys.executable, "-m", "ez360.cli.guard", "--name", "stubborn", "--grace", "1", "--",
                   sys.executable, "-c", STUBBORN], dict(os.environ), tmp_path / "guard.log")
    guard = run.proc
    run.wait_for("ready", timeout=60)
    tree = run.tree()
    try:
        assert len(tree) == 3  # guardian, server, the server's own-session grandchild
        os.killpg(guard.pid, signal.SIGTERM)
        assert guard.wait(timeout=30) == 3  # something had to be killed
        assert "stubborn: killed 2 process(es) still running after 1s" in run.output
        assert still_alive(tree) == []
    finally:
        kill_all(tree)
