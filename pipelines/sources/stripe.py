"""Stripe's API -> raw_stripe."""

import dagster as dg

from ingest import stripe_source
from pipelines.sources.common import ingest_asset


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=[ingest_asset("stripe", stripe_source.TABLES, "Read Stripe into raw_stripe")])
