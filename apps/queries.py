"""The pages' reads, cached. Every cached function takes the company (or the platform marker) as an argument, so
the cache, shared by all users of the process, is keyed by it; the published run id is part of the key too, so
a new publish is seen at once. Callers pass only companies the signed-in viewer may open (`apps.session`)."""

from __future__ import annotations

import numbers
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import pandas as pd
import streamlit as st

from apps.data import ALL_COMPANIES, NothingPublishedYet, PublishedData, PublishStatus
from ez360.core.settings import get_settings

PLATFORM = "platform"  # the cache-key spelling of ALL_COMPANIES


@st.cache_resource(show_spinner=False)
def published(warehouse_url: str, published_dir: str) -> PublishedData:
    return PublishedData.from_settings(get_settings())


def data() -> PublishedData:
    settings = get_settings()
    return published(settings.warehouse_url, str(settings.published_dir))


STATUS_KEY, HEALTH_KEY = "_ez360_status", "_ez360_health"


def refresh() -> None:
    """Read the publish status and the health store once per script run (the entry script calls this first), so
    a new publish or a failed gate shows on the very next run, and every read of the run uses one run id."""
    st.session_state[STATUS_KEY] = data().status()
    st.session_state[HEALTH_KEY] = health()


def current_status() -> PublishStatus:
    if STATUS_KEY not in st.session_state:
        st.session_state[STATUS_KEY] = data().status()
    return st.session_state[STATUS_KEY]


def health() -> dict[str, Any] | None:
    """The health store's rows (HEALTH_CONTRACT), or None when there is no store yet."""
    try:
        from ez360.core.health import HealthStore
    except ImportError:
        return None
    store = HealthStore.from_settings(get_settings())
    try:
        last = store.last_published()
        return {"runs": store.latest_runs(limit=20), "last_published": last,
                "published_loads": store.source_loads(last["run_id"]) if last else [],
                "sources": store.source_status(), "gates": store.gate_results(),
                "read_at": datetime.now(UTC)}
    except Exception as exc:  # a missing/locked store must not take the pages down: the badge says so
        return {"error": f"{type(exc).__name__}: {exc}", "runs": [], "last_published": None, "published_loads": [],
                "sources": [], "gates": []}
    finally:
        store.close()


def current_health() -> dict[str, Any] | None:
    if HEALTH_KEY not in st.session_state:
        st.session_state[HEALTH_KEY] = health()
    return st.session_state[HEALTH_KEY]


def _ttl() -> int:
    return get_settings().dashboards_cache_seconds


@st.cache_data(ttl=_ttl(), show_spinner=False, max_entries=2000)
def _read(location: str, table: str, company: int | str, run_id: str | None, columns: tuple[str, ...] | None,
          between: tuple[tuple[str, Any, Any], ...], equals: tuple[tuple[str, Any], ...],
          order_by: tuple[str, ...]) -> pd.DataFrame:
    companies = ALL_COMPANIES if company == PLATFORM else [int(company)]
    return data().read(table, companies, columns=columns, order_by=order_by,
                       between={c: (lo, hi) for c, lo, hi in between}, equals=dict(equals))


def read(table: str, company: int | str, *, columns: Sequence[str] | None = None,
         between: dict[str, tuple[Any, Any]] | None = None, equals: dict[str, Any] | None = None,
         order_by: Sequence[str] = ()) -> pd.DataFrame:
    """One company's rows of a published table (`company` = its id, or PLATFORM for platform admins)."""
    if company != PLATFORM:
        if isinstance(company, bool) or not isinstance(company, numbers.Integral):
            raise TypeError(f"read() takes one company id or PLATFORM, not {company!r}")
        company = int(company)
    return _read(data().location, table, company, current_status().last_published_run_id,
                 tuple(columns) if columns else None,
                 tuple((c, lo, hi) for c, (lo, hi) in (between or {}).items()),
                 tuple((equals or {}).items()), tuple(order_by)).copy()


def read_or_none(table: str, company: int | str, **kwargs) -> pd.DataFrame | None:
    """Like read(), but None when nothing is published or the snapshot has no such table (the page shows an
    empty state that says which and what to run)."""
    try:
        return read(table, company, **kwargs)
    except NothingPublishedYet:  # MissingTable included
        return None
