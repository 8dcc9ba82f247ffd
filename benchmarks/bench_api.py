"""Operational API under load, side by side with PostgreSQL's own limit for the same work (issue 8).

    uv run --frozen python benchmarks/bench_api.py [--scale demo|100k|all] [--seconds 10] [--workers N]

For each scale it creates its own PostgreSQL databases (dropped afterwards), seeds them, starts the API as
shipped (`ez360 serve api`), signs in 16 finance users (server-side sessions, as a browser would: cookie +
CSRF token) and drives the API with wrk on 8 connections, the sessions rotating request by request. In the same
run, pgbench drives PostgreSQL with the same work on 8 clients, and the API's rate is printed as a share of
pgbench's beside the issue's targets.

- demo: the demo world (`ez360 seed`, seed 42, scale 1: 3 companies, 256 invoices); the work is done in
  Northwind Studio (USD).
- 100k: the demo world plus a company with 100,000 invoices (lines, payments, allocations, postings, audit
  rows), seeded with COPY by `bench_api_seed.py`.

Reads are measured first, on the seeded data. Then a work queue is added to the same company (open invoices
with a large total to allocate payments to, drafts to send; sized from the rates just measured) and the writes
are measured. pgbench runs against a copy of the same database (`CREATE DATABASE ... TEMPLATE`, made before
the API starts), so both start from identical data without pgbench's writes reaching the API's database:

- reads: pgbench replays the exact statements one API request sends (captured from the driver), in the
  same transactions: session lookup, user and membership checks, the page query, the queries for lines;
- create payment (1.00, allocated to an open invoice) and send invoice: a hand-written script of the same
  transaction shape (session check, membership, the invoice row locked, payment or numbering, allocation and
  invoice amounts, a posted journal entry with its lines, as many audit rows as the API wrote for one such
  request (same JSON), the audit head moved at the end, a usage event, the idle-timeout touch as the API does
  it (at most every 15 s)); the statement counts of both are printed.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import json
import os
import platform
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx
import psycopg2
from psycopg2 import sql

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from benchmarks import bench_api_load as load  # noqa: E402
from benchmarks import bench_api_seed as seeding  # noqa: E402

SERVER_URL = os.environ.get("EZ360_BENCH_POSTGRES_URL",
                            os.environ.get("EZ360_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"))
PASSWORD = "bench-password-for-finance-staff"
DEMO_COMPANY = "northwind"
BIG_COMPANY = "bench-100k"

STEPS = ("get invoice", "list invoices", "list payments", "create payment", "send invoice")
# The targets: (step, scale) -> (minimum share of pgbench, maximum P99 ms, minimum req/s)
TARGETS = {
    ("create payment", "demo"): (0.25, 50.0, None),
    ("create payment", "100k"): (0.25, 50.0, None),
    ("list invoices", "100k"): (None, 50.0, 500.0),
}


def dsn(database: str) -> str:
    return SERVER_URL.rsplit("/", 1)[0] + f"/{database}"


@contextlib.contextmanager
def admin():
    conn = psycopg2.connect(SERVER_URL)
    conn.autocommit = True
    try:
        yield conn.cursor()
    finally:
        conn.close()


def dbname(url: str) -> str:
    return url.rsplit("/", 1)[1]


def create_database(name: str, template: str | None = None) -> str:
    with admin() as cur:
        stmt = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        if template:
            stmt = sql.SQL("CREATE DATABASE {} TEMPLATE {}").format(sql.Identifier(name), sql.Identifier(template))
        cur.execute(stmt)
    return dsn(name)


def drop_database(name: str) -> None:
    with admin() as cur:
        cur.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


# --- machine facts ---------------------------------------------------------------------------------------------

def core_speed() -> float:
    """CPU seconds one core takes for a fixed piece of pure Python (best of three): the machines these figures are
    taken on differ by up to 2x in CPU per request, and this is how two runs' machines compare."""
    best = float("inf")
    for _ in range(3):
        start = time.process_time()
        sum(i * i for i in range(10**7))
        best = min(best, time.process_time() - start)
    return best


def machine_facts() -> dict[str, str]:
    mem_kb = next(int(line.split()[1]) for line in Path("/proc/meminfo").read_text().splitlines()
                  if line.startswith("MemTotal"))
    cpu = next((line.split(":", 1)[1].strip() for line in Path("/proc/cpuinfo").read_text().splitlines()
                if line.startswith("model name")), platform.processor())
    with admin() as cur:
        cur.execute("SHOW server_version")
        pg = cur.fetchone()[0]
        cur.execute("SHOW shared_buffers")
        shared = cur.fetchone()[0]
        cur.execute("SHOW synchronous_commit")
        sync = cur.fetchone()[0]
    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True,
                            text=True).stdout.strip() or "(not a git checkout)"
    dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=ROOT, capture_output=True,
                           text=True).stdout.strip()
    wrk = subprocess.run([load.ensure_wrk(), "-v"], capture_output=True, text=True).stdout.splitlines()[0]
    return {
        "cores": f"{os.cpu_count()} ({cpu})",
        "core speed": f"{core_speed():.2f} s of CPU for sum(i * i for i in range(10**7)) (lower is faster)",
        "RAM": f"{mem_kb / 2**20:.1f} GiB",
        "PostgreSQL": f"{pg} (shared_buffers {shared}, synchronous_commit {sync})",
        "git commit": commit + (" (with uncommitted changes)" if dirty else ""),
        "Python": platform.python_version(), "wrk": wrk.split(" [")[0],
        "load average at start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
    }


# --- the API server --------------------------------------------------------------------------------------------

def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class Server:
    url: str
    proc: subprocess.Popen
    log: Path

    def stop(self) -> None:
        if self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGTERM)  # the serve command and its uvicorn workers
            try:
                self.proc.wait(timeout=20)
            except subprocess.TimeoutExpired:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait(timeout=10)


class MailSink:
    """A real SMTP server (aiosmtpd) that takes every mail: a sent invoice is mailed with its PDF right after the
    answer, in the API's process, as in production. Without one, every delivery failed and the outbox's retry
    loop re-tried thousands of them inside the API's processes while it was measured, work production does not
    do."""

    def __init__(self) -> None:
        self.received = 0

    async def handle_DATA(self, server, session, envelope):  # aiosmtpd's handler protocol
        self.received += 1
        return "250 OK"


@contextlib.contextmanager
def mail_sink():
    from aiosmtpd.controller import Controller
    sink = MailSink()
    controller = Controller(sink, hostname="127.0.0.1", port=free_port())
    controller.start()
    os.environ.update({"EZ360_SMTP_HOST": "127.0.0.1", "EZ360_SMTP_PORT": str(controller.port)})
    try:
        yield sink
    finally:
        controller.stop()


def server_env(database_url: str, var: Path) -> dict[str, str]:
    return {**os.environ, "EZ360_DATABASE_URL": database_url, "EZ360_VAR_DIR": str(var),
            "EZ360_DAGSTER_HOME": str(var / "dagster"), "DAGSTER_HOME": str(var / "dagster")}


def start_api(database_url: str, var: Path, workers: int | None) -> Server:
    """`ez360 serve api` as an operator starts it (plus --workers when asked)."""
    port = free_port()
    argv = [str(Path(sys.executable).parent / "ez360"), "serve", "api", "--port", str(port)]
    if workers:
        argv += ["--workers", str(workers)]
    log = var / f"api-{port}.log"
    proc = subprocess.Popen(argv, cwd=ROOT, env=server_env(database_url, var), stdout=log.open("wb"),
                            stderr=subprocess.STDOUT, start_new_session=True)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"ez360 serve api exited with {proc.returncode}:\n{log.read_text()[-3000:]}")
        with contextlib.suppress(httpx.HTTPError):
            if httpx.get(url + "/health/ready", timeout=2).status_code == 200:
                return Server(url, proc, log)
        time.sleep(0.3)
    Server(url, proc, log).stop()
    raise RuntimeError(f"the API did not answer within 120 s:\n{log.read_text()[-3000:]}")


def process_count(server: Server) -> int:
    """The serve command and every process under it (uvicorn and its workers)."""
    parents: dict[int, int] = {}
    for proc in Path("/proc").iterdir():
        if proc.name.isdigit():
            with contextlib.suppress(OSError, ValueError, IndexError):
                parents[int(proc.name)] = int((proc / "stat").read_text().rsplit(")", 1)[1].split()[1])
    family, grew = {server.proc.pid}, True
    while grew:
        more = {pid for pid, parent in parents.items() if parent in family} - family
        family |= more
        grew = bool(more)
    return len(family)


def sign_in(url: str, emails: list[str]) -> list[load.SignedIn]:
    signed = []
    with httpx.Client(base_url=url, timeout=30) as client:
        for email in emails:
            answer = client.post("/api/v1/auth/login", json={"email": email, "password": PASSWORD})
            answer.raise_for_status()
            cookie = answer.headers["set-cookie"].split(";", 1)[0]
            signed.append(load.SignedIn(cookie, answer.json()["csrf_token"]))
            client.cookies.clear()
    return signed


# --- seeding ----------------------------------------------------------------------------------------------------

@dataclass
class Target:
    """The company the work is done in, and what the steps need from it."""

    scale: str
    company_id: int
    emails: list[str]
    invoice_count: int
    pool_client: int = 0
    pool_project: int = 0
    seed_seconds: float = 0.0
    seeded_rows: dict[str, int] = field(default_factory=dict)


def seed_demo_template(name: str, var: Path) -> float:
    """The demo world (seed 42, scale 1) through the service layer, as `ez360 seed` writes it."""
    url = create_database(name)
    os.environ.update(server_env(url, var))
    from ez360.core.settings import Settings
    from ez360.demo.generate import generate

    started = time.perf_counter()
    generate(Settings(_env_file=None), 42, 1)
    return time.perf_counter() - started


def prepare_target(url: str, scale: str, invoices: int, *, seeded: bool = False) -> Target:
    """Seed the scale's company (unless `seeded`: a saved seed, found by its slug) and add the work-queue client."""
    from sqlalchemy import func, select

    from operational_api.db.engine import make_engine, make_sessionmaker
    from operational_api.db.models import Company, Invoice, User
    from operational_api.services import records
    from operational_api.services.companies import hash_password

    started = time.perf_counter()
    rows: dict[str, int] = {}
    slug = BIG_COMPANY if scale == "100k" else DEMO_COMPANY
    if scale == "100k" and not seeded:
        made = seeding.create_company(url, slug=slug, name="Bench 100k Ltd", clients=200,
                                      password_hash=hash_password(PASSWORD), finance_users=16)
        rows = seeding.add_invoices(url, made.id, made.client_ids, made.project_ids,
                                    seeding.Mix.of_company(invoices)).rows
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as s, s.begin():
            seeding.audit_trail.set_actor(s, seeding.ACTOR)
            company = s.scalar(select(Company).where(Company.slug == slug))
            emails = list(s.scalars(select(User.email).where(User.email.like(f"bench.finance.%@{slug}.example.com"))
                                    .order_by(User.email)))
            if not emails:
                emails = seeding.add_finance_users(s, company, 16, hash_password(PASSWORD))
            client = records.create_client(s, company, name="Bench work queue", email="ap@queue.example.org",
                                           currency=company.base_currency)
            project = records.create_project(s, company, client, name="Bench work queue", hourly_rate_minor=15_000,
                                             budget_minor=0)
            count = s.scalar(select(func.count()).select_from(Invoice).where(Invoice.company_id == company.id))
            target = Target(scale, company.id, emails, count, client.id, project.id)
        with engine.begin() as conn:
            conn.exec_driver_sql("ANALYZE")
    finally:
        engine.dispose()
    target.seed_seconds, target.seeded_rows = time.perf_counter() - started, rows
    return target


def add_work_queue(url: str, target: Target, *, open_invoices: int, drafts: int) -> tuple[list[int], list[int]]:
    """Open invoices with a large total (payments allocate 1.00 each) and drafts to send (contiguous ids)."""
    mix = seeding.Mix(open=open_invoices, drafts=drafts, open_total_minor=10**11)
    added = seeding.add_invoices(url, target.company_id, [target.pool_client], [target.pool_project], mix, seed=7)
    for ids in (added.open, added.drafts):
        if ids and ids != list(range(ids[0], ids[0] + len(ids))):
            raise RuntimeError("the work queue's ids are not contiguous (did something else write meanwhile?)")
    return added.open, added.drafts


def copy_sessions(pg_url: str, api_url: str, emails: list[str]) -> int:
    """The signed-in sessions, copied into pgbench's database (made before sign-in); the first id of 16."""
    with contextlib.closing(psycopg2.connect(api_url)) as src, contextlib.closing(psycopg2.connect(pg_url)) as dst:
        with src.cursor() as cur:
            cur.execute("SELECT s.user_id, s.token_hash, s.csrf_token, s.started_at, s.created_at, s.last_seen_at "
                        "FROM user_sessions s JOIN users u ON u.id = s.user_id WHERE u.email = ANY(%s) "
                        "AND s.revoked_at IS NULL ORDER BY s.id", (emails,))
            rows = cur.fetchall()
        with dst, dst.cursor() as cur:
            ids = []
            for row in rows:
                cur.execute("INSERT INTO user_sessions (user_id, token_hash, csrf_token, mfa_pending, mfa_verified, "
                            "started_at, created_at, last_seen_at, ip_address, user_agent) "
                            "VALUES (%s, %s, %s, false, false, %s, %s, %s, '127.0.0.1', 'pgbench') RETURNING id", row)
                ids.append(cur.fetchone()[0])
    if ids != list(range(ids[0], ids[0] + len(emails))):
        raise RuntimeError("pgbench's session ids are not contiguous")
    return ids[0]


# --- one request captured, and the pgbench scripts ---------------------------------------------------------------

class InProcess:
    """The same app in this process, to capture the SQL one request sends (the served API is untouched)."""

    def __init__(self, database_url: str, session: load.SignedIn):
        from fastapi.testclient import TestClient

        from ez360.core.settings import Settings
        from operational_api.app import create_app

        os.environ["EZ360_DATABASE_URL"] = database_url
        self.app = create_app(Settings(_env_file=None))
        self.client = TestClient(self.app)
        self.headers = {"Cookie": session.cookie, "X-CSRF-Token": session.csrf}

    def call(self, method: str, path: str, body: str | None = None, request_id: str | None = None):
        headers = dict(self.headers)
        if request_id:
            headers["X-Request-ID"] = request_id
        if body is not None:
            headers["Content-Type"] = "application/json"
        answer = self.client.request(method, path, content=body, headers=headers)
        if answer.status_code >= 300:
            raise RuntimeError(f"{method} {path} answered {answer.status_code}: {answer.text[:500]}")
        return answer

    def capture(self, method: str, path: str, body: str | None = None, request_id: str | None = None):
        return load.capture(self.app.state.engine, lambda: self.call(method, path, body, request_id))

    def close(self) -> None:
        self.client.close()
        self.app.state.engine.dispose()


def _literal(text: str | None) -> str:
    return "NULL" if text is None else "'" + text.replace("'", "''") + "'"


def audit_rows_of(database_url: str, request_id: str) -> list[tuple[str, str | None, str | None]]:
    """(entity type, before JSON, after JSON) of the audit rows one API request wrote."""
    with contextlib.closing(psycopg2.connect(database_url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT entity_type, before::text, after::text FROM audit_log WHERE request_id = %s ORDER BY seq",
                    (request_id,))
        return cur.fetchall()


def _audit_sql(company_id: int, audit: list[tuple[str, str | None, str | None]]) -> str:
    """Lock and move the head last (as late as the write path takes that lock), then write the rows after it as
    a chain: each row's prev_hash is the hash before it, and the last row's hash is the head's (the database's
    head guard checks that at COMMIT). sha256 in SQL stands in for the API's HMAC in Python."""
    n = len(audit)

    def link(k: int) -> str:
        if k < 0:
            return "':old_hash'"
        return "':head_hash'" if k == n - 1 else f"encode(sha256(convert_to(':head_hash' || '{k}', 'UTF8')), 'hex')"

    values = ", ".join(
        f"({company_id}, :head_seq - {n - 1 - k}, now(), :sess_user_id, 'user:pgbench (finance via session)', "
        f"'pgbench', {_literal('transition' if before else 'create')}, {_literal(entity)}, :inv, "
        f"{_literal(before)}, {_literal(after)}, {link(k - 1)}, {link(k)})"
        for k, (entity, before, after) in enumerate(audit))
    return (f"SELECT last_hash AS old_hash FROM audit_heads WHERE company_id = {company_id} FOR UPDATE \\gset\n"
            f"UPDATE audit_heads SET last_seq = last_seq + {n}, last_hash = encode(sha256(convert_to(last_hash || "
            f"now()::text, 'UTF8')), 'hex') WHERE company_id = {company_id} "
            f"RETURNING last_seq AS head_seq, last_hash AS head_hash \\gset\n"
            f"INSERT INTO audit_log (company_id, seq, occurred_at, actor_user_id, actor, request_id, action, "
            f"entity_type, entity_id, before, after, prev_hash, hash) VALUES {values};\n")


def _session_sql(company_id: int, sid_lo: int) -> str:
    return (f"\\set s random(0, 15)\n"
            f"BEGIN;\n"
            f"SELECT id, user_id, csrf_token, revoked_at, last_seen_at, started_at FROM user_sessions "
            f"WHERE id = {sid_lo} + :s \\gset sess_\n"
            f"SELECT id, is_active, email_verified_at FROM users WHERE id = :sess_user_id;\n"
            f"SELECT id, role FROM memberships WHERE company_id = {company_id} AND user_id = :sess_user_id;\n"
            f"UPDATE user_sessions SET last_seen_at = now() WHERE id = :sess_id "
            f"AND last_seen_at < now() - interval '15 seconds';\n")


def payment_script(target: Target, sid_lo: int, open_ids: list[int], accounts: dict[str, int],
                   currency: str, audit: list) -> str:
    c, u = target.company_id, ":sess_user_id"
    return (_session_sql(c, sid_lo).replace("BEGIN;", f"\\set inv random({open_ids[0]}, {open_ids[-1]})\nBEGIN;")
            + f"SELECT id, client_id, status, total_minor, amount_paid_minor, credited_minor FROM invoices "
              f"WHERE id = :inv AND company_id = {c} FOR UPDATE;\n"
            f"SELECT id FROM closed_periods WHERE company_id = {c} AND period = to_char(current_date, 'YYYY-MM');\n"
            f"INSERT INTO payments (company_id, client_id, method, currency, amount_minor, received_on, reference, "
            f"created_at, updated_at, created_by_id, updated_by_id) VALUES ({c}, {target.pool_client}, 'bank', "
            f"'{currency}', 100, current_date, 'pgbench', now(), now(), {u}, {u}) RETURNING id AS pay_id \\gset\n"
            f"INSERT INTO payment_allocations (company_id, payment_id, invoice_id, amount_minor, created_at) "
            f"VALUES ({c}, :pay_id, :inv, 100, now());\n"
            f"UPDATE invoices SET amount_paid_minor = amount_paid_minor + 100, status = 'partially_paid', "
            f"updated_at = now(), updated_by_id = {u} WHERE id = :inv;\n"
            f"INSERT INTO journal_entries (company_id, entry_date, memo, currency, status, source_type, source_id, "
            f"created_at, updated_at, created_by_id, updated_by_id) VALUES ({c}, current_date, 'Payment pgbench', "
            f"'{currency}', 'draft', 'payment', :pay_id, now(), now(), {u}, {u}) RETURNING id AS je_id \\gset\n"
            f"INSERT INTO journal_lines (company_id, journal_entry_id, account_id, debit_minor, credit_minor) "
            f"VALUES ({c}, :je_id, {accounts['1000']}, 100, 0), ({c}, :je_id, {accounts['1100']}, 0, 100);\n"
            f"UPDATE journal_entries SET status = 'posted', posted_at = now() WHERE id = :je_id;\n"
            f"INSERT INTO usage_events (company_id, user_id, event_name, occurred_at, properties) "
            f"VALUES ({c}, {u}, 'payment_recorded', now(), '{{\"method\": \"bank\"}}');\n"
            + _audit_sql(c, audit) + "COMMIT;\n")


def send_script(target: Target, sid_lo: int, first_draft: int, accounts: dict[str, int], currency: str,
                audit: list) -> str:
    c, u = target.company_id, ":sess_user_id"
    return (_session_sql(c, sid_lo)
            + f"SELECT nextval('bench_send_queue') + {first_draft - 1} AS inv \\gset\n"
            f"SELECT id, status, total_minor AS total, subtotal_minor AS subtotal, due_date, deleted_at "
            f"FROM invoices WHERE id = :inv AND company_id = {c} FOR UPDATE \\gset inv_\n"
            f"SELECT id FROM closed_periods WHERE company_id = {c} AND period = to_char(current_date, 'YYYY-MM');\n"
            f"UPDATE number_sequences SET last_value = last_value + 1 WHERE company_id = {c} AND kind = 'invoice' "
            f"RETURNING last_value AS num \\gset\n"
            f"UPDATE invoices SET number = 'PGB-' || :num, issue_date = current_date, "
            f"due_date = current_date + 30, status = 'sent', sent_at = now(), updated_at = now(), "
            f"updated_by_id = {u} WHERE id = :inv;\n"
            f"INSERT INTO journal_entries (company_id, entry_date, memo, currency, status, source_type, source_id, "
            f"created_at, updated_at, created_by_id, updated_by_id) VALUES ({c}, current_date, 'Invoice pgbench', "
            f"'{currency}', 'draft', 'invoice', :inv, now(), now(), {u}, {u}) RETURNING id AS je_id \\gset\n"
            f"INSERT INTO journal_lines (company_id, journal_entry_id, account_id, debit_minor, credit_minor) "
            f"VALUES ({c}, :je_id, {accounts['1100']}, :inv_total, 0), "
            f"({c}, :je_id, {accounts['4000']}, 0, :inv_subtotal);\n"
            f"UPDATE journal_entries SET status = 'posted', posted_at = now() WHERE id = :je_id;\n"
            f"INSERT INTO usage_events (company_id, user_id, event_name, occurred_at, properties) "
            f"VALUES ({c}, {u}, 'invoice_sent', now(), '{{}}');\n"
            + _audit_sql(c, audit) + "COMMIT;\n")


def script_statements(script: str) -> int:
    """Round trips of one pgbench transaction (every SQL command, BEGIN and COMMIT included)."""
    return sum(1 for line in script.splitlines() if line and not line.startswith("\\set"))


def company_accounts(database_url: str, company_id: int) -> tuple[dict[str, int], str]:
    with contextlib.closing(psycopg2.connect(database_url)) as conn, conn.cursor() as cur:
        cur.execute("SELECT code, id FROM accounts WHERE company_id = %s", (company_id,))
        accounts = dict(cur.fetchall())
        cur.execute("SELECT base_currency FROM companies WHERE id = %s", (company_id,))
        return accounts, cur.fetchone()[0]


def _with_cpu(figures: load.Figures, cpu: load.CpuMeter) -> load.Figures:
    count = max(1, figures.count)
    return dataclasses.replace(figures, app_cpu_ms=cpu.api_seconds * 1000 / count,
                               db_cpu_ms=cpu.db_seconds * 1000 / count)


# --- a scale, end to end ----------------------------------------------------------------------------------------

@dataclass
class Row:
    scale: str
    step: str
    api: load.Figures
    pg: load.Figures
    api_statements: int
    pg_statements: int
    load_avg: float


class Run:
    def __init__(self, args, var: Path, wrk: str, mail: MailSink):
        self.args, self.var, self.wrk, self.mail = args, var, wrk, mail
        self.rows: list[Row] = []
        self.steps = {name.strip() for name in args.steps.split(",")}
        unknown = self.steps - set(STEPS)
        if unknown:
            raise SystemExit(f"unknown steps {sorted(unknown)}: choose from {', '.join(STEPS)}")
        self.notes: list[str] = []
        self.workdir = var / "scripts"
        self.workdir.mkdir(exist_ok=True)

    def measure_api(self, server: Server, database: str, step: load.Step,
                    sessions: list[load.SignedIn]) -> load.Figures:
        a = self.args
        if a.warmup:
            warm = step
            if step.walk:  # a work queue: the warm-up takes its share of the ids, the measurement the rest
                cut = int(len(step.ids) * a.warmup / (a.warmup + a.seconds))
                warm, step = (dataclasses.replace(step, ids=step.ids[:cut]),
                              dataclasses.replace(step, ids=step.ids[cut:]))
            load.run_wrk(self.wrk, server.url, warm, sessions, connections=a.connections, threads=a.threads,
                         seconds=a.warmup, workdir=self.workdir)
        with load.CpuMeter(SERVER_URL, database, server.proc.pid) as cpu:
            figures = load.run_wrk(self.wrk, server.url, step, sessions, connections=a.connections,
                                   threads=a.threads, seconds=a.seconds, workdir=self.workdir)
        return _with_cpu(figures, cpu)

    def measure_pg(self, pg_url: str, name: str, script: str) -> load.Figures:
        a = self.args
        if a.warmup:
            load.run_pgbench(pg_url, script, clients=a.connections, threads=a.threads, seconds=a.warmup,
                             workdir=self.workdir, name=name + "_warmup")
        with load.CpuMeter(SERVER_URL, dbname(pg_url)) as cpu:
            figures = load.run_pgbench(pg_url, script, clients=a.connections, threads=a.threads, seconds=a.seconds,
                                       workdir=self.workdir, name=name)
        return _with_cpu(figures, cpu)

    def scale(self, scale: str, template: str) -> None:
        tag = uuid.uuid4().hex[:8]
        api_name, pg_name = f"ez360_bench_{scale}_{tag}", f"ez360_bench_{scale}_{tag}_pgbench"
        print(f"[{scale}] seeding", flush=True)
        saved = f"{self.args.from_seed}_{scale}" if self.args.from_seed else None
        api_url = create_database(api_name, saved or template)
        server = None
        try:
            if saved:
                from operational_api.db import schema

                schema.upgrade(api_url)  # this tree's migrations (e.g. its indexes) on the saved rows
                self.notes.append(f"{scale}: rows from the saved seed {saved}, migrated to this tree's heads")
            target = prepare_target(api_url, scale, self.args.invoices, seeded=bool(saved))
            if self.args.save_seed:
                name = f"{self.args.save_seed}_{scale}"
                drop_database(name)
                create_database(name, api_name)
                self.notes.append(f"{scale}: seed saved as database {name} (reuse: --from-seed {self.args.save_seed})")
            self.notes.append(f"{scale}: company {target.company_id} holds {target.invoice_count:,} invoices before "
                              f"the work queue; seeded in {target.seed_seconds:.0f} s"
                              + (f" (COPY: {', '.join(f'{k} {v:,}' for k, v in target.seeded_rows.items())})"
                                 if target.seeded_rows else ""))
            pg_url = create_database(pg_name, api_name)  # identical data for pgbench, before the API connects
            server = start_api(api_url, self.var, self.args.workers)
            self.notes.append(f"{scale}: API = `ez360 serve api`"
                              + (f" --workers {self.args.workers}" if self.args.workers else "")
                              + f" ({process_count(server)} processes: the command, uvicorn and its workers)")
            sessions = sign_in(server.url, target.emails)
            sid_lo = copy_sessions(pg_url, api_url, target.emails)
            self._reads(scale, server, api_url, pg_url, target, sessions)
            if {"create payment", "send invoice"} & self.steps:
                self._writes(scale, server, api_url, pg_url, target, sessions, sid_lo)
        finally:
            if server:
                server.stop()
            if not self.args.keep:
                drop_database(api_name)
                drop_database(pg_name)

    def _reads(self, scale, server, api_url, pg_url, target, sessions) -> None:
        c = target.company_id
        app = InProcess(api_url, sessions[0])
        try:
            newest = app.call("GET", f"/api/v1/companies/{c}/invoices?limit=1").json()["items"][0]["id"]
            steps = [load.Step("get invoice", "GET", f"/api/v1/companies/{c}/invoices/{{id}}", ids=(newest,)),
                     load.Step("list invoices", "GET", f"/api/v1/companies/{c}/invoices?limit=50"),
                     load.Step("list payments", "GET", f"/api/v1/companies/{c}/payments?limit=50")]
            for step in [s for s in steps if s.name in self.steps]:
                path = step.path.replace("{id}", str(step.ids[0])) if step.ids else step.path
                app.call("GET", path)  # warm, and the session's idle deadline fresh: no touch in the capture
                captured, _ = app.capture("GET", path)
                print(f"[{scale}] {step.name}", flush=True)
                api = self.measure_api(server, dbname(api_url), step, sessions)
                script = captured.pgbench_script()
                pg = self.measure_pg(pg_url, f"{scale}_{step.name.replace(' ', '_')}", script)
                self.rows.append(Row(scale, step.name, api, pg, captured.round_trips, script_statements(script),
                                     os.getloadavg()[0]))
        finally:
            app.close()

    def _writes(self, scale, server, api_url, pg_url, target, sessions, sid_lo) -> None:
        app = InProcess(api_url, sessions[0])
        try:
            rates = (100.0, 1000.0)  # queue sizing when the payments were not measured first (req/s, tps)
            if "create payment" in self.steps:
                rates = self._payments(scale, app, server, api_url, pg_url, target, sessions, sid_lo)
            if "send invoice" in self.steps:
                self._sends(scale, app, server, api_url, pg_url, target, sessions, sid_lo, rates)
        finally:
            app.close()

    def _payments(self, scale, app, server, api_url, pg_url, target, sessions, sid_lo) -> tuple[float, float]:
        c = target.company_id
        accounts, currency = company_accounts(api_url, c)
        today = datetime.now(UTC).date().isoformat()
        body = json.dumps({"client_id": target.pool_client, "method": "bank", "amount": "1.00",
                           "received_on": today, "allocations": [{"invoice_id": 0, "amount": "1.00"}]})
        body = body.replace('"invoice_id": 0', '"invoice_id": {id}')
        open_ids, _ = add_work_queue(api_url, target, open_invoices=64, drafts=0)
        pg_open, _ = add_work_queue(pg_url, target, open_invoices=64, drafts=0)
        print(f"[{scale}] create payment", flush=True)
        captured, _ = app.capture("POST", f"/api/v1/companies/{c}/payments", body.replace("{id}", str(open_ids[0])),
                                  request_id=f"bench-payment-{scale}")
        audit = audit_rows_of(api_url, f"bench-payment-{scale}")
        step = load.Step("create payment", "POST", f"/api/v1/companies/{c}/payments", body, tuple(open_ids))
        api = self.measure_api(server, dbname(api_url), step, sessions)
        script = payment_script(target, sid_lo, pg_open, accounts, currency, audit)
        pg = self.measure_pg(pg_url, f"{scale}_create_payment", script)
        self.rows.append(Row(scale, step.name, api, pg, captured.round_trips, script_statements(script),
                             os.getloadavg()[0]))
        self.notes.append(f"{scale}: one payment wrote {len(audit)} audit rows "
                          f"({', '.join(e for e, _, _ in audit)}); pgbench writes the same rows")
        return api.rate, pg.rate

    def _sends(self, scale, app, server, api_url, pg_url, target, sessions, sid_lo, rates) -> None:
        c, a = target.company_id, self.args
        accounts, currency = company_accounts(api_url, c)
        print(f"[{scale}] send invoice", flush=True)
        total = a.seconds + a.warmup
        _, drafts = add_work_queue(api_url, target, open_invoices=0, drafts=int(2 * rates[0] * total) + 200)
        _, pg_drafts = add_work_queue(pg_url, target, open_invoices=0, drafts=int(2 * rates[1] * total) + 500)
        captured, _ = app.capture("POST", f"/api/v1/companies/{c}/invoices/{drafts[0]}/send", "{}",
                                  request_id=f"bench-send-{scale}")
        audit = audit_rows_of(api_url, f"bench-send-{scale}")
        mailed = self.mail.received
        step = load.Step("send invoice", "POST", f"/api/v1/companies/{c}/invoices/{{id}}/send", "{}",
                         tuple(drafts[1:]), walk=True)
        api = self.measure_api(server, dbname(api_url), step, sessions)
        mailed = self.mail.received - mailed
        with contextlib.closing(psycopg2.connect(pg_url)) as conn, conn, conn.cursor() as cur:
            cur.execute("CREATE SEQUENCE bench_send_queue")  # pgbench's work queue: each draft sent once
        script = send_script(target, sid_lo, pg_drafts[0], accounts, currency, audit)
        pg = self.measure_pg(pg_url, f"{scale}_send_invoice", script)
        self.rows.append(Row(scale, step.name, api, pg, captured.round_trips, script_statements(script) - 1,
                             os.getloadavg()[0]))
        self.notes.append(f"{scale}: one send wrote {len(audit)} audit rows; queues: {len(drafts):,} drafts "
                          f"for the API, {len(pg_drafts):,} for pgbench (its queue pick is not counted); "
                          f"{mailed:,} invoice mails with their PDF delivered to the benchmark's SMTP server "
                          f"(aiosmtpd) while the API was measured (pgbench's script stops at the outbox row)")


# --- report -----------------------------------------------------------------------------------------------------

def verdicts(row: Row) -> str:
    target = TARGETS.get((row.step, row.scale))
    if not target:
        return ""
    share_min, p99_max, rate_min = target
    parts = []
    share = row.api.rate / row.pg.rate if row.pg.rate else 0
    if share_min is not None:
        parts.append(f"share >= {share_min:.0%}: {'met' if share >= share_min else 'NOT met'}")
    if p99_max is not None:
        parts.append(f"P99 <= {p99_max:.0f} ms: {'met' if row.api.p99_ms <= p99_max else 'NOT met'}")
    if rate_min is not None:
        parts.append(f">= {rate_min:.0f} req/s: {'met' if row.api.rate >= rate_min else 'NOT met'}")
    return "; ".join(parts)


def report(facts: dict[str, str], run: Run, args) -> None:
    print()
    label = f"{args.label}: " if args.label else ""
    print(f"{label}EZ360 operational API vs pgbench, {args.connections} connections, 16 finance sessions rotated "
          f"per request, {args.seconds:.0f} s per measurement after {args.warmup:.0f} s warm-up")
    for key, value in facts.items():
        print(f"  {key:<22} {value}")
    print()
    head = (f"{'scale':<5} {'work':<15} {'API req/s':>9} {'P50 ms':>7} {'P99 ms':>7} {'err':>4} {'stmts':>5} "
            f"{'cpu ms':>11} | {'pgbench tps':>11} {'P50 ms':>7} {'P99 ms':>7} {'stmts':>5} {'cpu ms':>6} | "
            f"{'share':>6} {'cpu sh':>6} {'load':>5}  target")
    print(head)
    print("-" * len(head))
    for r in run.rows:
        share = r.api.rate / r.pg.rate if r.pg.rate else 0
        api_cpu = r.api.app_cpu_ms + r.api.db_cpu_ms
        cpu_share = r.pg.db_cpu_ms / api_cpu if api_cpu else 0
        print(f"{r.scale:<5} {r.step:<15} {r.api.rate:>9.1f} {r.api.p50_ms:>7.1f} {r.api.p99_ms:>7.1f} "
              f"{r.api.errors:>4} {r.api_statements:>5} {r.api.app_cpu_ms:>5.1f}+{r.api.db_cpu_ms:<5.1f} | "
              f"{r.pg.rate:>11.1f} {r.pg.p50_ms:>7.1f} {r.pg.p99_ms:>7.1f} {r.pg_statements:>5} "
              f"{r.pg.db_cpu_ms:>6.2f} | {share:>6.1%} {cpu_share:>6.1%} {r.load_avg:>5.1f}  {verdicts(r)}")
    print()
    print("stmts: statements sent to PostgreSQL by one request (pgbench: BEGIN and COMMIT included; the API's driver "
          "opens its transactions implicitly).\ncpu ms: CPU per request of the API's processes + of the database's "
          "backends (pgbench: the backends only); cpu sh: pgbench's CPU per transaction as a share of the API's per "
          "request, a share that does not move with the neighbours' load.\nload: 1-minute load average after the "
          "measurement (the machine is shared; rates fall as it rises).")
    for note in run.notes:
        print(f"  - {note}")
    for r in run.rows:
        for side, figures in (("API", r.api), ("pgbench", r.pg)):
            if figures.errors or figures.note:
                print(f"  ! {r.scale} {r.step} {side}: {figures.errors} errors {figures.note}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", choices=["demo", "100k", "all"], default="all")
    parser.add_argument("--invoices", type=int, default=100_000, help="invoices of the 100k company")
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each measurement")
    parser.add_argument("--warmup", type=float, default=3.0, help="warm-up before each measurement")
    parser.add_argument("--connections", type=int, default=8)
    parser.add_argument("--threads", type=int, default=2, help="wrk threads and pgbench -j")
    parser.add_argument("--workers", type=int, default=None,
                        help="pass --workers N to `ez360 serve api` (default: as shipped)")
    parser.add_argument("--keep", action="store_true", help="keep the databases (names printed)")
    parser.add_argument("--steps", default=",".join(STEPS), help=f"a subset of: {', '.join(STEPS)}")
    parser.add_argument("--label", default="", help="a name for this run, printed with the figures")
    parser.add_argument("--save-seed", default="", metavar="PREFIX",
                        help="keep each scale's seeded database as PREFIX_<scale> (before any request)")
    parser.add_argument("--from-seed", default="", metavar="PREFIX",
                        help="start from databases saved by --save-seed instead of seeding (minutes saved)")
    args = parser.parse_args()
    wrk = load.ensure_wrk()
    facts = machine_facts()
    scales = ["demo", "100k"] if args.scale == "all" else [args.scale]
    with tempfile.TemporaryDirectory(prefix="ez360-bench-api-") as tmp, mail_sink() as mail:
        var = Path(tmp)
        template = f"ez360_bench_demo_{uuid.uuid4().hex[:8]}"
        run = Run(args, var, wrk, mail)
        try:
            if not args.from_seed:
                print("seeding the demo world (service layer)", flush=True)
                seconds = seed_demo_template(template, var)
                run.notes.append(f"demo world (seed 42, scale 1) seeded through the service layer in {seconds:.0f} s")
            else:
                os.environ.update(server_env(dsn(f"{args.from_seed}_{scales[0]}"), var))
            for scale in scales:
                run.scale(scale, template)
        finally:
            if not args.keep:
                drop_database(template)
            facts["load average at end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
            report(facts, run, args)  # what was measured, also when a later step failed


if __name__ == "__main__":
    main()
