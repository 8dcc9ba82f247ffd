"""A pipeline run killed in the middle, as a crash or an operator's kill -9 would leave it.

`kill_cli_run_during_dbt(settings, model)` starts `ez360 pipeline run` in its own process group and SIGKILLs the
group (the CLI and the dbt it runs) once dbt has reported `model` built to the Dagster instance: the warehouse is
half rebuilt and nothing is published.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg
from dagster._core.events import DagsterEventType

from pipelines.run import prepare_dagster_home


def kill_cli_run_during_dbt(settings, model: str, timeout: float = 600) -> str:
    """Run `ez360 pipeline run` (environment: the caller's EZ360_* settings) and kill it once dbt has built `model`
    (an asset key, "staging/stg_ops__payments"), which the run must rebuild: the models the run leaves unchanged
    are reported before dbt starts. Returns the killed run's id. The sandboxes must already run (the CLI's own
    would die with it)."""
    prepare_dagster_home(settings)
    (settings.var_dir / "logs").mkdir(parents=True, exist_ok=True)
    log = open(settings.var_dir / "logs" / "killed-cli.log", "w")  # noqa: SIM115 - closed in the finally below
    # the instance's storage is created here, before the CLI starts: two processes creating it at once can fail
    with dg.DagsterInstance.from_config(str(settings.dagster_home)) as instance:
        cli_runs = dg.RunsFilter(tags={"ez360/trigger": "cli"})
        earlier = {run.run_id for run in instance.get_runs(filters=cli_runs)}  # watch only the run started here
        worker = subprocess.Popen([str(Path(sys.executable).parent / "ez360"), "pipeline", "run"],
                                  stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline and worker.poll() is None:
                runs = [run for run in instance.get_runs(filters=cli_runs, limit=1) if run.run_id not in earlier]
                if runs and any(r.event_log_entry.dagster_event.asset_key.to_user_string() == model
                                for r in instance.get_records_for_run(
                                    runs[0].run_id, of_type=DagsterEventType.ASSET_MATERIALIZATION,
                                    limit=1000).records):
                    return runs[0].run_id
                time.sleep(0.2)  # poll interval while waiting for dbt to build the model
            output = (settings.var_dir / "logs" / "killed-cli.log").read_text()[-3000:]
            raise AssertionError(f"the run never reached dbt (the CLI exited with {worker.poll()}):\n{output}")
        finally:
            if worker.poll() is None:
                os.killpg(worker.pid, signal.SIGKILL)  # the group: the CLI and its dbt child
            worker.wait(timeout=30)
            log.close()
