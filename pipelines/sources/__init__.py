"""Ingest: one module per source, each returning its definitions."""

import dagster as dg

from pipelines.sources import erpnext, files, ops, stripe

SOURCES = ("ops", "stripe", "erpnext", "files")


def definitions() -> dg.Definitions:
    return dg.Definitions.merge(ops.definitions(), stripe.definitions(), erpnext.definitions(), files.definitions())
