"""The one resource every asset, check and sensor uses: EZ360's configuration as Dagster config fields.

The values are fixed when the definitions are built (`Ez360Resource.from_settings(settings)`), so a run uses
the configuration its code location was loaded with, shown in the Dagster UI, and never re-reads the
environment. Secrets are the exception: they are not config fields (the UI would show them); they resolve
from the environment / .env when the resource initialises, as `dg.EnvVar` does.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import dagster as dg
from pydantic import PrivateAttr, SecretStr

from ez360.core.health import HealthStore
from ez360.core.settings import Settings
from ez360.core.warehouse import Warehouse, parse_warehouse_url
from pipelines.lock import run_lock

SECRET_FIELDS = frozenset(name for name, f in Settings.model_fields.items() if f.annotation is SecretStr)


class Ez360Resource(dg.ConfigurableResource):
    warehouse_url: str
    published_dir: str
    alert_webhook_url: str = ""
    alert_email_to: str = ""
    source_stale_after_minutes: int = 180
    published_stale_after_minutes: int = 180
    settings_json: str = "{}"  # every other non-secret setting (ingest connectors, SMTP host, ...)

    _settings: Settings | None = PrivateAttr(default=None)

    @classmethod
    def from_settings(cls, settings: Settings) -> Ez360Resource:
        values = settings.model_dump(mode="json", exclude=set(SECRET_FIELDS))
        return cls(
            warehouse_url=settings.warehouse_url, published_dir=str(settings.published_dir),
            alert_webhook_url=settings.alert_webhook_url, alert_email_to=settings.alert_email_to,
            source_stale_after_minutes=settings.source_stale_after_minutes,
            published_stale_after_minutes=settings.published_stale_after_minutes,
            settings_json=json.dumps({k: v for k, v in values.items() if v is not None}, sort_keys=True),
        )

    @contextmanager
    def yield_for_execution(self, context: dg.InitResourceContext) -> Iterator[Ez360Resource]:
        """Inside a run (not a sensor tick), hold the pipeline lock for the whole run: one writer at a time."""
        run = context.dagster_run
        if run is None:
            yield self
            return
        with run_lock(self.published_path, run.run_id):
            yield self

    def settings(self) -> Settings:
        if self._settings is None:
            values = {k: v for k, v in json.loads(self.settings_json).items() if k not in SECRET_FIELDS}
            values.update(warehouse_url=self.warehouse_url, published_dir=self.published_dir,
                          alert_webhook_url=self.alert_webhook_url, alert_email_to=self.alert_email_to)
            self._settings = Settings(**values)
        return self._settings

    def warehouse(self) -> Warehouse:
        return parse_warehouse_url(self.warehouse_url)

    @property
    def published_path(self) -> Path:
        return Path(self.published_dir)

    def health(self) -> HealthStore:
        return HealthStore.for_warehouse(self.warehouse_url, self.published_path)
