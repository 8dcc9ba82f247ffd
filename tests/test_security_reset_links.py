"""Password-reset and verification links: a newer link ends the older ones; the database never holds a usable
link (tokens as SHA-256, undelivered mail links encrypted) and, once a mail is delivered, holds none at all.
Mail goes through a real SMTP server."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.db.models import User
from operational_api.db.security_models import EmailOutbox, EmailToken
from operational_api.security import accounts, mail
from tests.support.security_world import build_world, smtp_server, token_from


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    world = build_world(f"sqlite:///{tmp_path_factory.mktemp('links') / 'ops.sqlite3'}", enroll_2fa=False)
    with smtp_server(world.settings.smtp_port) as inbox:
        world.inbox = inbox
        yield world


def _database_text(world) -> str:
    """Every email token and outbox column, as one text to search for secrets."""
    engine = make_engine(world.url)
    with make_sessionmaker(engine)() as s:
        rows = [*s.scalars(select(EmailToken)), *s.scalars(select(EmailOutbox))]
        text = " ".join(str(getattr(r, c.key)) for r in rows for c in r.__table__.columns)
    engine.dispose()
    return text


def test_a_new_reset_link_invalidates_the_older_ones(world):
    email = world.email("acme", "viewer")
    browser = world.client()
    for _ in range(2):
        assert browser.post("/api/v1/auth/password-reset", json={"email": email}).status_code == 202
    world.inbox.wait_for(2)
    first, second = [token_from(body) for body in world.inbox.bodies_to(email)]
    old = browser.post("/api/v1/auth/password-reset/confirm",
                       json={"token": first, "new_password": "a brand new passphrase 1"})
    assert old.status_code == 400 and "invalid, used or expired" in old.json()["detail"]
    new = browser.post("/api/v1/auth/password-reset/confirm",
                       json={"token": second, "new_password": "a brand new passphrase 1"})
    assert new.status_code == 200
    assert first not in _database_text(world) and second not in _database_text(world)


def test_the_outbox_never_holds_a_usable_link_and_holds_none_after_delivery(world):
    email = world.email("acme", "staff")
    engine = make_engine(world.url)
    sm = make_sessionmaker(engine)
    with sm() as s, s.begin():  # queued, not delivered yet (as when the mail server is down)
        [outbox_id] = accounts.request_password_reset(s, world.settings, email)
        user = s.scalar(select(User).where(User.email == email))
        [verify_id] = [accounts.send_verification(s, world.settings, user).id]
    with sm() as s:
        queued = s.get(EmailOutbox, outbox_id)
        assert "token=" not in queued.body and mail.LINK in queued.body
        assert queued.link_ciphertext and "token=" not in queued.link_ciphertext  # encrypted, not encoded
    before = len(world.inbox.messages)
    assert mail.deliver_due(sm, world.settings, only=[outbox_id, verify_id]) == {"sent": 2, "failed": 0}
    world.inbox.wait_for(before + 2)
    delivered = world.inbox.bodies_to(email)[-2:]
    tokens = [token_from(body) for body in delivered]
    assert all(len(t) >= 40 for t in tokens)  # the recipient got working links...
    with sm() as s:
        for row in (s.get(EmailOutbox, outbox_id), s.get(EmailOutbox, verify_id)):
            assert row.sent_at is not None and row.link_ciphertext is None
            assert mail.REMOVED in row.body and "token=" not in row.body
    database = _database_text(world)
    assert not any(t in database for t in tokens)  # ...that the database no longer holds in any form
    engine.dispose()
    reset = world.client().post("/api/v1/auth/password-reset/confirm",
                                json={"token": tokens[0], "new_password": "another new passphrase 2"})
    assert reset.status_code == 200  # and the delivered link works
