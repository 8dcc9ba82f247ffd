"""API tokens act with no more than their member's current role; removing a member kills their tokens, and no later
membership brings one back. Finance reads the audit log."""

from __future__ import annotations

import pytest
from sqlalchemy import select, text

from operational_api.db.models import ApiToken, Company, Membership, User
from operational_api.security.tokens import issue_token
from operational_api.services import companies
from tests.support.integrity import build_api_world, session_scope
from tests.support.migrated import migrate


@pytest.fixture(scope="module")
def api(tmp_path_factory):
    url = f"sqlite:///{tmp_path_factory.mktemp('tokens') / 'ops.sqlite3'}"
    migrate(url)
    return build_api_world(url)


def _membership_id(api, role: str) -> int:
    members = api.call("GET", "/members", params={"limit": 200}).json()["items"]
    return next(m["id"] for m in members if m["user_id"] == api.user_ids[role])


def _new_client(api, role: str):
    return api.call("POST", "/clients", role, json={"name": f"made by {role}", "email": "ap@example.org"})


def test_a_demoted_members_token_loses_the_privileges_of_the_old_role(api):
    assert _new_client(api, "admin").status_code == 201  # an admin token, for an admin
    demoted = api.call("PATCH", f"/members/{_membership_id(api, 'admin')}", json={"role": "viewer"})
    assert demoted.status_code == 200 and demoted.json()["role"] == "viewer"

    refused = _new_client(api, "admin")  # the same admin token, now for a viewer
    assert refused.status_code == 403 and "viewer" in refused.json()["detail"]
    assert api.call("GET", "/clients", "admin").status_code == 200  # what a viewer may do still works
    assert api.call("GET", "/audit-log", "admin").status_code == 403

    api.call("PATCH", f"/members/{_membership_id(api, 'admin')}", json={"role": "admin"})
    assert _new_client(api, "admin").status_code == 201  # never more than the token's own role, never less


def test_removing_a_member_revokes_their_tokens_and_a_new_membership_never_revives_one(api):
    assert api.call("GET", "/invoices", "finance").status_code == 200
    assert api.call("DELETE", f"/members/{_membership_id(api, 'finance')}").status_code == 204
    assert api.call("GET", "/invoices", "finance").status_code == 401
    with session_scope(api.url) as db:
        token = db.scalar(select(ApiToken).where(ApiToken.user_id == api.user_ids["finance"]))
        assert token.revoked_at is not None  # revoked in the database, not only refused

    from operational_api.services import invitations
    invited = api.call("POST", "/invitations", json={"email": "finance@acme.test", "role": "finance"})
    assert invited.status_code == 201
    with session_scope(api.url) as db, db.begin():
        user = db.get(User, api.user_ids["finance"])
        invitation = invitations.find_for_user(db, user, invitation_id=invited.json()["id"])
        invitations.accept(db, user, invitation)
    assert api.call("GET", "/invoices", "finance").status_code == 401  # the member is back, the token is not


def test_a_token_older_than_the_membership_it_would_act_through_is_dead(api):
    """Even when the membership disappears behind the API's back (no revocation hook runs), a re-added member's
    old token stays dead."""
    assert api.call("GET", "/invoices", "staff").status_code == 200
    with session_scope(api.url) as db, db.begin():
        db.execute(text("DELETE FROM memberships WHERE id = :id"), {"id": _membership_id(api, "staff")})
    with session_scope(api.url) as db, db.begin():
        companies.add_member(db, db.get(Company, api.company_id), db.get(User, api.user_ids["staff"]), "staff")
        token = db.scalar(select(ApiToken).where(ApiToken.user_id == api.user_ids["staff"]))
        assert token.revoked_at is None  # nothing revoked it...
    assert api.call("GET", "/invoices", "staff").status_code == 401  # ...and still it does not work
    with session_scope(api.url) as db:
        assert db.scalar(select(Membership).where(Membership.user_id == api.user_ids["staff"])) is not None


def test_finance_reads_the_audit_log_and_a_viewer_does_not(api):
    _new_client(api, "owner")
    with session_scope(api.url) as db, db.begin():  # a finance member's token (an earlier test removed the first)
        finance = db.scalar(select(Membership).where(Membership.company_id == api.company_id,
                                                     Membership.role == "finance"))
        token = issue_token(db, db.get(Company, api.company_id), db.get(User, finance.user_id), "finance", "audit")[1]
    finance_headers = {"Authorization": f"Bearer {token}"}
    log = api.client.get(api.path("/audit-log"), headers=finance_headers)
    assert log.status_code == 200 and log.json()["items"]
    # (an earlier test deleted a membership behind the API's back: verification names it, finance can see that)
    assert api.client.get(api.path("/audit-log/verify"), headers=finance_headers).status_code == 200
    assert api.call("GET", "/audit-log", "viewer").status_code == 403
