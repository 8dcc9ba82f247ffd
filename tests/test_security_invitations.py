"""Invitations: the inviter learns nothing about accounts, and nobody joins a company without accepting, signed in
with the invited (verified) address. The invitation mail comes through a real SMTP server."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.db.models import Company, User
from operational_api.security.tokens import issue_token
from tests.support.security_world import build_world, smtp_server, token_from


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    world = build_world(f"sqlite:///{tmp_path_factory.mktemp('invite') / 'ops.sqlite3'}", enroll_2fa=False)
    engine = make_engine(world.url)
    with make_sessionmaker(engine)() as s, s.begin():  # acme's owner invites through an API token
        world.owner_token = issue_token(s, s.get(Company, world.companies["acme"]),
                                        s.get(User, world.users["acme:owner"]), "owner", "invitations")[1]
    engine.dispose()
    with smtp_server(world.settings.smtp_port) as inbox:
        world.inbox = inbox
        yield world


def _invite(world, client, email: str, role: str = "staff"):
    return client.post(f"/api/v1/companies/{world.companies['acme']}/invitations", json={"email": email, "role": role},
                       headers={"Authorization": f"Bearer {world.owner_token}"})


def _members(world, client) -> set[str]:
    page = client.get(f"/api/v1/companies/{world.companies['acme']}/members", params={"limit": 200},
                      headers={"Authorization": f"Bearer {world.owner_token}"}).json()
    return {m["email"] for m in page["items"]}


def test_inviting_an_existing_account_answers_exactly_like_inviting_an_unknown_address(world):
    browser = world.client()
    existing = world.email("globex", "finance")  # an account, of another company
    known, unknown = _invite(world, browser.http, existing), _invite(world, browser.http, "nobody@nowhere.test")
    assert known.status_code == unknown.status_code == 201
    assert set(known.json()) == set(unknown.json()) == {"id", "email", "role", "status", "created_at", "expires_at",
                                                        "responded_at"}
    assert known.json()["status"] == unknown.json()["status"] == "pending"
    assert "finance of globex" not in known.text  # the account holder's name
    assert world.users["globex:finance"] not in {v for k, v in known.json().items() if k != "id"}
    assert existing not in _members(world, browser.http)  # nobody joined without consent


def test_the_invitee_joins_by_accepting_signed_in_with_the_invited_address(world):
    invitee_email = world.email("globex", "viewer")
    anyone = world.client()
    assert _invite(world, anyone.http, invitee_email, "finance").status_code == 201
    world.inbox.wait_for(1)
    mails = [m for m in world.inbox.messages if m["To"] == invitee_email]
    assert len(mails) == 1 and "Acme" in mails[0]["Subject"]
    token = token_from(mails[0].get_content())

    stranger = world.client()
    assert stranger.login(world.email("globex", "staff")).status_code == 200
    refused = stranger.post("/api/v1/account/invitations/accept", json={"token": token})
    assert refused.status_code == 404  # a forwarded link does not work for somebody else
    assert anyone.post("/api/v1/account/invitations/accept", json={"token": token}).status_code == 401

    invitee = world.client()
    assert invitee.login(invitee_email).status_code == 200
    waiting = invitee.get("/api/v1/account/invitations").json()["items"]
    assert [(i["company_name"], i["role"]) for i in waiting] == [("Acme", "finance")]
    assert invitee_email not in _members(world, invitee.http)
    joined = invitee.post("/api/v1/account/invitations/accept", json={"token": token})
    assert joined.status_code == 200, joined.text
    assert joined.json()["company_id"] == world.companies["acme"] and joined.json()["role"] == "finance"
    assert invitee_email in _members(world, invitee.http)
    assert invitee.get(f"/api/v1/companies/{world.companies['acme']}/invoices").status_code == 200
    again = invitee.post("/api/v1/account/invitations/accept", json={"token": token})
    assert again.status_code == 409 and again.headers["content-type"] == "application/problem+json"


def test_a_declined_or_revoked_invitation_adds_nobody(world):
    email = world.email("globex", "admin")
    browser = world.client()
    declined_id = _invite(world, browser.http, email, "viewer").json()["id"]
    invitee = world.client()
    assert invitee.login(email).status_code == 200
    assert invitee.post(f"/api/v1/account/invitations/{declined_id}/decline").status_code == 204
    assert invitee.post(f"/api/v1/account/invitations/{declined_id}/accept").status_code == 409

    revoked_id = _invite(world, browser.http, email, "viewer").json()["id"]
    revoke = browser.http.delete(f"/api/v1/companies/{world.companies['acme']}/invitations/{revoked_id}",
                                 headers={"Authorization": f"Bearer {world.owner_token}"})
    assert revoke.status_code == 204
    assert invitee.post(f"/api/v1/account/invitations/{revoked_id}/accept").status_code == 409
    assert email not in _members(world, browser.http)
    from operational_api.db.security_models import Invitation
    engine = make_engine(world.url)
    with make_sessionmaker(engine)() as s:
        statuses = s.scalars(select(Invitation.status).where(Invitation.email == email).order_by(Invitation.id))
        assert list(statuses) == ["declined", "revoked"]
    engine.dispose()
