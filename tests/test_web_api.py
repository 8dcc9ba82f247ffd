"""For API users: GET /api/v1/companies lists the caller's companies and roles (a token sees only its own
company); /docs is served from this server under the strict CSP; a browser gets HTML error pages on /app while
API clients keep problem documents; an unknown invoice link is a 404."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from operational_api.app import create_app
from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.db.models import Company, User
from operational_api.security.tokens import issue_token
from operational_api.services import companies, records
from tests.support.security_world import Browser, build_world


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    world = build_world(f"sqlite:///{tmp_path_factory.mktemp('webapi') / 'ops.sqlite3'}")
    engine = make_engine(world.url)
    with make_sessionmaker(engine)() as s, s.begin():  # the acme finance user is also a viewer of globex
        user = s.scalar(select(User).where(User.email == world.email("acme", "finance")))
        companies.add_member(s, s.get(Company, world.companies["globex"]), user, "viewer")
        world.token = issue_token(s, s.get(Company, world.companies["acme"]), user, "viewer", "reader")[1]
    engine.dispose()
    app = create_app(world.settings)  # one app for the module; each test client has its own cookie jar
    world.client = lambda: Browser(TestClient(app, base_url="https://testserver"), world)
    return world


def test_the_company_list_names_each_company_and_the_callers_role(world):
    browser = world.client()
    browser.login(world.email("acme", "finance"))
    listed = browser.get("/api/v1/companies").json()["items"]
    assert [(c["slug"], c["your_role"]) for c in listed] == [("acme", "finance"), ("globex", "viewer")]
    assert {c["id"] for c in listed} == {world.companies["acme"], world.companies["globex"]}
    by_token = world.client().http.get("/api/v1/companies", headers={"Authorization": f"Bearer {world.token}"})
    assert [(c["slug"], c["your_role"]) for c in by_token.json()["items"]] == [("acme", "viewer")]
    one = browser.get("/api/v1/companies?limit=1&sort=-name").json()
    assert [c["slug"] for c in one["items"]] == ["globex"] and one["next_cursor"]
    assert world.client().http.get("/api/v1/companies").status_code == 401


def test_docs_load_their_assets_from_this_server_under_the_strict_csp(world):
    http = world.client().http
    page = http.get("/docs")
    assert page.status_code == 200
    csp = page.headers["content-security-policy"]
    assert "script-src 'self'" in csp and "unsafe-inline" not in csp and "unsafe-eval" not in csp
    sources = [part.split('"')[1] for part in page.text.split("src=")[1:]] + \
        [part.split('"')[1] for part in page.text.split("href=")[1:]]
    assert sources and all(s.startswith("/static/") for s in sources)
    assert "<script>" not in page.text  # no inline script
    for source in sources:
        assert http.get(source).status_code == 200, source


def test_browsers_get_pages_and_api_clients_get_problem_documents(world):
    http = world.client().http
    company = world.companies["acme"]
    as_browser = http.get(f"/app/c/{company}/invoices", headers={"accept": "text/html"}, follow_redirects=False)
    assert as_browser.status_code == 303 and as_browser.headers["location"].startswith("/app/login?next=")
    as_api = http.get(f"/app/c/{company}/invoices")
    assert as_api.status_code == 401 and as_api.headers["content-type"] == "application/problem+json"
    missing = http.get("/i/not-a-real-token", headers={"accept": "text/html"})
    assert missing.status_code == 404 and "Page not found" in missing.text


def test_a_form_without_the_sessions_token_is_refused(world):
    browser = world.client()
    browser.login(world.email("acme", "staff"))
    company = world.companies["acme"]
    refused = browser.http.post(f"/app/c/{company}/clients/new", data={"name": "Forged", "email": "", "currency": ""},
                                headers={"accept": "text/html"})
    assert refused.status_code == 403 and "This form has expired" in refused.text
    page = browser.http.get(f"/app/c/{company}/clients/new", headers={"accept": "text/html"})
    token = page.text.split('name="csrf_token" value="')[1].split('"')[0]
    made = browser.http.post(f"/app/c/{company}/clients/new", headers={"accept": "text/html"},
                             data={"csrf_token": token, "name": "Real", "email": "", "currency": "USD"})
    assert made.status_code == 200 and "Client added." in made.text


def test_a_list_keeps_its_filter_and_sort_from_page_to_page(world):
    engine = make_engine(world.url)
    with make_sessionmaker(engine)() as s, s.begin():
        company = s.get(Company, world.companies["acme"])
        for i in range(30):
            records.create_client(s, company, name=f"Paged {i:02d}", email="")
        records.create_client(s, company, name="Someone else", email="")
    engine.dispose()
    browser = world.client()
    browser.login(world.email("acme", "staff"))
    html = {"accept": "text/html"}
    first = browser.http.get(f"/app/c/{world.companies['acme']}/clients?q=paged&sort=-name", headers=html)
    names = re.findall(r'>(Paged \d\d)</a>', first.text)
    assert names == [f"Paged {i:02d}" for i in range(29, 4, -1)]  # 25 a page, by name descending
    following = re.search(r'href="([^"]+)" rel="next"', first.text).group(1).replace("&amp;", "&")
    assert "q=paged" in following and "sort=-name" in following and "cursor=" in following
    second = browser.http.get(following, headers=html)
    assert re.findall(r'>(Paged \d\d)</a>', second.text) == [f"Paged {i:02d}" for i in range(4, -1, -1)]
    assert 'rel="next"' not in second.text and "Someone else" not in second.text
