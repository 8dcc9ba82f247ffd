"""EZ360 dashboards (Streamlit), read from the PUBLISHED snapshot only, behind the web app's sign-on.

Run: streamlit run apps/dashboard.py --server.address 127.0.0.1 --server.headless true \
         --browser.gatherUsageStats false        (settings come from EZ360_* variables / .env)

Every run: validate the web app's session cookie against the ops DB (apps.signon), pick the company (URL, or
the switcher for platform admins), then offer only the pages the viewer's role grants (apps.pages) and render
the header above the chosen page.
"""

from __future__ import annotations

import logging
import uuid
from datetime import UTC, datetime

import streamlit as st

from apps import header, queries, session
from apps.pages import visible_pages
from ez360.core.observability import init_sentry
from ez360.core.settings import get_settings

init_sentry(get_settings(), "dashboards")
log = logging.getLogger("ez360.dashboards")
st.set_option("client.showErrorDetails", "none")  # never a traceback in the browser (the guard below explains)


def run_page(page) -> None:
    """Run the chosen page; an unexpected error becomes a message that says what to do, never a traceback
    (Streamlit's own rerun/stop signals are BaseExceptions and pass through)."""
    try:
        page.run()
    except Exception as exc:
        reference = uuid.uuid4().hex[:8]
        log.exception("dashboard page failed (reference %s)", reference)
        st.error(f"This page could not be shown ({type(exc).__name__}). Reload the page; if it happens again, "
                 f"tell the data team and quote reference {reference}. Other pages still work.")


def main() -> None:
    st.set_page_config(page_title="EZ360 dashboards", layout="wide", initial_sidebar_state="auto")
    settings = get_settings()
    viewer = session.current_viewer(settings)
    if viewer is None:
        session.send_to_sign_in(settings)
        return
    if not viewer.companies:
        st.title("No dashboards for this account")
        reasons = "; ".join(f"{name}: {why}" for name, why in viewer.refused)
        st.warning(reasons or "You are not a member of any company. Ask a company owner to invite you.")
        st.link_button("Open the web app", settings.public_base_url.rstrip("/") + "/app")
        return
    company = session.choose_company(viewer, settings)
    period, comparison, originals = session.choose_period(datetime.now(UTC).date())
    ctx = session.RunContext(viewer, company, period, comparison, originals)
    session.remember(ctx)
    queries.refresh()
    allowed = visible_pages(ctx)
    with st.sidebar:
        st.caption(f"Signed in as {viewer.name} ({viewer.email}) · {company.role.replace('_', ' ')}")
        st.link_button("Web app / sign out", settings.public_base_url.rstrip("/") + "/app")
    if not allowed:
        st.title(company.name)
        st.warning(f"Your role in {company.name} ({company.role}) does not include any dashboard. "
                   "Ask an owner or admin for the viewer or finance role.")
        return
    page = st.navigation([st.Page(p.path, title=p.title, url_path=p.url_path) for p in allowed])
    header.render(ctx)
    run_page(page)


main()
