"""Where one API request's time goes: cProfile of the app answering a step many times in this process.

    uv run --frozen python benchmarks/profile_api.py [--step "list invoices"|"create payment"] [--requests 300]
        [--database ez360_bench_demo_...]  (an existing database, e.g. kept with bench_api.py --keep)

Without --database it seeds its own (the demo world, as bench_api.py does) and drops it afterwards. The app
runs through Starlette's test client (its own share is printed too, so read the app's functions), with the
same signed-in finance session and CSRF token as the benchmark; it prints the top functions by cumulative
and by own time, and the statements one request sends.
"""

from __future__ import annotations

import argparse
import collections
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from sqlalchemy import event  # noqa: E402
from sqlalchemy.orm import Session  # noqa: E402

from benchmarks import bench_api as bench  # noqa: E402
from benchmarks import bench_api_load as load  # noqa: E402


def summarize(raw: Path, top: int) -> None:
    """Inclusive share of samples per function (each counted once per stack), app threads only."""
    inclusive: collections.Counter[str] = collections.Counter()
    own: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        frames = stack.split(";")
        if not any("operational_api" in f or "fastapi" in f or "starlette/routing" in f for f in frames):
            continue  # the test client's thread and idle threads
        n = int(count)
        total += n
        for frame in set(frames):
            inclusive[frame] += n
        own[frames[-1]] += n
    for title, counter in (("inclusive", inclusive), ("own", own)):
        print(f"--- {title} share of {total} samples in the app's threads")
        for frame, n in counter.most_common(top):
            print(f"{100 * n / total:5.1f}%  {frame[:150]}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--step", default="list invoices", choices=["list invoices", "create payment", "get invoice"])
    parser.add_argument("--requests", type=int, default=300)
    parser.add_argument("--top", type=int, default=35)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ez360-profile-") as tmp:
        var = Path(tmp)
        name = f"ez360_profile_{uuid.uuid4().hex[:8]}"
        try:
            bench.seed_demo_template(name, var)
            url = bench.dsn(name)
            target = bench.prepare_target(url, "demo", 0)
            open_ids, _ = bench.add_work_queue(url, target, open_invoices=64, drafts=0)
            app = bench.InProcess(url, load.SignedIn("", ""))
            answer = app.client.post("/api/v1/auth/login", json={"email": target.emails[0],
                                                                  "password": bench.PASSWORD})
            answer.raise_for_status()
            app.headers = {"Cookie": answer.headers["set-cookie"].split(";", 1)[0],
                           "X-CSRF-Token": answer.json()["csrf_token"]}
            app.client.cookies.clear()
            c = target.company_id
            today = datetime.now(UTC).date().isoformat()

            def one(i: int) -> None:
                if args.step == "list invoices":
                    app.call("GET", f"/api/v1/companies/{c}/invoices?limit=50")
                elif args.step == "get invoice":
                    app.call("GET", f"/api/v1/companies/{c}/invoices/{open_ids[0]}")
                else:
                    app.call("POST", f"/api/v1/companies/{c}/payments", json.dumps({
                        "client_id": target.pool_client, "method": "bank", "amount": "1.00", "received_on": today,
                        "allocations": [{"invoice_id": open_ids[i % len(open_ids)], "amount": "1.00"}]}))

            for i in range(20):
                one(i)
            flushes = []  # the ORM's unit-of-work runs one request sets off (each: listeners, sort, snapshots)
            count = lambda session, _context: flushes.append(session)  # noqa: E731
            event.listen(Session, "after_flush", count)
            captured, _ = load.capture(app.app.state.engine, lambda: one(0))
            event.remove(Session, "after_flush", count)
            raw = var / "pyspy.txt"
            spy = subprocess.Popen([str(Path(sys.executable).parent / "py-spy"), "record", "--pid", str(os.getpid()),
                                    "--rate", "500", "--gil", "--format", "raw", "--output", str(raw), "--nonblocking"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            time.sleep(1.5)  # py-spy attaches
            started = time.perf_counter()
            for i in range(args.requests):
                one(i)
            wall = (time.perf_counter() - started) * 1000 / args.requests
            spy.send_signal(signal.SIGINT)
            spy.wait(timeout=60)
            app.close()
            summarize(raw, args.top)
            print(f"{args.step}: {wall:.2f} ms a request (wall, in process, under py-spy); "
                  f"{captured.round_trips} statements, {len(flushes)} ORM flushes:")
            for stmt in captured.statements:
                print("   ", " ".join(stmt.split())[:160])
        finally:
            bench.drop_database(name)


if __name__ == "__main__":
    main()
