"""The `ez360` command: seed the demo, run the pipeline, serve the UIs, check the configuration."""

from __future__ import annotations

import contextlib
import json
from collections.abc import Iterator

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from ez360.core.settings import Settings

app = typer.Typer(help="EZ360: operational app and data platform.", no_args_is_help=True,
                  pretty_exceptions_enable=False)
pipeline_app = typer.Typer(help="Run the data pipeline (ingest -> dbt -> gate -> publish).", no_args_is_help=True)
app.add_typer(pipeline_app, name="pipeline")
audit_app = typer.Typer(help="Check the ops DB's audit trail.", no_args_is_help=True)
app.add_typer(audit_app, name="audit")
console = Console(soft_wrap=True)
SERVE_TARGETS = ("api", "dashboards", "dagster", "sandboxes", "all")


def load_settings() -> Settings:
    try:
        return Settings()
    except ValidationError as exc:
        for err in exc.errors():
            console.print(f"[red]setting EZ360_{str(err['loc'][0]).upper()}: {err['msg']}[/red]")
        raise typer.Exit(2) from None


def _fail(message: str, code: int = 1) -> typer.Exit:
    console.print(f"[red]error:[/red] {message}")
    return typer.Exit(code)


@app.command()
def migrate() -> None:
    """Create or upgrade the ops DB schema to the latest migration."""
    from operational_api.db import schema

    settings = load_settings()
    with console.status("migrating the ops DB"):
        schema.upgrade(settings.database_url)
    console.print(f"[green]ops DB at head[/green]: {settings.database_url}")


@app.command()
def seed(seed: int = typer.Option(None, help="Random seed (default EZ360_DEMO_SEED)"),
         scale: int = typer.Option(None, help="World size multiplier (default EZ360_DEMO_SCALE)"),
         reset: bool = typer.Option(False, "--reset", help="Replace existing ops data with the demo")) -> None:
    """Seed the demo universe: ops DB, Stripe and ERPNext sandbox data, and the ground truth."""
    _seed(load_settings(), seed, scale, reset)


def _seed(settings: Settings, seed: int | None, scale: int | None, reset: bool) -> None:
    from ez360.demo.generate import OpsDbNotEmpty, generate

    seed = settings.demo_seed if seed is None else seed
    scale = settings.demo_scale if scale is None else scale
    with console.status("seeding the demo universe") as status:
        try:
            result = generate(settings, seed, scale, reset=reset, progress=lambda m: status.update(f"seeding: {m}"))
        except (OpsDbNotEmpty, ValueError) as exc:
            raise _fail(str(exc)) from None
    console.print(f"[green]seeded[/green] seed={seed} scale={scale}: {result.companies} companies, "
                  f"{result.invoices} invoices, {result.payments} payments, {result.discrepancies} injected "
                  f"discrepancies (ground truth: {result.files['ground_truth']})")


@contextlib.contextmanager
def sandboxes_running(settings: Settings) -> Iterator[None]:
    """Start the Stripe and ERPNext sandboxes for the duration, unless they already run or are not used."""
    from ez360.cli import processes

    procs = []
    try:
        if settings.uses_sandboxes:
            for name in ("stripe-sandbox", "erpnext-sandbox"):
                svc = processes.services(settings)[name]
                if not processes.port_open(svc.host, svc.port):
                    data = settings.demo_dir / ("stripe.json" if "stripe" in name else "erpnext.json")
                    if not data.exists():
                        raise _fail(f"{data} is missing: run `ez360 seed` first")
                    procs.append(processes.start(svc, settings, settings.var_dir / "logs"))
        yield
    finally:
        processes.stop(procs)


def run_pipeline_with_progress(settings: Settings, select: str | None = None, full_refresh: bool = False):
    from pipelines.lock import PipelineBusy, busy_message, holder
    from pipelines.run import run_pipeline

    running = holder(settings.published_dir)
    if running is not None:  # refused before starting anything
        raise _fail(busy_message(running))
    with sandboxes_running(settings), console.status("running the pipeline: ingest, gates, dbt build, publish") as st:
        def progress(line: str) -> None:
            st.update(f"pipeline: {line}")
            console.print(f"  {line}")

        try:
            outcome = run_pipeline(settings, select=select, full_refresh=full_refresh, progress=progress)
        except PipelineBusy as exc:
            raise _fail(str(exc)) from None
        except ValueError as exc:  # an unknown --select
            raise _fail(str(exc), 2) from None
    groups: dict[str, int] = {}
    for key in outcome.materialized:
        groups[key.split("/")[0]] = groups.get(key.split("/")[0], 0) + 1
    console.print("materialized " + ", ".join(f"{group} ({count})" for group, count in groups.items()))
    if outcome.rebuilt_models or outcome.unchanged_models:
        total = len(outcome.rebuilt_models) + len(outcome.unchanged_models)
        console.print(f"dbt: rebuilt {len(outcome.rebuilt_models)} of {total} models"
                      + (" (the rest unchanged since the last build)" if outcome.unchanged_models else ""))
    console.print("stages: " + ", ".join(f"{k} {v:.1f}s" for k, v in sorted(outcome.stage_seconds.items())))
    if outcome.blocked_by:
        console.print(f"[yellow]not published, last good data kept:[/yellow] {'; '.join(outcome.blocked_by)}")
    if outcome.failed_steps:
        console.print(f"[red]failed steps:[/red] {outcome.failed_steps} (details: `ez360 pipeline status`, and the "
                      f"Dagster UI, run {outcome.run_id})")
    return outcome


@pipeline_app.command("run")
def pipeline_run(select: str = typer.Option(None, "--select", help="Only this source (ops, stripe, erpnext, "
                                                                    "files) or asset group (warehouse, published)"),
                 full_refresh: bool = typer.Option(False, "--full-refresh", help="dbt --full-refresh")) -> None:
    """Materialize every asset: ingest, raw gates, dbt build, mart gates, publish (or only --select)."""
    settings = load_settings()
    outcome = run_pipeline_with_progress(settings, select, full_refresh)
    if not outcome.success:
        raise _fail(f"pipeline run {outcome.run_id} {outcome.status or 'did not complete'}")
    where = f"published to {settings.published_dir}" if outcome.published else "finished (nothing to publish)"
    console.print(f"[green]pipeline run {outcome.run_id} {where}[/green]")


@pipeline_app.command("status")
def pipeline_status(runs: int = typer.Option(10, help="How many recent runs to list")) -> None:
    """Last runs, each source's freshness, gate results with failing keys, what is published and when."""
    from ez360.cli.pipeline_status import render_status
    from ez360.core.health import HealthStore

    store = HealthStore.from_settings(load_settings())
    try:
        # a console made now reads the terminal width (COLUMNS) of this call: the tables fit what shows them
        render_status(store, Console(soft_wrap=True), runs)
    finally:
        store.close()


def _serve(sup, names: list[str], host: str | None, port: int | None, workers: int | None = None) -> None:
    from ez360.cli import processes

    table = processes.services(sup.settings, host, port, workers)
    for name in names:
        try:
            with console.status(f"starting {name}"):
                sup.start(table[name])
        except processes.ServiceError as exc:
            raise _fail(str(exc)) from None
        where = table[name].url if table[name].port else "(no port)"
        console.print(f"  [green]{name}[/green] {where}  {table[name].purpose}")


def _ports_free_or_fail(settings: Settings, names: list[str], host: str | None, port: int | None) -> None:
    """Refuse before touching anything (seeding wipes the demo's ops DB) when another instance holds a port."""
    from ez360.cli import processes

    table = processes.services(settings, host, port)
    busy = [f"{name} ({table[name].host}:{table[name].port})" for name in names
            if table[name].port and processes.port_open(table[name].host, table[name].port)]
    if busy:
        raise _fail("already in use: " + ", ".join(busy) + ". Another `ez360 serve` or `bin/demo` is running: stop "
                    "it first, or choose other ports with EZ360_*_PORT. Nothing was changed.")


@contextlib.contextmanager
def _supervised(settings: Settings, keep_going: bool) -> Iterator:
    """Every server we start stops with us, whatever stops us (see ez360.cli.supervisor); the exit status says
    whether anything had to be killed or died on its own."""
    from ez360.cli.supervisor import ChildDied, StopRequested, Supervisor

    sup = Supervisor(settings, keep_going=keep_going)
    try:
        with sup:
            yield sup
    except StopRequested:
        pass
    except ChildDied as exc:
        console.print(f"[red]{exc}[/red] (logs in {settings.var_dir / 'logs'})")
    if sup.exit_code:
        raise typer.Exit(sup.exit_code)


def _targets(what: str) -> list[str]:
    if what == "all":
        return ["stripe-sandbox", "erpnext-sandbox", "api", "dashboards", "dagster", "dagster-daemon"]
    if what == "sandboxes":
        return ["stripe-sandbox", "erpnext-sandbox"]
    if what == "dagster":
        return ["dagster", "dagster-daemon"]
    return [what]


KEEP_GOING = typer.Option(False, "--keep-going", help="Keep the other servers up when one stops on its own")


@app.command()
def serve(what: str = typer.Argument(..., help=f"One of: {', '.join(SERVE_TARGETS)}"),
          host: str = typer.Option(None, help="Interface to bind (default EZ360_HOST, 127.0.0.1)"),
          port: int = typer.Option(None, help="Port (single service only; default from EZ360_*_PORT)"),
          workers: int = typer.Option(None, min=1, help="API server processes (default: one per core on "
                                                        "PostgreSQL, one on SQLite)"),
          keep_going: bool = KEEP_GOING) -> None:
    """Serve the API, the dashboards, the Dagster UI, the sandboxes, or all of them.

    SIGTERM, SIGINT and SIGHUP stop every server (grace period EZ360_STOP_GRACE_SECONDS, then SIGKILL); the
    servers also stop if this process is killed. Exit status 0 = everything stopped cleanly."""
    if what not in SERVE_TARGETS:
        raise _fail(f"unknown target {what!r}; choose one of {', '.join(SERVE_TARGETS)}", 2)
    if port and what in ("all", "sandboxes"):
        raise _fail("--port applies to a single service", 2)
    settings = load_settings()
    from pipelines.run import prepare_dagster_home

    prepare_dagster_home(settings)
    with _supervised(settings, keep_going) as sup:
        _serve(sup, _targets(what), host, port, workers)
        console.print("Press Ctrl-C to stop.")
        sup.wait()


@app.command()
def demo(seed: int = typer.Option(None, help="Random seed (default EZ360_DEMO_SEED)"),
         scale: int = typer.Option(None, help="World size multiplier (default EZ360_DEMO_SCALE)"),
         serve_uis: bool = typer.Option(True, "--serve/--no-serve", help="Start the UIs after the pipeline"),
         keep_going: bool = KEEP_GOING) -> None:
    """Seed the demo universe, run the whole pipeline, start every UI and print URLs and logins.

    Stops like `ez360 serve` on SIGTERM, SIGINT or SIGHUP, at any stage."""
    settings = load_settings()
    from pipelines.lock import PipelineBusy, run_lock

    uis = ["api", "dashboards", "dagster", "dagster-daemon"] if serve_uis else []
    with contextlib.ExitStack() as held:
        try:  # before anything is touched: a second demo must not re-seed the running one's ops DB
            held.enter_context(run_lock(settings.var_dir, "ez360 demo", name=".demo.lock", what="`ez360 demo`"))
        except PipelineBusy as exc:
            raise _fail(str(exc)) from None
        _demo(settings, seed, scale, uis, serve_uis, keep_going)


def _demo(settings: Settings, seed, scale, uis: list[str], serve_uis: bool, keep_going: bool) -> None:
    _ports_free_or_fail(settings, _targets("sandboxes") + uis, None, None)
    with _supervised(settings, keep_going) as sup:
        _seed(settings, seed, scale, reset=True)
        from pipelines.run import prepare_dagster_home

        prepare_dagster_home(settings)
        _serve(sup, _targets("sandboxes"), None, None)
        outcome = run_pipeline_with_progress(settings)
        if not outcome.success:
            raise _fail(f"pipeline run {outcome.run_id} did not complete")
        if not serve_uis:
            return
        _serve(sup, uis, None, None)
        logins = json.loads((settings.demo_dir / "logins.json").read_text())["logins"]
        table = Table("company", "role", "email", "password", title="demo logins")
        for login in logins:
            table.add_row(login["company"], login["role"], login["email"], login["password"])
        console.print(table)
        console.print(_company_ids(settings))
        console.print("Owners and admins enrol a TOTP authenticator at first sign-in (2FA is mandatory for them); "
                      f"sign in at http://{settings.host}:{settings.api_port}/app (the staff web app) or through "
                      "the API at /api/v1/auth/login.")
        console.print("Press Ctrl-C to stop.")
        sup.wait()


def _company_ids(settings) -> str:
    """The demo companies' ids, which the API's and the web app's addresses take (/api/v1/companies/{id})."""
    from sqlalchemy import create_engine, text
    engine = create_engine(settings.database_url)
    with engine.connect() as conn:
        rows = conn.execute(text("SELECT id, slug FROM companies ORDER BY id")).all()
    engine.dispose()
    return "Company ids: " + ", ".join(f"{slug} = {cid}" for cid, slug in rows)


@app.command()
def doctor() -> None:
    """Check configuration and connectivity; exit non-zero naming each setting to fix."""
    from ez360.cli.doctor import diagnose

    settings = load_settings()
    findings = diagnose(settings)
    for f in findings:
        status = "[green]ok  [/green]" if f.ok else ("[red]FAIL[/red]" if f.blocking else "[yellow]warn[/yellow]")
        console.print(f"{status} {f.check:<16} {f.setting}: {f.detail}", highlight=False)
        if f.fix and not f.ok:
            console.print(f"     {'':<16} fix: {f.fix}", highlight=False)
    failed = [f for f in findings if not f.ok and f.blocking]
    if failed:
        raise _fail("fix: " + ", ".join(sorted({f.setting for f in failed})))
    console.print("[green]configuration looks good[/green]")


# --- Stripe webhook events (operational_api/stripe_integration) ---------------------------------------
stripe_app = typer.Typer(help="Stripe webhook events: process the queue, list failures, requeue.",
                         no_args_is_help=True)
app.add_typer(stripe_app, name="stripe")


@stripe_app.command("process-events")
def stripe_process_events(limit: int = typer.Option(1000, min=1, help="At most this many events")) -> None:
    """Apply due Stripe webhook events to the books (oldest first); safe to run from a scheduler."""
    from operational_api.db.engine import make_engine, make_sessionmaker
    from operational_api.stripe_integration.processing import ProcessingConfig, process_pending

    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        report = process_pending(make_sessionmaker(engine), limit, config=ProcessingConfig.from_settings(settings))
    finally:
        engine.dispose()
    console.print(f"stripe events: {report.processed} processed, {report.ignored} ignored, "
                  f"{report.waiting} waiting, {report.failed} failed")


@stripe_app.command("failed-events")
def stripe_failed_events() -> None:
    """List failed events and events waiting over an hour; exits 1 when there are any (for alerting)."""
    from operational_api.db.engine import make_engine, make_sessionmaker
    from operational_api.stripe_integration.queue import events_needing_attention

    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            rows = events_needing_attention(session)
    finally:
        engine.dispose()
    if not rows:
        console.print("[green]no Stripe event needs attention[/green]")
        return
    console.print(f"[red]{len(rows)} Stripe event(s) need attention[/red]")
    for r in rows:  # one line per event, so log scrapers and alert mails keep it whole
        next_attempt = r.next_attempt_at.isoformat() if r.next_attempt_at else "none (retry-event to requeue)"
        console.print(f"{r.event_id} {r.type} {r.status} attempts={r.attempts} next={next_attempt} "
                      f"error={r.last_error or ''}", markup=False, highlight=False)
    raise typer.Exit(1)


@stripe_app.command("retry-event")
def stripe_retry_event(event_id: str = typer.Argument(..., help="The Stripe event id, evt_...")) -> None:
    """Make a failed or waiting event due now (with fresh retries); run process-events next."""
    from operational_api.db.engine import make_engine, make_sessionmaker
    from operational_api.stripe_integration.queue import requeue

    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session, session.begin():
            row = requeue(session, event_id)
            status = None if row is None else row.status
    finally:
        engine.dispose()
    if status is None:
        raise _fail(f"no Stripe event {event_id}")
    console.print(f"{event_id} ({status}) is due now")


# --- ingest (ingest/): one source alone, or a raw schema rebuilt from the landing archive ----------------
ingest_app = typer.Typer(help="Load one source into its raw schema, or rebuild a raw schema from the landing "
                              "archive.", no_args_is_help=True)
app.add_typer(ingest_app, name="ingest")
INGEST_PARTIAL_EXIT = 3  # some part failed while the rest loaded: never a plain success


def _print_report(report, as_json: bool) -> None:
    if as_json:
        console.print_json(data=report.as_dict())
    else:
        console.print(report.summary(), markup=False, highlight=False)


@ingest_app.command("run")
def ingest_run(source: str = typer.Argument(..., help="ops, stripe, erpnext or files"),
               as_json: bool = typer.Option(False, "--json", help="Print the load report as JSON")) -> None:
    """Load one source (configured by EZ360_* settings alone); exit 1 if it failed, 3 if partial."""
    from ingest.report import IngestFailed
    from ingest.runner import SOURCES, run_source

    if source not in SOURCES:
        raise _fail(f"unknown source {source!r}; choose one of {', '.join(SOURCES)}", 2)
    settings = load_settings()
    try:
        servers = sandboxes_running(settings) if source in ("stripe", "erpnext") else contextlib.nullcontext()
        with servers:
            report = run_source(source, settings)
    except (IngestFailed, ValueError) as exc:
        if isinstance(exc, IngestFailed):
            _print_report(exc.report, as_json)
        raise _fail(str(exc)) from None
    _print_report(report, as_json)
    if report.partial:
        raise typer.Exit(INGEST_PARTIAL_EXIT)


@ingest_app.command("replay")
def ingest_replay(source: str = typer.Argument(..., help="ops, stripe, erpnext or files"),
                  as_json: bool = typer.Option(False, "--json", help="Print the load report as JSON")) -> None:
    """Drop raw_<source> and reload it from the landing archive, load by load, without calling the source."""
    from ingest.report import IngestFailed
    from ingest.runner import replay_source

    settings = load_settings()
    try:
        report = replay_source(source, settings)
    except (IngestFailed, ValueError) as exc:
        raise _fail(str(exc), 2 if isinstance(exc, ValueError) else 1) from None
    _print_report(report, as_json)


@audit_app.command("verify")
def audit_verify(company: str = typer.Option(None, help="Only this company (its slug)")) -> None:
    """Verify each company's audit hash chain and that every audited record still matches its last audited
    state; exit non-zero naming the company and row of anything tampered, missing or changed behind the API."""
    from sqlalchemy import select

    from operational_api.db.engine import make_engine, make_sessionmaker
    from operational_api.db.models import Company
    from operational_api.services.audit import verify

    settings = load_settings()
    engine = make_engine(settings.database_url)
    try:
        with make_sessionmaker(engine)() as session:
            company_id = None
            if company:
                company_id = session.scalar(select(Company.id).where(Company.slug == company))
                if company_id is None:
                    raise _fail(f"no company with slug {company!r}", 2)
            findings = verify(session, company_id)
            checked = session.scalars(select(Company.slug).order_by(Company.id)).all()
    finally:
        engine.dispose()
    for finding in findings:
        console.print(f"[red]FAIL[/red] {finding}", highlight=False)
    if findings:
        raise _fail(f"{len(findings)} audit problem(s) found")
    console.print(f"[green]audit trail intact[/green] for {company or ', '.join(checked) or 'no companies'}")


# --- keys and platform admin (ez360/cli/ops_security.py) ---------------------------------------------------
from ez360.cli.ops_security import companies_app, keys_app  # noqa: E402 - they use this module's helpers

app.add_typer(keys_app, name="keys")
app.add_typer(companies_app, name="companies")


if __name__ == "__main__":
    app()
