"""`ez360 seed`: builds the demo world and writes it to the ops DB and the sandbox data files."""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import simplejson

from ez360.core.settings import Settings
from ez360.demo.discrepancies import choose_plan, ground_truth
from ez360.demo.erp_world import ErpWorldBuilder
from ez360.demo.ids import IdFactory
from ez360.demo.ops_world import OpsWorldWriter
from ez360.demo.stripe_world import StripeWorldBuilder
from operational_api.db import schema
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.services.companies import hash_password


class OpsDbNotEmpty(RuntimeError):
    pass


@dataclass(frozen=True)
class DemoResult:
    companies: int
    invoices: int
    payments: int
    discrepancies: int
    files: dict[str, Path]
    logins: list[dict]


def write_json(path: Path, payload) -> None:
    """Decimals go out as exact JSON numbers, keys sorted, so identical worlds give identical bytes."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(simplejson.dumps(payload, use_decimal=True, sort_keys=True, indent=1) + "\n")
    tmp.replace(path)


def generate(settings: Settings, seed: int, scale: int, reset: bool = False,
             progress: Callable[[str], None] = lambda _msg: None) -> DemoResult:
    if scale < 1:
        raise ValueError("--scale must be 1 or more")
    url = settings.database_url
    progress("ops DB: migrating")
    schema.upgrade(url)
    if schema.has_data(url):
        if not reset:
            raise OpsDbNotEmpty(f"the ops DB at {url} already holds data: pass --reset to replace it with the demo")
        schema.reset(url)
    rng = random.Random(seed)
    ids = IdFactory(random.Random(seed * 7919 + 1))
    engine = make_engine(url)
    try:
        with make_sessionmaker(engine)() as session, session.begin():
            writer = OpsWorldWriter(session, rng, ids, scale, hash_password(settings.demo_password.get_secret_value()))
            facts = writer.write(progress)
    finally:
        engine.dispose()
    progress("Stripe and ERPNext worlds")
    plan = choose_plan(facts, rng)
    stripe_builder = StripeWorldBuilder(facts, plan, rng, ids)
    stripe_data = stripe_builder.build(settings.stripe_api_key.get_secret_value())
    erp_data = ErpWorldBuilder(facts, stripe_builder.books, plan, rng, ids).build(
        settings.erpnext_api_key, settings.erpnext_api_secret.get_secret_value())
    truth = ground_truth(plan, seed, scale, facts.credit_notes)
    logins = [{**login, "password": settings.demo_password.get_secret_value()} for login in facts.logins]
    files = {name: settings.demo_dir / f"{name}.json" for name in ("stripe", "erpnext", "ground_truth", "logins")}
    for name, payload in (("stripe", stripe_data), ("erpnext", erp_data), ("ground_truth", truth),
                          ("logins", {"logins": logins})):
        write_json(files[name], payload)
    return DemoResult(len(facts.companies), len(facts.invoices), len(facts.payments), len(truth["discrepancies"]),
                      files, logins)
