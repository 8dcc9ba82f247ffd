"""One call per source, configured by the settings alone (EZ360_* variables): what the pipeline and CLI run.

`run_source("stripe", settings)` loads Stripe into `raw_stripe` and returns a `LoadReport`;
`replay_source("stripe", settings)` rebuilds `raw_stripe` from the landing archive without calling Stripe.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from ez360.core.settings import Settings
from ez360.core.warehouse import Warehouse, parse_warehouse_url
from ingest import erpnext_source, files_source, ops_source, stripe_source
from ingest.archive import ArchiveWriter
from ingest.http import RetryPolicy
from ingest.load import load_source, replay, replay_resources
from ingest.report import LoadReport, SourceRun

SOURCES = ("ops", "stripe", "erpnext", "files")
REPLAYABLE = SOURCES


def retry_policy(settings: Settings) -> RetryPolicy:
    return RetryPolicy(max_attempts=settings.ingest_max_attempts, backoff_seconds=settings.ingest_backoff_seconds,
                       max_wait_seconds=settings.ingest_max_wait_seconds,
                       jitter_seconds=min(1.0, settings.ingest_backoff_seconds))


def stripe_options(settings: Settings, **overrides: Any) -> stripe_source.StripeOptions:
    accounts = settings.stripe_accounts or ("self,connected" if settings.uses_sandboxes else "self")
    objects = [o.strip() for o in settings.stripe_objects.split(",") if o.strip()] or stripe_source.OBJECT_TYPES
    values: dict[str, Any] = dict(
        api_key=settings.stripe_api_key.get_secret_value(), api_base=settings.stripe_api_base or None,
        accounts=stripe_source.AccountSelection.parse(accounts), objects=tuple(objects),
        repull_days=settings.stripe_repull_days, policy=retry_policy(settings))
    return stripe_source.StripeOptions(**{**values, **overrides})


def erpnext_options(settings: Settings, **overrides: Any) -> erpnext_source.ErpNextOptions:
    values: dict[str, Any] = dict(
        base_url=settings.erpnext_url, api_key=settings.erpnext_api_key,
        api_secret=settings.erpnext_api_secret.get_secret_value(),
        doctypes=erpnext_source.parse_doctypes(settings.erpnext_doctypes), page_size=settings.erpnext_page_size,
        policy=retry_policy(settings))
    return erpnext_source.ErpNextOptions(**{**values, **overrides})


def company_maps(settings: Settings) -> dict[str, dict[str, str]]:
    return {"stripe": files_source.parse_company_map(settings.stripe_company_map, "EZ360_STRIPE_COMPANY_MAP"),
            "erpnext": files_source.parse_company_map(settings.erpnext_company_map, "EZ360_ERPNEXT_COMPANY_MAP")}


def _places(settings: Settings) -> tuple[Warehouse, Path, Path]:
    return parse_warehouse_url(settings.warehouse_url), settings.var_dir / "dlt", settings.landing_dir


def run_source(name: str, settings: Settings, **options: Any) -> LoadReport:
    """Load one source (`ops`, `stripe`, `erpnext`, `files`) into its raw schema. `options` override settings."""
    warehouse, state_dir, landing_dir = _places(settings)
    run = SourceRun(name)
    writer = ArchiveWriter(landing_dir / name)
    if name == "stripe":
        source = stripe_source.stripe_source(stripe_options(settings, **options), run, writer)
    elif name == "erpnext":
        source = erpnext_source.erpnext_source(erpnext_options(settings, **options), run, writer)
    elif name == "files":
        plan = files_source.FilePlan()
        source = files_source.files_source(options.get("inbox", settings.inbox_dir), company_maps(settings), run,
                                           writer, plan)
        report = load_source(source, name, warehouse, state_dir, landing_dir, run, writer)
        plan.apply()  # only after the load committed: a failed load leaves every file in the inbox
        return report
    elif name == "ops":
        source = ops_source.archived(ops_source.ops_source(settings.database_url), writer)
    else:
        raise ValueError(f"unknown source {name!r}; choose one of {', '.join(SOURCES)}")
    return load_source(source, name, warehouse, state_dir, landing_dir, run, writer)


def _replay_source(name: str) -> Callable[[Path], Any]:
    import dlt

    spec_for = {"stripe": stripe_source.table_spec, "erpnext": erpnext_source.table_spec,
                "files": files_source.table_spec, "ops": ops_source.table_spec}[name]

    def build(folder: Path) -> Any:
        # the live source's name and nesting, so the replay writes into the same dlt schema
        @dlt.source(name=name, max_table_nesting=0 if name == "ops" else None)
        def archived() -> Any:
            if name == "erpnext":
                erpnext_source.configure_schema()
            return replay_resources(folder, spec_for)

        return archived()

    return build


def replay_source(name: str, settings: Settings) -> LoadReport:
    """Rebuild `raw_<name>` from the landing archive; the source itself is never called."""
    if name not in REPLAYABLE:
        raise ValueError(f"unknown source {name!r}; choose one of {', '.join(REPLAYABLE)}")
    warehouse, state_dir, landing_dir = _places(settings)
    return replay(name, warehouse, state_dir, landing_dir, _replay_source(name))
