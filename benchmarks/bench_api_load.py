"""Load generators of the API benchmark: wrk against the API, pgbench against PostgreSQL, and the capture of the
SQL one API request issues (so that pgbench can replay exactly the reads the API makes).

wrk runs closed-loop on N connections; a generated Lua script rotates the signed-in sessions request by request
(cookie + CSRF token), walks the ids of a step (each connection its own slice, so no two requests send the same
draft) and prints its summary as one JSON line. pgbench runs the same number of clients with a SQL script and
logs every transaction, from which P50/P99 are computed the same way as wrk's.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import statistics
import subprocess
import tempfile
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import event


@dataclass(frozen=True)
class Figures:
    rate: float  # requests (or transactions) per second
    p50_ms: float
    p99_ms: float
    count: int
    errors: int  # non-2xx answers, socket errors, timeouts (wrk); failed transactions (pgbench)
    note: str = ""
    app_cpu_ms: float = 0.0  # CPU of the API's processes per request
    db_cpu_ms: float = 0.0  # CPU of the database's backends per request (or transaction)


@dataclass(frozen=True)
class SignedIn:
    cookie: str  # "name=value"
    csrf: str


@dataclass(frozen=True)
class Step:
    """One kind of request: method, a path (with `{id}` filled from `ids` in turn) and a body (likewise)."""

    name: str
    method: str
    path: str
    body: str | None = None
    ids: tuple[int, ...] = ()
    walk: bool = False  # True: every id is used once (a work queue), else ids repeat round-robin


def ensure_wrk() -> str:
    """wrk from Debian (package `wrk`), installed through apt-get when missing."""
    found = shutil.which("wrk")
    if found:
        return found
    subprocess.run(["apt-get", "install", "-y", "--no-install-recommends", "wrk"], check=True,
                   env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}, stdout=subprocess.DEVNULL)
    found = shutil.which("wrk")
    if not found:
        raise RuntimeError("wrk is not installed and apt-get could not install it (Debian package wrk)")
    return found


def _lua_string(value: str) -> str:
    return json.dumps(value)  # a JSON string literal is a valid Lua string literal for these ASCII values


def wrk_script(step: Step, sessions: list[SignedIn], threads: int) -> str:
    creds = ",\n".join(f"  {{{_lua_string(s.cookie)}, {_lua_string(s.csrf)}}}" for s in sessions)
    ids = ", ".join(str(i) for i in step.ids) or "0"
    body = _lua_string(step.body) if step.body is not None else "nil"
    return f"""
local creds = {{
{creds}
}}
local ids = {{ {ids} }}
local method, path, body = {_lua_string(step.method)}, {_lua_string(step.path)}, {body}
local walk, nthreads = {"true" if step.walk else "false"}, {threads}
local threads_made = 0
local all_threads = {{}}
local tid, n = 0, 0
failures = {{}}  -- status -> count, per thread (read back in done)
sample = ""

function setup(thread)
  thread:set("tid", threads_made)
  threads_made = threads_made + 1
  table.insert(all_threads, thread)
end

function response(status, headers, resp_body)
  if status >= 300 then
    failures[status] = (failures[status] or 0) + 1
    if sample == "" then sample = status .. " " .. string.sub(resp_body or "", 1, 300) end
  end
end

function init(args)
  tid = tonumber(wrk.thread:get("tid")) or 0
end

function request()
  -- session after session on every connection: 16 credentials rotate over the 8 connections
  local c = creds[((n * nthreads + tid) % #creds) + 1]
  local k
  if walk then k = n * nthreads + tid + 1 else k = ((n * nthreads + tid) % #ids) + 1 end
  n = n + 1
  local id = ids[k] or ids[#ids]
  local headers = {{["Cookie"] = c[1], ["X-CSRF-Token"] = c[2], ["Accept"] = "application/json"}}
  local b = nil
  if body then
    b = string.gsub(body, "{{id}}", tostring(id))
    headers["Content-Type"] = "application/json"
  end
  return wrk.format(method, (string.gsub(path, "{{id}}", tostring(id))), headers, b)
end

function done(summary, latency, requests)
  local e = summary.errors
  local codes, first = "", ""
  for _, t in ipairs(all_threads) do
    for status, count in pairs(t:get("failures") or {{}}) do codes = codes .. status .. "x" .. count .. " " end
    if first == "" then first = t:get("sample") or "" end
  end
  io.write(string.format('WRK_JSON {{"requests": %d, "duration_us": %d, "p50_us": %d, "p99_us": %d, ' ..
    '"status_errors": %d, "socket_errors": %d}}\\n', summary.requests, summary.duration,
    latency:percentile(50), latency:percentile(99), e.status, e.connect + e.read + e.write + e.timeout))
  io.write("WRK_FAILURES " .. codes .. "\\n")
  io.write("WRK_SAMPLE " .. string.gsub(first, "\\n", " ") .. "\\n")
end
"""


def run_wrk(wrk: str, base_url: str, step: Step, sessions: list[SignedIn], *, connections: int, threads: int,
            seconds: float, workdir: Path) -> Figures:
    script = workdir / f"wrk_{step.name}.lua"
    script.write_text(wrk_script(step, sessions, threads))
    proc = subprocess.run([wrk, "-t", str(threads), "-c", str(connections), "-d", f"{max(1, round(seconds))}s",
                           "--timeout", "10s", "-s", str(script), base_url], capture_output=True, text=True,
                          timeout=seconds + 60)
    found = re.search(r"^WRK_JSON (.*)$", proc.stdout, re.M)
    if proc.returncode != 0 or not found:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    data = json.loads(found.group(1))
    seconds_run = data["duration_us"] / 1e6
    codes = re.search(r"^WRK_FAILURES (.*)$", proc.stdout, re.M).group(1).strip()
    sample = re.search(r"^WRK_SAMPLE (.*)$", proc.stdout, re.M).group(1).strip()
    statuses: dict[str, int] = {}
    for pair in codes.split():  # "409x3 500x1" per thread
        status, count = pair.split("x")
        statuses[status] = statuses.get(status, 0) + int(count)
    # wrk counts 4xx/5xx as status errors; 3xx would pass unnoticed, so every non-2xx is counted here
    errors = max(data["status_errors"], sum(statuses.values())) + data["socket_errors"]
    shown = ", ".join(f"{count} x {status}" for status, count in sorted(statuses.items()))
    note = f"answers {shown}; first: {sample[:200]}" if errors else ""
    return Figures(data["requests"] / seconds_run, data["p50_us"] / 1000, data["p99_us"] / 1000,
                   data["requests"], errors, note)


def run_pgbench(dsn: str, script: str, *, clients: int, threads: int, seconds: float, workdir: Path, name: str,
                variables: dict[str, object] | None = None) -> Figures:
    """pgbench with a custom script; latencies from its per-transaction log (-l)."""
    path = workdir / f"pgbench_{name}.sql"
    path.write_text(script)
    logs = Path(tempfile.mkdtemp(prefix=f"pgbench_{name}_", dir=workdir))
    argv = ["pgbench", "-n", "-c", str(clients), "-j", str(threads), "-T", str(max(1, round(seconds))), "-f",
            str(path), "-l", "--log-prefix", str(logs / "tx")]
    for key, value in (variables or {}).items():
        argv += ["-D", f"{key}={value}"]
    proc = subprocess.run([*argv, dsn], capture_output=True, text=True, timeout=seconds + 120)
    found = re.search(r"tps = ([\d.]+) \(without initial connection time\)", proc.stdout)
    if proc.returncode not in (0, 2) or not found:  # 2: some clients hit an error (reported below)
        raise RuntimeError(f"pgbench {name} failed ({proc.returncode}):\n{proc.stdout}\n{proc.stderr}")
    latencies = []
    for log in logs.iterdir():
        for line in log.read_text().splitlines():
            parts = line.split()
            if len(parts) >= 3 and parts[2].isdigit():
                latencies.append(int(parts[2]))
    failed = re.search(r"number of failed transactions: (\d+)", proc.stdout)
    aborted = "aborted" in proc.stderr or proc.returncode == 2
    p50, p99 = _percentiles(latencies)
    note = proc.stderr.strip().splitlines()[-1][:160] if aborted and proc.stderr.strip() else ""
    return Figures(float(found.group(1)), p50 / 1000, p99 / 1000, len(latencies),
                   int(failed.group(1)) if failed else 0, note)


def _percentiles(values: list[int]) -> tuple[float, float]:
    if len(values) < 2:
        return (float(values[0]), float(values[0])) if values else (0.0, 0.0)
    cuts = statistics.quantiles(values, n=100, method="inclusive")
    return cuts[49], cuts[98]


# --- what the API sends to PostgreSQL ---------------------------------------------------------------------

@dataclass
class Capture:
    """The statements of one request as the driver sent them (parameters bound), with commits and rollbacks."""

    statements: list[str]

    @property
    def round_trips(self) -> int:
        return len(self.statements)

    def pgbench_script(self) -> str:
        """The same transactions for pgbench: BEGIN before each transaction's first statement."""
        out, open_tx = [], False
        for sql in self.statements:
            if sql in ("COMMIT", "ROLLBACK"):
                if open_tx:
                    out.append(sql + ";")
                open_tx = False
                continue
            if not open_tx:
                out.append("BEGIN;")
                open_tx = True
            out.append(" ".join(sql.split()) + ";")  # pgbench reads one command per line
        if open_tx:
            out.append("COMMIT;")
        return "\n".join(out) + "\n"


def capture(engine, call: Callable[[], object]) -> tuple[Capture, object]:
    """Run `call` and record every statement sent on `engine`, as psycopg2 renders it."""
    statements: list[str] = []

    def before(conn, cursor, statement, parameters, context, executemany):
        rendered = cursor.mogrify(statement, parameters) if parameters else statement
        statements.append(rendered.decode() if isinstance(rendered, bytes) else rendered)

    def commit(_conn):
        statements.append("COMMIT")

    def rollback(_conn):
        statements.append("ROLLBACK")

    event.listen(engine, "before_cursor_execute", before)
    event.listen(engine, "commit", commit)
    event.listen(engine, "rollback", rollback)
    try:
        result = call()
    finally:
        event.remove(engine, "before_cursor_execute", before)
        event.remove(engine, "commit", commit)
        event.remove(engine, "rollback", rollback)
    return Capture(statements), result


# --- CPU per request -------------------------------------------------------------------------------------------

CLOCK = os.sysconf("SC_CLK_TCK")


def _cpu_seconds(pid: int) -> float | None:
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except (OSError, IndexError):
        return None
    return (int(fields[11]) + int(fields[12])) / CLOCK  # utime + stime


def process_tree(root: int) -> set[int]:
    parents: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            try:
                parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
            except (OSError, ValueError, IndexError):
                continue
    family, grew = {root}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in family} - family
        family |= more
        grew = bool(more)
    return family


class CpuMeter:
    """CPU seconds spent by a process tree (the API) and by the PostgreSQL backends of one database while a
    measurement runs: figures that hold on a shared machine, where rates move with the neighbours' load.
    Backends are sampled every 0.2 s (pgbench's end when the run ends, so the last 0.2 s may be missed)."""

    def __init__(self, dsn: str, database: str, api_root: int | None = None):
        self.dsn, self.database, self.api_root = dsn, database, api_root
        self.first: dict[int, float] = {}
        self.last: dict[int, float] = {}
        self.api_start = self.api_end = 0.0
        self._stop = threading.Event()

    def _backends(self, cur) -> list[int]:
        cur.execute("SELECT pid FROM pg_stat_activity WHERE datname = %s AND pid <> pg_backend_pid()",
                    (self.database,))
        return [r[0] for r in cur.fetchall()]

    def _sample(self, cur) -> None:
        for pid in self._backends(cur):
            value = _cpu_seconds(pid)
            if value is not None:
                self.first.setdefault(pid, value if pid in self.seen_before else 0.0)
                self.last[pid] = value

    def _api_cpu(self) -> float:
        if self.api_root is None:
            return 0.0
        return sum(v for v in (_cpu_seconds(p) for p in process_tree(self.api_root)) if v is not None)

    def __enter__(self):
        import psycopg2

        self.conn = psycopg2.connect(self.dsn)
        self.conn.autocommit = True
        with self.conn.cursor() as cur:
            self.seen_before = set(self._backends(cur))  # pool connections open before the run: count deltas
            self._sample(cur)
        self.api_start = self._api_cpu()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self) -> None:
        with self.conn.cursor() as cur:
            while not self._stop.wait(0.2):
                self._sample(cur)

    def __exit__(self, *exc):
        self._stop.set()
        self.thread.join()
        with self.conn.cursor() as cur:
            self._sample(cur)
        self.conn.close()
        self.api_end = self._api_cpu()

    @property
    def api_seconds(self) -> float:
        return self.api_end - self.api_start

    @property
    def db_seconds(self) -> float:
        return sum(self.last[pid] - self.first[pid] for pid in self.last)
