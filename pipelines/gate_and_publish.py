"""Write-audit-publish: a blocking Great Expectations gate on each reporting mart, then a separate publish.

The gate is a blocking asset check, so a failure stops the publish asset; dbt has already written the
mart by then, which is why dashboards read only the published copy, never the mart itself.
"""


import dagster as dg

from pipelines.publish import publish, record_gate_failure
from pipelines.settings_resource import Ez360Settings
from quality.runner import run_suite
from quality.suites import revenue_mart_suite

GATE_CHECK = "gx_revenue_mart_gate"  # records its own failures for the dashboards
REVENUE_MART = dg.AssetKey(["marts", "rpt_revenue_by_company_month"])
PUBLISHED_TABLES = ["marts.rpt_revenue_by_company_month"]


@dg.asset_check(asset=REVENUE_MART, blocking=True, name=GATE_CHECK,
                description="Great Expectations suite on the revenue mart; failing it blocks publishing")
def revenue_mart_gate(context: dg.AssetCheckExecutionContext, ez360: Ez360Settings) -> dg.AssetCheckResult:
    warehouse = ez360.warehouse()
    result = run_suite(warehouse.sqlalchemy_url(), "marts", "rpt_revenue_by_company_month", revenue_mart_suite())
    if not result.success:
        failed = [f.name if not f.column else f"{f.name}({f.column})" for f in result.failed]
        record_gate_failure(warehouse, ez360.settings().published_dir, context.run.run_id, failed)
    return dg.AssetCheckResult(
        passed=result.success, severity=dg.AssetCheckSeverity.ERROR,
        metadata={"evaluated": result.evaluated, "failed": [f.name for f in result.failed],
                  "summary": result.summary()},
    )


@dg.asset(key=["published", "rpt_revenue_by_company_month"], deps=[REVENUE_MART], group_name="published",
          description="The audited copy of the revenue mart that dashboards read")
def published_revenue(context: dg.AssetExecutionContext, ez360: Ez360Settings) -> dg.MaterializeResult:
    settings = ez360.settings()
    result = publish(ez360.warehouse(), settings.published_dir, PUBLISHED_TABLES, context.run.run_id)
    return dg.MaterializeResult(metadata={"location": result.location, **{
        f"rows:{table}": count for table, count in result.row_counts.items()}})
