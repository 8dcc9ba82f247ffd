"""A commit that fails after the route function returned answers a problem document and stores nothing.

The failure is real: a DEFERRABLE INITIALLY DEFERRED constraint trigger that PostgreSQL only runs at COMMIT, so
every check inside the route passes and the route returns its 201 body; only the commit fails.
"""

from __future__ import annotations

import pytest
from sqlalchemy import text

from tests.support.integrity import build_api_world, session_scope

pytestmark = pytest.mark.postgres

FAIL_AT_COMMIT = """
CREATE FUNCTION test_fail_at_commit() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    IF NEW.name = 'Refused at commit' THEN
        RAISE EXCEPTION 'ez360: test trigger refuses this client at commit' USING ERRCODE = '23514';
    END IF;
    RETURN NEW;
END $$;
CREATE CONSTRAINT TRIGGER test_fail_at_commit AFTER INSERT ON clients
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION test_fail_at_commit();
"""


@pytest.fixture
def world(postgres_url):
    from tests.support.migrated import migrate
    migrate(postgres_url)
    world = build_api_world(postgres_url)
    with session_scope(postgres_url) as s, s.begin():
        s.execute(text(FAIL_AT_COMMIT))
    return world


def _clients(url: str) -> list[str]:
    with session_scope(url) as s:
        return list(s.scalars(text("SELECT name FROM clients ORDER BY id")))


def test_a_commit_failing_after_the_route_returned_answers_a_problem_and_stores_nothing(world):
    refused = world.call("POST", "/clients", json={"name": "Refused at commit"})
    assert refused.status_code == 409, refused.text
    assert refused.headers["content-type"] == "application/problem+json"
    body = refused.json()
    assert body["status"] == 409 and "nothing was saved" in body["detail"]
    assert "test trigger refuses this client at commit" in body["detail"]
    assert "Refused at commit" not in _clients(world.url)
    with session_scope(world.url) as s:  # no audit row was written for the rolled-back client either
        assert s.scalar(text("SELECT count(*) FROM audit_log WHERE entity_type = 'client'")) == 0

    accepted = world.call("POST", "/clients", json={"name": "Accepted"})
    assert accepted.status_code == 201, accepted.text
    assert _clients(world.url) == ["Accepted"]  # the success answered only after the commit held
