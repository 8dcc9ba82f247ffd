"""Running the platform's servers as one unit under a supervisor's signals (`ez360 serve ...`, `ez360 demo`).

SIGTERM, SIGINT and SIGHUP all mean "stop": each child (a guardian leading its own process group, see
`ez360.cli.guard`) gets SIGTERM, the guardians stop their servers within the grace period, and whatever is still
running after it is SIGKILLed. The command exits 0 when everything stopped on its own and non-zero when something had
to be killed or a server died by itself; stderr says what was stopped.

The handlers are installed explicitly, SIGINT included: a shell starts background jobs with SIGINT ignored, and
Python keeps an inherited "ignore" unless told otherwise. Children never outlive us: each guardian has the
parent-death signal set, and this process is a child subreaper so nothing it started is re-parented to init while it
is still cleaning up.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path

from ez360.cli import processes
from ez360.cli.guard import PR_SET_CHILD_SUBREAPER, STOP_SIGNALS, descendants, prctl, reap_zombies
from ez360.core.settings import Settings


class StopRequested(KeyboardInterrupt):
    """A stop signal arrived; unwinds whatever runs (a pipeline, a wait) like Ctrl-C does."""

    def __init__(self, signum: int) -> None:
        super().__init__(signal.Signals(signum).name)
        self.signum = signum


class ChildDied(RuntimeError):
    pass


def _say(message: str) -> None:
    print(f"ez360: {message}", file=sys.stderr, flush=True)


class Supervisor:
    """`with Supervisor(settings) as sup: sup.start(service); ...; sup.wait()`; leaving the block stops them all."""

    def __init__(self, settings: Settings, keep_going: bool = False, say: Callable[[str], None] = _say) -> None:
        self.settings = settings
        self.keep_going = keep_going
        self.say = say
        self.children: list[subprocess.Popen] = []
        self.killed: list[str] = []
        self.died: list[str] = []
        self._previous: dict[int, object] = {}

    @property
    def log_dir(self) -> Path:
        return self.settings.var_dir / "logs"

    def __enter__(self) -> Supervisor:
        prctl(PR_SET_CHILD_SUBREAPER, 1)
        for sig in STOP_SIGNALS:
            self._previous[sig] = signal.signal(sig, self._on_signal)
        return self

    def _on_signal(self, signum: int, _frame) -> None:
        for sig in STOP_SIGNALS:  # a second signal while stopping must not interrupt the stopping itself
            signal.signal(sig, signal.SIG_IGN)
        self.say(f"{signal.Signals(signum).name} received: stopping {len(self.running())} server(s)")
        raise StopRequested(signum)

    def running(self) -> list[subprocess.Popen]:
        return [child for child in self.children if child.poll() is None]

    def start(self, service: processes.Service) -> subprocess.Popen:
        child = processes.start(service, self.settings, self.log_dir)
        self.children.append(child)
        return child

    def wait(self) -> None:
        """Until a stop signal (raises StopRequested) or, unless keep_going, a child dying on its own."""
        reported: set[int] = set()
        while True:
            for child in self.children:
                if child.poll() is not None and child.pid not in reported:
                    reported.add(child.pid)
                    name = getattr(child, "service_name", child.pid)
                    self.died.append(str(name))
                    self.say(f"{name} exited on its own with status {child.returncode} (log: "
                             f"{self.log_dir / f'{name}.log'})")
                    if not self.keep_going:
                        raise ChildDied(f"{name} stopped; the other servers are stopped too (no half-running "
                                        f"platform; --keep-going keeps them up)")
            if not self.running():
                raise ChildDied("every server has stopped")
            reap_zombies(keep={child.pid for child in self.children})
            time.sleep(0.5)

    def stop_all(self) -> None:
        grace = self.settings.stop_grace_seconds
        # what the servers run right now: anything of it still alive after the guardians are done was re-parented to
        # us (we are a subreaper) when a guardian had to be killed, and goes too; our own helpers (a pipeline's
        # multiprocessing tracker) are not in it
        trees = {pid for child in self.children for pid in descendants(child.pid)}
        if self.running():
            # the guardians get the grace period; we allow them a little more before killing the guardians too
            self.killed += processes.stop(self.children, grace=grace + 5, report=self.say)
        for pid in sorted(trees & set(descendants(os.getpid()))):
            self.killed.append(f"orphaned process {pid} ({processes.command_line(pid)})")
            processes.kill_pid(pid)
        reap_zombies(keep={child.pid for child in self.children})
        self.children = []

    def __exit__(self, *_exc) -> None:
        try:
            self.stop_all()
        finally:
            for sig, handler in self._previous.items():
                signal.signal(sig, handler)
        if self.killed:
            self.say("had to kill: " + ", ".join(self.killed))

    @property
    def exit_code(self) -> int:
        return 1 if (self.killed or self.died) else 0
