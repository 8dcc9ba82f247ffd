"""Account email through an outbox (ASVS 5.0 V6.4 / V13): a message is a row in `email_outbox`, written in the
same transaction as the change that needs it, then delivered over SMTP (`EZ360_SMTP_*`).

A failed send stays in the outbox with its attempt count and last error (visible in the table and the log)
and is retried later with a doubling delay, up to `EZ360_OUTBOX_MAX_ATTEMPTS`. Rows are claimed with an
atomic UPDATE before sending, so two server processes never send the same message twice at once.

A mail that carries a live secret (a verification, reset or invitation link) keeps it out of its body: the body
holds the `LINK` placeholder and the link itself is stored encrypted in `link_ciphertext`, put into the message
only at send time and erased once delivered (or given up), so the outbox never holds a usable link in clear
and, after delivery, none at all.
"""

from __future__ import annotations

import asyncio
import logging
import smtplib
import ssl
from datetime import datetime, timedelta
from email.message import EmailMessage
from email.utils import make_msgid

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from operational_api.db.models import utcnow
from operational_api.db.security_models import EmailOutbox
from operational_api.security import encryption

log = logging.getLogger("ez360.mail")
CLAIM = timedelta(minutes=2)
LINK = "[[ez360:link]]"  # where a mail's secret link goes; replaced at send time
REMOVED = "[link removed after delivery]"


def enqueue(db: Session, to: str, subject: str, body: str, *, link: str | None = None) -> EmailOutbox:
    """Queue a mail; a `link` carrying a secret goes where the body says `LINK`, and is stored encrypted."""
    if link is not None and LINK not in body:
        raise ValueError("a mail with a link needs the LINK placeholder in its body")
    row = EmailOutbox(to_address=to, subject=subject, body=body, next_attempt_at=utcnow(),
                      link_ciphertext=None if link is None else encryption.encrypt(link, db))
    db.add(row)
    db.flush()
    return row


def render_body(row: EmailOutbox, db: Session | None = None) -> str:
    if row.link_ciphertext is None:
        return row.body
    return row.body.replace(LINK, encryption.decrypt(row.link_ciphertext, db))


def _forget_link(row: EmailOutbox) -> None:
    """Delivered or given up: the link is no longer kept anywhere in the outbox."""
    if row.link_ciphertext is not None or LINK in row.body:
        row.link_ciphertext, row.body = None, row.body.replace(LINK, REMOVED)


def build_message(settings, row: EmailOutbox, db: Session | None = None) -> EmailMessage:
    msg = EmailMessage()
    msg["From"] = settings.mail_from
    msg["To"] = row.to_address
    msg["Subject"] = row.subject
    msg["Message-ID"] = make_msgid(domain="ez360.invalid")
    msg.set_content(render_body(row, db))
    return msg


def send_smtp(settings, msg: EmailMessage) -> None:
    with smtplib.SMTP(settings.smtp_host, settings.smtp_port, timeout=settings.smtp_timeout_seconds) as smtp:
        if settings.smtp_starttls:
            smtp.starttls(context=ssl.create_default_context())
        if settings.smtp_username:
            smtp.login(settings.smtp_username, settings.smtp_password.get_secret_value())
        smtp.send_message(msg)


def _claim(session: Session, row_id: int, now: datetime) -> bool:
    result = session.execute(
        update(EmailOutbox)
        .where(EmailOutbox.id == row_id, EmailOutbox.sent_at.is_(None),
               or_(EmailOutbox.claimed_until.is_(None), EmailOutbox.claimed_until < now))
        .values(claimed_until=now + CLAIM))
    session.commit()
    return result.rowcount == 1


def deliver_due(sm: sessionmaker, settings, *, now: datetime | None = None, only: list[int] | None = None,
                sender=send_smtp) -> dict[str, int]:
    """Try every message that is due (or just `only` these); returns counts of sent and failed."""
    now = now or utcnow()
    counts = {"sent": 0, "failed": 0}
    with sm() as session:
        query = select(EmailOutbox.id).where(EmailOutbox.sent_at.is_(None),
                                             EmailOutbox.attempts < settings.outbox_max_attempts,
                                             EmailOutbox.next_attempt_at <= now)
        if only is not None:
            query = query.where(EmailOutbox.id.in_(only))
        due = session.scalars(query.order_by(EmailOutbox.id)).all()
        for row_id in due:
            if not _claim(session, row_id, now):
                continue
            row = session.get(EmailOutbox, row_id, populate_existing=True)
            row.attempts += 1
            try:
                sender(settings, build_message(settings, row, session))
            except (OSError, smtplib.SMTPException, encryption.SecretUnreadable) as exc:
                delay = timedelta(seconds=settings.outbox_retry_seconds * 2 ** (row.attempts - 1))
                row.last_error = f"{type(exc).__name__}: {exc}"[:500]
                row.next_attempt_at = now + min(delay, timedelta(hours=6))
                if row.attempts >= settings.outbox_max_attempts:
                    _forget_link(row)
                counts["failed"] += 1
                log.warning("email %s to %s failed (attempt %s of %s): %s", row.id, row.to_address, row.attempts,
                            settings.outbox_max_attempts, row.last_error)
            else:
                row.sent_at, row.last_error = utcnow(), None
                _forget_link(row)
                counts["sent"] += 1
            row.claimed_until = None
            session.commit()
    return counts


def pending(db: Session) -> list[EmailOutbox]:
    """Messages not delivered yet (including those that gave up), oldest first: what an operator looks at."""
    return list(db.scalars(select(EmailOutbox).where(EmailOutbox.sent_at.is_(None)).order_by(EmailOutbox.id)))


async def retry_loop(sm: sessionmaker, settings) -> None:
    """Runs in the API process: retries due messages every `EZ360_OUTBOX_RETRY_SECONDS`."""
    while True:
        await asyncio.sleep(settings.outbox_retry_seconds)
        try:
            await asyncio.to_thread(deliver_due, sm, settings)
        except Exception:  # noqa: BLE001 - the loop must survive a database hiccup; it is logged
            log.exception("outbox delivery pass failed")
