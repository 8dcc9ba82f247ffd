"""Quality gates as blocking Dagster asset checks, built from THE list in quality/gates.py.

* one multi-asset check per source over its raw tables (a failure stops dbt and the publish);
* one multi-asset check over every published mart (a failure stops the publish). A published mart that
  quality/gates.py does not list gets a gate that always fails, so it can never be published ungated.

Each result carries the failing expectations with their counts and sample keys as metadata and is written to
the data-health table `gate_results`. The gate does not publish: dbt has already written the mart when its
gate runs, which is why dashboards read only the published copy.
"""


import dagster as dg

from ez360.core.health import HealthStore, now
from pipelines.resources import Ez360Resource
from pipelines.sources import SOURCES
from pipelines.sources.common import INGEST_POOL
from quality.gates import GATES, Gate, GateContext, gates_for, missing_suite_gate
from quality.runner import FailedExpectation, GateResult, SchemaValidator


def _key(gate: Gate) -> dg.AssetKey:
    return dg.AssetKey([gate.schema_name, gate.table_name])


def _context(gate: Gate, store: HealthStore, run_id: str, engine: str) -> GateContext:
    loads = {load["source"]: load for load in store.source_loads(run_id)}
    load = loads.get(gate.source or "")
    return GateContext(previous_row_count=store.previous_row_count(gate.table, run_id),
                       load_started_at=load["started_at"] if load else None,
                       rows_loaded=load["rows_loaded"] if load else None, engine=engine)


def evaluate(gate: Gate, validator: SchemaValidator, store: HealthStore, run_id: str,
             engine: str) -> dg.AssetCheckResult:
    if gate.optional and not validator.table_exists(gate.table_name):
        result = GateResult(success=True, evaluated=0, table=gate.table, row_count=0)
    else:
        try:
            result = validator.run(gate.table_name, gate.suite(_context(gate, store, run_id, engine)), gate.keys)
        except Exception as exc:  # the table is missing or unreadable: the gate fails, naming why
            result = GateResult(success=False, evaluated=0, table=gate.table, failed=[FailedExpectation(
                "table_readable", None, f"error: {(str(exc).strip().splitlines() or [''])[0]}")])
    failures = [f.as_dict() for f in result.failed]
    store.record_gate(run_id, gate.check_name, table_name=gate.table, layer=gate.layer, passed=result.success,
                      evaluated=result.evaluated, failed_count=len(result.failed), row_count=result.row_count,
                      failures=failures, checked_at=now())
    return dg.AssetCheckResult(
        asset_key=_key(gate), check_name=gate.check_name, passed=result.success,
        severity=dg.AssetCheckSeverity.ERROR,
        metadata={"table": gate.table, "evaluated": result.evaluated, "failed_count": len(result.failed),
                  "row_count": result.row_count, "summary": result.summary(),
                  "failed_expectations": [f["expectation"] + (f"({f['column']})" if f["column"] else "")
                                          for f in failures],
                  "failures": dg.MetadataValue.json(failures)})


def gate_check(name: str, gates: list[Gate], description: str) -> dg.AssetChecksDefinition:
    specs = [dg.AssetCheckSpec(gate.check_name, asset=_key(gate), blocking=True,
                               description=gate.description or f"quality gate on {gate.table}") for gate in gates]

    @dg.multi_asset_check(specs=specs, name=name, description=description, pool=INGEST_POOL)
    def _check(context: dg.AssetCheckExecutionContext, ez360: Ez360Resource):
        store = ez360.health()
        warehouse = ez360.warehouse()
        results = []
        try:
            by_schema: dict[str, list[Gate]] = {}
            for gate in gates:
                by_schema.setdefault(gate.schema_name, []).append(gate)
            for schema, schema_gates in by_schema.items():
                with SchemaValidator(warehouse.sqlalchemy_url(), schema) as validator:
                    results += [evaluate(g, validator, store, context.run.run_id, warehouse.kind)
                                for g in schema_gates]
        finally:
            store.close()
        for result in results:
            if not result.passed:
                context.log.error(result.metadata["summary"].value)
            yield result

    return _check


def all_gates(published: list[str]) -> list[Gate]:
    return [*gates_for("raw"), *mart_gates(published)]


def mart_gates(published: list[str]) -> list[Gate]:
    return [GATES[t] if t in GATES and GATES[t].layer == "mart" else missing_suite_gate(t) for t in published]


def definitions(published: list[str]) -> dg.Definitions:
    checks = []
    for source in SOURCES:
        gates = [g for g in gates_for("raw") if g.source == source]
        if gates:
            checks.append(gate_check(f"raw_{source}_gates", gates, f"Quality gates on raw_{source}"))
    checks.append(gate_check("published_mart_gates", mart_gates(published), "Quality gates on every published mart"))
    return dg.Definitions(asset_checks=checks)
