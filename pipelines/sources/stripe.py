"""Stripe's API -> raw_stripe."""

import dagster as dg

from ingest import stripe_source
from pipelines.sources.common import ingest_asset

# lists Stripe embeds become child tables (docs/raw-tables.md); dbt reads these two
NESTED_TABLES = ("balance_transactions__fee_details", "subscriptions__items__data")


def definitions() -> dg.Definitions:
    return dg.Definitions(assets=[ingest_asset("stripe", (*stripe_source.TABLES, *NESTED_TABLES),
                                               "Read Stripe into raw_stripe")])
