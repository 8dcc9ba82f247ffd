"""What one script run knows: who signs in (validated again on every run), which company and period they look
at, and what they may see. The URL (`st.query_params`) carries company, period and comparison, so a link
reproduces a view; a company the viewer may not open is never honoured from the URL.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import date
from urllib.parse import urlencode

import streamlit as st

from apps.periods import Period, parse_period
from apps.signon import CompanyAccess, OpsSessions, Viewer, sign_in_url
from ez360.core.settings import Settings, get_settings

COMPARISONS = {"previous": "previous period", "last_year": "same period last year"}
CONTEXT_KEY = "_ez360_context"


@dataclass(frozen=True)
class RunContext:
    viewer: Viewer
    company: CompanyAccess
    period: Period
    comparison: str  # a key of COMPARISONS
    show_originals: bool  # original currencies beside base-currency amounts

    @property
    def company_id(self) -> int:
        return self.company.company_id

    @property
    def compared_period(self) -> Period:
        return self.period.previous() if self.comparison == "previous" else self.period.last_year()


@st.cache_resource(show_spinner=False)
def _ops_sessions(database_url: str) -> OpsSessions:  # keyed by the URL: tests point it at their own ops DB
    return OpsSessions(get_settings())


def session_cookie(settings: Settings) -> str | None:
    """The web app's session cookie as the browser sent it with this session's first request."""
    return st.context.cookies.get(settings.session_cookie_name)


def current_viewer(settings: Settings) -> Viewer | None:
    return _ops_sessions(settings.database_url).viewer(session_cookie(settings))


def here(settings: Settings) -> str:
    """This page's address in the browser, query included (where sign-in sends the visitor back). Streamlit
    trims the page from `st.context.url`; the page asked for is found by registering every page, hidden."""
    from apps.pages import PAGES

    asked = st.navigation([st.Page(p.path, title=p.title, url_path=p.url_path) for p in PAGES], position="hidden")
    path = "" if asked.url_path in ("", PAGES[0].url_path) else asked.url_path
    base = (st.context.url or settings.dashboards_base_url).split("?")[0].rstrip("/")
    for spec in PAGES:  # whether or not Streamlit trimmed the page from the URL
        base = base.removesuffix("/" + spec.url_path)
    base += "/"
    query = urlencode({k: st.query_params[k] for k in st.query_params})
    return base + path + (f"?{query}" if query else "")


def send_to_sign_in(settings: Settings) -> None:
    url = sign_in_url(settings, here(settings))
    st.title("Sign in to see the dashboards")
    st.info("The dashboards use your EZ360 sign-in. You are being taken to the sign-in page; "
            "you come back here once signed in.")
    st.link_button("Sign in", url, type="primary")
    st.html(f"<script>window.location.replace({json.dumps(url)});</script>", unsafe_allow_javascript=True)
    st.stop()


def choose_company(viewer: Viewer, settings: Settings) -> CompanyAccess:
    """The company from the URL if the viewer may open it, else their first; platform admins get a switcher."""
    wanted = _int(st.query_params.get("company"))
    company = viewer.company(wanted) or viewer.companies[0]
    if len(viewer.companies) > 1:
        ids = [c.company_id for c in viewer.companies]
        label = "Company (platform admin)" if viewer.platform_admin else "Company"
        chosen = st.sidebar.selectbox(label, ids, index=ids.index(company.company_id),
                                      format_func=lambda i: viewer.company(i).name, key="company_switcher")
        company = viewer.company(chosen)
    st.query_params["company"] = str(company.company_id)
    return company


def choose_period(today: date) -> tuple[Period, str, bool]:
    period = parse_period(st.query_params.get("period"), today)
    comparison = st.query_params.get("compare", "previous")
    if comparison not in COMPARISONS:
        comparison = "previous"
    return period, comparison, st.query_params.get("originals") == "1"


def remember(ctx: RunContext) -> None:
    st.session_state[CONTEXT_KEY] = ctx


def context() -> RunContext:
    """The run's context for a page (set by the entry script before the page runs)."""
    return st.session_state[CONTEXT_KEY]


def _int(value) -> int | None:
    try:
        return int(value)
    except (TypeError, ValueError):
        return None
