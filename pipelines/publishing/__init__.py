"""Write-audit-publish, the publish step: ONE asset that swaps every published mart together.

It depends on every published mart and on every gated raw table, so a failed source or any failed blocking
gate (raw or mart) skips it, and the published data stays byte-identical. The swap itself is in
pipelines/publish.py (DuckDB: a new snapshot file renamed over the old; PostgreSQL: a schema swap in one
transaction, the readers' row-level-security policies applied before it).
"""


import dagster as dg

from ez360.core.health import PUBLISHED
from pipelines.gates import all_gates
from pipelines.publish import publish
from pipelines.resources import Ez360Resource
from pipelines.sources import SOURCES
from pipelines.sources.common import INGEST_POOL
from quality.gates import gates_for


class PublishBlocked(RuntimeError):
    """A gate's latest result failed or a source's latest load failed: publishing would show unaudited data."""

PUBLISH_KEY = dg.AssetKey(["published", "snapshot"])


def publish_asset(published: list[str]) -> dg.AssetsDefinition:
    deps = sorted({dg.AssetKey(t.split(".")) for t in published}
                  | {dg.AssetKey([g.schema_name, g.table_name]) for g in gates_for("raw")},
                  key=lambda k: k.to_user_string())

    @dg.asset(key=PUBLISH_KEY, deps=deps, group_name="published", pool=INGEST_POOL, kinds={"duckdb", "postgres"},
              automation_condition=(dg.AutomationCondition.eager()
                                    & dg.AutomationCondition.all_deps_blocking_checks_passed()),
              description="Publish every gated mart together; dashboards read only this snapshot",
              metadata={"published_tables": published})
    def published_snapshot(context: dg.AssetExecutionContext, ez360: Ez360Resource) -> dg.MaterializeResult:
        store = ez360.health()
        try:
            # however this step was reached (a run that selected only it, declarative automation), publish
            # nothing unless every gate's latest result passed and every source's latest load succeeded
            blockers = store.publish_blockers([g.check_name for g in all_gates(published)], list(SOURCES))
            if blockers:
                raise PublishBlocked("publish refused; the published data is unchanged: " + "; ".join(blockers))
            result = publish(ez360.warehouse(), ez360.published_path, published, context.run.run_id)
            store.upsert_run(context.run.run_id, job_name=context.run.job_name, status=PUBLISHED, published=True,
                             published_at=result.published_at, published_tables=result.row_counts)
        finally:
            store.close()
        return dg.MaterializeResult(metadata={"location": result.location, "published_at": str(result.published_at),
                                              **{f"rows:{t}": n for t, n in result.row_counts.items()}})

    return published_snapshot


def definitions(published: list[str]) -> dg.Definitions:
    return dg.Definitions(assets=[publish_asset(published)])
