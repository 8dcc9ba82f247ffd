"""One server's guardian: `python -m ez360.cli.guard --name NAME --grace SECONDS -- COMMAND...`.

Supervisors (systemd, Docker, a terminal's Ctrl-C) signal the process they started, and a SIGKILL or a crash of
that process signals nobody. The guardian closes both gaps for one server:

- the supervisor starts it with the parent-death signal set (`PR_SET_PDEATHSIG`), so it hears about its parent's
  death however that happens;
- it is a child subreaper (`PR_SET_CHILD_SUBREAPER`), so grandchildren that lose their own parent (a Dagster code
  server, uvicorn workers) are re-parented to it instead of to init, and it can still see and stop them;
- on SIGTERM, SIGINT or SIGHUP (or its parent's death) it sends SIGTERM to the server's process group, waits up
  to the grace period for the server and every descendant to exit, SIGKILLs what is left, and exits 0 only if
  nothing had to be killed.

It imports nothing of the platform, so it starts in a few milliseconds.
"""

from __future__ import annotations

import argparse
import ctypes
import os
import signal
import subprocess
import sys
import time

PR_SET_PDEATHSIG = 1
PR_SET_CHILD_SUBREAPER = 36
STOP_SIGNALS = (signal.SIGTERM, signal.SIGINT, signal.SIGHUP)
KILLED_EXIT = 3  # something had to be SIGKILLed: the supervisor reports it


def prctl(option: int, value: int) -> None:
    """Linux process controls; silently absent elsewhere (the guardian then stops only what it can see)."""
    if sys.platform.startswith("linux"):
        libc = ctypes.CDLL(None, use_errno=True)
        if libc.prctl(option, value, 0, 0, 0) != 0:
            raise OSError(ctypes.get_errno(), f"prctl({option}) failed")


def die_with_parent(sig: int = signal.SIGTERM) -> None:
    """For a `preexec_fn`: the child receives `sig` when the thread that started it exits."""
    prctl(PR_SET_PDEATHSIG, sig)


def descendants(root: int) -> list[int]:
    """Every live process below `root`, from /proc (children first found, deepest last)."""
    parents: dict[int, int] = {}
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        # the command name may hold spaces and parentheses: the fields after the last ')' are fixed
        fields = stat[stat.rfind(b")") + 2:].split()
        if fields[0] != b"Z":  # a zombie is already dead, it only waits to be reaped
            parents[int(entry)] = int(fields[1])
    found, frontier = [], [root]
    while frontier:
        pid = frontier.pop()
        children = [child for child, parent in parents.items() if parent == pid]
        found.extend(children)
        frontier.extend(children)
    return found


def reap_zombies(keep: set[int] = frozenset()) -> None:
    """Reap our exited children except `keep` (processes whose status a Popen object still wants): as a subreaper we
    inherit orphans, and nobody else will collect them."""
    me = str(os.getpid()).encode()
    for entry in os.listdir("/proc"):
        if not entry.isdigit() or int(entry) in keep:
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as handle:
                stat = handle.read()
        except OSError:
            continue
        fields = stat[stat.rfind(b")") + 2:].split()
        if fields[0] == b"Z" and fields[1] == me:
            try:
                os.waitpid(int(entry), os.WNOHANG)
            except ChildProcessError:
                pass


def _signal(pid: int, sig: int, group: bool = False) -> None:
    try:
        (os.killpg if group else os.kill)(pid, sig)
    except (ProcessLookupError, PermissionError):
        pass


def _reap(watch: int | None = None) -> int | None:
    """Collect every exited child (the server and re-parented orphans) so none lingers as a zombie; returns the exit
    code of `watch` if it was among them."""
    code = None
    while True:
        try:
            pid, status = os.waitpid(-1, os.WNOHANG)
        except ChildProcessError:
            return code
        if pid == 0:
            return code
        if pid == watch:
            code = os.waitstatus_to_exitcode(status)


class Guard:
    def __init__(self, name: str, command: list[str], grace: float) -> None:
        self.name, self.command, self.grace = name, command, grace
        self.stop_requested: int | None = None

    def _request_stop(self, signum: int, _frame) -> None:
        self.stop_requested = signum

    def run(self) -> int:
        prctl(PR_SET_CHILD_SUBREAPER, 1)
        for sig in STOP_SIGNALS:
            signal.signal(sig, self._request_stop)
        # the server leads its own process group, so one killpg reaches everything it forks; if the guardian itself
        # is SIGKILLed, the server still hears it through its own parent-death signal
        server = subprocess.Popen(self.command, start_new_session=True, preexec_fn=die_with_parent)
        code = None
        while self.stop_requested is None and code is None:
            code = _reap(watch=server.pid)
            if code is None:
                time.sleep(0.2)
        if code is not None:
            # the server ended on its own: what it left behind goes with it
            killed = self._stop_all(server.pid, already_exited=True)
            print(f"{self.name}: exited on its own with status {code}", file=sys.stderr, flush=True)
            return code if code else (KILLED_EXIT if killed else 1)
        killed = self._stop_all(server.pid)
        return KILLED_EXIT if killed else 0

    def _stop_all(self, server_pid: int, already_exited: bool = False) -> list[int]:
        """SIGTERM to the server first and time for it to stop its own children (a Dagster webserver shuts its code
        server down over RPC; signalled together, the code server would wait for calls that never end), then
        SIGTERM to whatever of the tree is left, then SIGKILL once the grace period is over."""
        deadline = time.monotonic() + self.grace
        if not already_exited:
            _signal(server_pid, signal.SIGTERM)
            while time.monotonic() < deadline and _alive(server_pid):
                _reap()
                time.sleep(0.1)
        _signal(server_pid, signal.SIGTERM, group=True)
        for pid in descendants(os.getpid()):
            _signal(pid, signal.SIGTERM)
        deadline = max(deadline, time.monotonic() + 1)
        while time.monotonic() < deadline:
            _reap()
            if not descendants(os.getpid()):
                return []
            time.sleep(0.1)
        left = descendants(os.getpid())
        for pid in left:
            _signal(pid, signal.SIGKILL)
        _signal(server_pid, signal.SIGKILL, group=True)
        while descendants(os.getpid()):
            _reap()
            time.sleep(0.05)
        print(f"{self.name}: killed {len(left)} process(es) still running after {self.grace:.0f}s",
              file=sys.stderr, flush=True)
        return left


def _alive(pid: int) -> bool:
    """Our own child, not yet exited (a zombie counts as exited: it only waits to be reaped)."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return False
    return reaped == 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--name", required=True)
    parser.add_argument("--grace", type=float, default=10.0)
    parser.add_argument("command", nargs=argparse.REMAINDER)
    args = parser.parse_args(argv)
    command = args.command[1:] if args.command[:1] == ["--"] else args.command
    if not command:
        parser.error("no command to guard")
    return Guard(args.name, command, args.grace).run()


if __name__ == "__main__":
    sys.exit(main())
