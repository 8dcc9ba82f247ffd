"""The email outbox: account mail is a row first; SMTP delivery to a real server; a failed send stays in the
outbox with its error and is retried (SQLite and PostgreSQL)."""

from __future__ import annotations

from datetime import timedelta

import pytest
from sqlalchemy import select

from operational_api.db.engine import make_engine, make_sessionmaker
from operational_api.db.models import utcnow
from operational_api.db.security_models import EmailOutbox
from operational_api.security import mail
from tests.support.migrated import migrate
from tests.support.security_world import free_port, settings_for, smtp_server


@pytest.fixture
def db_url(ops_db):
    return ops_db


def _outbox(sm):
    with sm() as db:
        return db.scalars(select(EmailOutbox).order_by(EmailOutbox.id)).all()


def test_a_failed_send_stays_in_the_outbox_and_is_retried_until_delivered(db_url):
    settings = settings_for(db_url, smtp_port=free_port(), outbox_retry_seconds=30)
    engine = make_engine(db_url)
    sm = make_sessionmaker(engine)
    with sm() as db, db.begin():
        mail.enqueue(db, "someone@acme.test", "Hello", "A body with a link https://testserver/x?token=abc")
    # nothing listens on the SMTP port yet
    assert mail.deliver_due(sm, settings) == {"sent": 0, "failed": 1}
    [row] = _outbox(sm)
    assert row.sent_at is None and row.attempts == 1 and "ConnectionRefusedError" in row.last_error
    assert mail.pending(sm()) and mail.pending(sm())[0].id == row.id  # visible to an operator
    with smtp_server(settings.smtp_port) as inbox:
        assert mail.deliver_due(sm, settings) == {"sent": 0, "failed": 0}  # not due before its retry time
        later = utcnow() + timedelta(seconds=31)
        assert mail.deliver_due(sm, settings, now=later) == {"sent": 1, "failed": 0}
        inbox.wait_for(1)
    [row] = _outbox(sm)
    assert row.sent_at is not None and row.attempts == 2 and row.last_error is None
    assert inbox.messages[0]["Subject"] == "Hello" and "token=abc" in inbox.messages[0].get_content()
    assert mail.deliver_due(sm, settings, now=later + timedelta(hours=1)) == {"sent": 0, "failed": 0}
    engine.dispose()


def test_retry_delay_doubles_and_delivery_gives_up_after_the_configured_attempts(db_url):
    settings = settings_for(db_url, smtp_port=free_port(), outbox_retry_seconds=10, outbox_max_attempts=3)
    engine = make_engine(db_url)
    sm = make_sessionmaker(engine)
    with sm() as db, db.begin():
        mail.enqueue(db, "someone@acme.test", "Hello", "body")
    now = utcnow()
    mail.deliver_due(sm, settings, now=now)
    assert _outbox(sm)[0].next_attempt_at.replace(tzinfo=None) >= (now + timedelta(seconds=10)).replace(tzinfo=None)
    mail.deliver_due(sm, settings, now=now + timedelta(seconds=11))
    second = _outbox(sm)[0]
    assert second.attempts == 2
    assert second.next_attempt_at.replace(tzinfo=None) >= (now + timedelta(seconds=31)).replace(tzinfo=None)
    mail.deliver_due(sm, settings, now=now + timedelta(minutes=5))
    assert mail.deliver_due(sm, settings, now=now + timedelta(hours=5)) == {"sent": 0, "failed": 0}
    [row] = _outbox(sm)
    assert row.attempts == 3 and row.sent_at is None and row.last_error  # left as failed, still visible
    engine.dispose()


def test_a_message_claimed_by_one_process_is_not_sent_by_another(db_url):
    settings = settings_for(db_url, smtp_port=free_port())
    engine_a, engine_b = make_engine(db_url), make_engine(db_url)
    sm_a, sm_b = make_sessionmaker(engine_a), make_sessionmaker(engine_b)
    with sm_a() as db, db.begin():
        mail.enqueue(db, "someone@acme.test", "Once", "body")
    sent = []

    def slow_sender(_settings, msg):  # while A is sending, B looks at the outbox
        sent.append(("a", msg["Subject"]))
        sent.append(("b", mail.deliver_due(sm_b, settings, sender=lambda s, m: sent.append(("b-sent", m)))))

    assert mail.deliver_due(sm_a, settings, sender=slow_sender) == {"sent": 1, "failed": 0}
    assert sent == [("a", "Once"), ("b", {"sent": 0, "failed": 0})]
    engine_a.dispose()
    engine_b.dispose()


def test_the_api_process_retries_the_outbox_by_itself(tmp_path):
    import time

    from fastapi.testclient import TestClient

    from operational_api.app import create_app

    url = f"sqlite:///{tmp_path / 'ops.sqlite3'}"
    migrate(url)
    settings = settings_for(url, smtp_port=free_port(), outbox_retry_seconds=1)
    engine = make_engine(url)
    sm = make_sessionmaker(engine)
    with sm() as db, db.begin():
        mail.enqueue(db, "someone@acme.test", "Queued while SMTP was down", "body")
    mail.deliver_due(sm, settings)  # fails: nothing listens yet
    with smtp_server(settings.smtp_port) as inbox, TestClient(create_app(settings)):  # lifespan: retry loop on
        inbox.wait_for(1, timeout=15)
        deadline = time.monotonic() + 5
        while _outbox(sm)[0].sent_at is None and time.monotonic() < deadline:
            time.sleep(0.1)
    assert [m["Subject"] for m in inbox.messages] == ["Queued while SMTP was down"]
    assert _outbox(sm)[0].sent_at is not None
    engine.dispose()
