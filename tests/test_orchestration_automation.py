"""Automation, evaluated against a real Dagster instance without running the pipeline: the inbox sensor starts one
run per new export file, freshness checks per source and on the published data fail when stale and pass when
fresh, and declarative automation publishes only once every blocking gate of the publish step's inputs passed."""

from __future__ import annotations

import time

import dagster as dg
import pytest

from pipelines.automation import FULL_PIPELINE, published_keys
from pipelines.automation.inbox import INBOX_SENSOR
from pipelines.definitions import FIRST_TABLE, build_definitions
from pipelines.publishing import PUBLISH_KEY
from pipelines.resources import Ez360Resource
from pipelines.sources.common import raw_key
from pipelines.warehouse import published_marts
from tests.support.platform import configure

STATEMENT = "line_id,account,booked_on,amount,currency,description\nL-1,main,2025-01-02,10.00,USD,fee\n"


@pytest.fixture(scope="module")
def platform(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    settings = configure(mp, tmp_path_factory.mktemp("automation") / "var")
    yield settings, build_definitions(settings), Ez360Resource.from_settings(settings)
    mp.undo()


def _tick(sensor: dg.SensorDefinition, resource: Ez360Resource, cursor: str | None) -> dg.SensorResult:
    with dg.build_sensor_context(instance=dg.DagsterInstance.ephemeral(), resources={"ez360": resource},
                                 cursor=cursor) as context:
        return sensor(context)


def test_a_file_dropped_in_the_inbox_starts_one_run_and_only_once(platform):
    settings, defs, resource = platform
    sensor = defs.resolve_sensor_def(INBOX_SENSOR)
    assert sensor.job_name == FULL_PIPELINE

    empty = _tick(sensor, resource, None)
    assert not empty.run_requests and "inbox is empty" in empty.skip_reason.skip_message

    folder = settings.inbox_dir / "bank_statement_lines"
    folder.mkdir(parents=True, exist_ok=True)
    (folder / "statement-2025-01.csv").write_text(STATEMENT)
    first = _tick(sensor, resource, empty.cursor)
    [request] = first.run_requests
    assert request.tags["ez360/trigger"] == "inbox"

    again = _tick(sensor, resource, first.cursor)  # the file is still waiting (its run not done yet)
    assert not again.run_requests and "already started a run" in again.skip_reason.skip_message

    (folder / "statement-2025-02.csv").write_text(STATEMENT.replace("L-1", "L-2"))
    [second] = _tick(sensor, resource, again.cursor).run_requests
    assert second.run_key != request.run_key


def _freshness(defs: dg.Definitions, instance: dg.DagsterInstance) -> dict[dg.AssetKey, dg.AssetCheckEvaluation]:
    checks = [c for c in defs.asset_checks if all(k.name == "freshness_check" for k in c.check_keys)]
    targets = {k.asset_key for c in checks for k in c.check_keys}
    result = dg.materialize([*(dg.AssetSpec(k) for k in targets), *checks], instance=instance,
                            selection=dg.AssetSelection.all_asset_checks())
    return {e.asset_key: e for e in result.get_asset_check_evaluations()}


def test_freshness_checks_per_source_on_the_published_data_and_per_published_mart_fail_when_stale(platform):
    settings, defs, _resource = platform
    instance = dg.DagsterInstance.ephemeral()
    marts = published_keys(published_marts())
    stale_mart = next(k for k in marts if k.path[-1] == "fct_invoices")
    stale = {raw_key("stripe", FIRST_TABLE["stripe"]), PUBLISH_KEY, stale_mart}
    hours_ago = (max(settings.source_stale_after_minutes, settings.published_stale_after_minutes) + 60) / 60
    for key in [*(raw_key(source, table) for source, table in FIRST_TABLE.items()), PUBLISH_KEY, *marts]:
        metadata = ({"dagster/last_updated_timestamp": dg.MetadataValue.timestamp(time.time() - hours_ago * 3600)}
                    if key in stale else {})
        instance.report_runless_asset_event(dg.AssetMaterialization(key, metadata=metadata))

    results = _freshness(defs, instance)

    # one per source, one on the snapshot, one per published mart
    assert set(results) == {raw_key(s, t) for s, t in FIRST_TABLE.items()} | {PUBLISH_KEY} | set(marts)
    assert len(marts) > 10
    for key, evaluation in results.items():
        assert evaluation.passed == (key not in stale), (key, evaluation.description)
    # a slow machine may add "..., 1 second" between the hours and "ago"
    stale_by = f"overdue for an update. The last update was {hours_ago:.0f} hours"
    assert stale_by in results[PUBLISH_KEY].description
    assert stale_by in results[stale_mart].description
    assert stale_by in results[raw_key("stripe", "charges")].description
    assert "currently fresh" in results[raw_key("ops", "companies")].description

    instance.report_runless_asset_event(dg.AssetMaterialization(PUBLISH_KEY))  # a publish just now
    assert _freshness(defs, instance)[PUBLISH_KEY].passed


def test_declarative_automation_publishes_only_after_every_blocking_gate_passed(platform):
    _settings, defs, _resource = platform
    graph = defs.resolve_asset_graph()
    inputs = graph.get(PUBLISH_KEY).parent_keys
    blocking = [check for key in inputs for check in graph.get(key).check_keys
                if graph.get_check_spec(check).blocking]
    raw_gate = next(c for c in blocking if c.asset_key == dg.AssetKey(["raw_ops", "invoices"]))
    instance = dg.DagsterInstance.ephemeral()
    only_publish = dg.AssetSelection.assets(PUBLISH_KEY)

    def evaluate(cursor):
        return dg.evaluate_automation_conditions(defs=defs, instance=instance, asset_selection=only_publish,
                                                 cursor=cursor)

    tick = evaluate(None)
    for key in inputs:  # every input was rebuilt...
        instance.report_runless_asset_event(dg.AssetMaterialization(key))
    for check in blocking:  # ...and every gate passed except the raw invoices' gate
        instance.report_runless_asset_event(dg.AssetCheckEvaluation(
            asset_key=check.asset_key, check_name=check.name, passed=check != raw_gate))
    tick = evaluate(tick.cursor)
    assert tick.total_requested == 0  # a failed blocking gate holds the publish back

    instance.report_runless_asset_event(dg.AssetCheckEvaluation(
        asset_key=raw_gate.asset_key, check_name=raw_gate.name, passed=True))
    tick = evaluate(tick.cursor)
    assert tick.total_requested == 1 and tick.get_requested_partitions(PUBLISH_KEY) == {None}
