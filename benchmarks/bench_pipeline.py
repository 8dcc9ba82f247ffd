"""Scale run: seed the demo world at a given scale, run the whole pipeline, print figures.

    uv run python benchmarks/bench_pipeline.py --scale 4 [--var /tmp/ez360-bench]

Prints the seed and pipeline wall times, the rows landed in each raw schema, and the peak memory of
this process (the pipeline runs in it) and of its children (dbt, the sandboxes).
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--scale", type=int, default=1)
    parser.add_argument("--seed", type=int, default=42)
    parser.add_argument("--var", type=Path, default=None, help="state folder (default: a temporary one)")
    args = parser.parse_args()
    var = args.var or Path(tempfile.mkdtemp(prefix="ez360-bench-"))
    shutil.rmtree(var, ignore_errors=True)
    os.environ.update({"EZ360_VAR_DIR": str(var), "EZ360_DATABASE_URL": "", "EZ360_WAREHOUSE_URL": ""})

    from sqlalchemy import create_engine, text

    from ez360.cli.app import sandboxes_running
    from ez360.core.settings import Settings
    from ez360.core.warehouse import parse_warehouse_url
    from ez360.demo.generate import generate
    from pipelines.run import run_pipeline

    settings = Settings(_env_file=None)
    started = time.perf_counter()
    result = generate(settings, args.seed, args.scale)
    seeded = time.perf_counter()
    with sandboxes_running(settings):
        ran = time.perf_counter()
        outcome = run_pipeline(settings)
        finished = time.perf_counter()
    assert outcome.published, outcome

    engine = create_engine(parse_warehouse_url(settings.warehouse_url).sqlalchemy_url())
    with engine.connect() as conn:
        rows = dict(conn.execute(text(
            "select schema_name, sum(estimated_size) from duckdb_tables() "
            "where schema_name in ('raw_ops', 'raw_stripe', 'raw_erpnext') "
            "and table_name not like '\\_dlt%' escape '\\' group by 1 order by 1")).all())
    engine.dispose()
    own = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"scale                 {args.scale}")
    print(f"invoices / payments   {result.invoices} / {result.payments}")
    print(f"seed                  {seeded - started:8.1f} s")
    print(f"pipeline (full run)   {finished - ran:8.1f} s")
    for schema, count in rows.items():
        print(f"rows in {schema:<13} {int(count):8d}")
    print(f"peak RSS, pipeline    {own:8.0f} MiB")
    print(f"peak RSS, children    {children:8.0f} MiB")
    print(f"warehouse file        {parse_warehouse_url(settings.warehouse_url).path.stat().st_size / 2**20:8.1f} MiB")


if __name__ == "__main__":
    main()
