"""The dbt warehouse: models as assets (sources keyed to the ingest assets), the list of published marts."""

from pipelines.warehouse.dbt import DBT_PROJECT, definitions, published_marts

__all__ = ["DBT_PROJECT", "definitions", "published_marts"]
