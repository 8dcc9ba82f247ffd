"""Settings as a Dagster resource, read when a run starts so one process can serve several configs."""

from __future__ import annotations

import dagster as dg

from ez360.core.settings import Settings
from ez360.core.warehouse import Warehouse, parse_warehouse_url


class Ez360Settings(dg.ConfigurableResource):
    def settings(self) -> Settings:
        return Settings()

    def warehouse(self) -> Warehouse:
        return parse_warehouse_url(self.settings().warehouse_url)
