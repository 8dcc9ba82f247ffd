"""The code location: definitions load, every published mart is gated before the one publish step, dbt sources
join the ingest assets, the instance keeps one writer, and a second `ez360 demo` / `pipeline run` is refused
before it touches anything."""

from __future__ import annotations

import dagster as dg
import pytest
import yaml
from typer.testing import CliRunner

from ez360.cli.app import app
from pipelines.definitions import build_definitions
from pipelines.lock import run_lock
from pipelines.publishing import PUBLISH_KEY
from pipelines.run import prepare_dagster_home
from pipelines.sources import SOURCES
from pipelines.warehouse import published_marts
from tests.support.platform import configure


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    settings = configure(mp, tmp_path_factory.mktemp("defs") / "var")
    yield settings, build_definitions(settings)
    mp.undo()


def test_definitions_load_with_every_job_schedule_and_sensor(platform):
    _settings, defs = platform
    assert defs.resolve_job_def("ez360_full_pipeline")
    assert {s.name for s in defs.schedules} == {"hourly_refresh", "nightly_full_refresh"}
    assert {"record_failed_runs", "record_finished_runs", "record_canceled_runs", "stale_data_sensor",
            "inbox_files_sensor", "freshness_checks_sensor"} <= {s.name for s in defs.sensors}
    nightly = next(s for s in defs.schedules if s.name == "nightly_full_refresh")
    assert nightly.tags["ez360/full_refresh"] == "true"


def test_every_published_mart_is_gated_by_a_blocking_check_upstream_of_the_one_publish_step(platform):
    _settings, defs = platform
    graph = defs.resolve_asset_graph()
    published = published_marts()
    assert len(published) >= 1
    parents = graph.get(PUBLISH_KEY).parent_keys
    for table in published:
        key = dg.AssetKey(table.split("."))
        assert key in parents, f"{table} is published but not an input of the publish step"
        checks = [graph.get_check_spec(k) for k in graph.get(key).check_keys]
        assert any(c.blocking and c.name == "gate_" + table.replace(".", "__") for c in checks), table
    for source in SOURCES:  # a failed source stops the publish too
        assert any(p.path[0] == f"raw_{source}" for p in parents), source


def test_dbt_sources_are_the_ingest_assets(platform):
    _settings, defs = platform
    graph = defs.resolve_asset_graph()
    ingest_keys = {k for k in graph.get_all_asset_keys() if graph.get(k).group_name.startswith("raw_")}
    dbt_keys = {k for k in graph.get_all_asset_keys() if graph.get(k).group_name == "warehouse"}
    outside = {p for k in dbt_keys for p in graph.get(k).parent_keys if p not in dbt_keys}
    assert outside and outside <= ingest_keys, f"dbt sources that are no ingest asset: {outside - ingest_keys}"
    assert not [k for k in graph.get_all_asset_keys() if graph.get(k).is_external], "dangling external assets"


def test_the_instance_runs_one_pipeline_at_a_time(platform):
    settings, _defs = platform
    config = yaml.safe_load((prepare_dagster_home(settings) / "dagster.yaml").read_text())
    assert config["run_monitoring"]["enabled"] is True
    assert config["concurrency"] == {"runs": {"max_concurrent_runs": 1},
                                     "pools": {"granularity": "run", "default_limit": 1}}
    with dg.DagsterInstance.get() as instance:
        assert instance.get_concurrency_config().run_queue_config.max_concurrent_runs == 1


def test_a_second_demo_is_refused_before_it_touches_anything(platform):
    settings, _defs = platform
    ops_db = settings.database_url.removeprefix("sqlite:///")
    with run_lock(settings.var_dir, "ez360 demo", name=".demo.lock", what="`ez360 demo`"):
        out = CliRunner().invoke(app, ["demo", "--no-serve"])
    assert out.exit_code == 1
    assert "another `ez360 demo` is running" in out.output and "nothing was changed" in out.output
    assert not (settings.demo_dir.exists() and any(settings.demo_dir.iterdir()))
    assert not __import__("pathlib").Path(ops_db).exists()


def test_a_second_pipeline_run_is_refused_with_a_clear_message(platform):
    settings, _defs = platform
    with run_lock(settings.published_dir, "scheduled-run-42"):
        out = CliRunner().invoke(app, ["pipeline", "run"])
    assert out.exit_code == 1
    assert "another pipeline run is in progress (run scheduled-run-42" in out.output


def test_the_embedded_event_log_keeps_dagsters_files_readable_by_dagsters_own_storage(tmp_path, monkeypatch):
    """The embedded instance stores events through pooled connections (pipelines/dagster_storage.py), in the files
    Dagster's default SQLite storage uses: an instance configured without it (an older dagster.yaml, a tool
    pointed at the folder) reads every run's materializations and check results, however many runs there are."""
    settings = configure(monkeypatch, tmp_path / "var")
    home = prepare_dagster_home(settings)
    assert yaml.safe_load((home / "dagster.yaml").read_text())["event_log_storage"]["class"] == \
        "PooledSqliteEventLogStorage"

    @dg.asset(check_specs=[dg.AssetCheckSpec("positive", asset="amount")])
    def amount():
        yield dg.Output(1)
        yield dg.AssetCheckResult(passed=True)

    with dg.DagsterInstance.get() as instance:
        assert type(instance.event_log_storage).__name__ == "PooledSqliteEventLogStorage"
        runs = [dg.materialize([amount], instance=instance).run_id for _ in range(10)]  # more runs than open files
    from dagster._core.instance.ref import InstanceRef

    # the same folder, with Dagster's defaults (tmp_path holds no dagster.yaml)
    stock = dg.DagsterInstance.from_ref(InstanceRef.from_dir(str(home), config_dir=str(tmp_path)))
    with stock:
        assert type(stock.event_log_storage).__name__ == "SqliteEventLogStorage"
        for run_id in runs:
            [record] = stock.get_records_for_run(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION).records
            assert record.asset_key == dg.AssetKey("amount")
        latest = stock.get_latest_materialization_event(dg.AssetKey("amount"))
        assert latest.run_id == runs[-1]
        check = stock.event_log_storage.get_latest_asset_check_execution_by_key(
            [dg.AssetCheckKey(dg.AssetKey("amount"), "positive")])
        assert next(iter(check.values())).run_id == runs[-1]
