"""Security audit trail: one row per authentication or account event, and the same line in the log.

Never records a password, a code, a token or a session id. Attempted sign-ins for addresses that are not
accounts are recorded by a short hash of the address, so typos of passwords into the email field do not
end up in the audit trail in clear text.
"""

from __future__ import annotations

import hashlib
import logging
from datetime import datetime

from sqlalchemy.orm import Session

from operational_api.db.models import utcnow
from operational_api.db.security_models import SecurityEvent

log = logging.getLogger("ez360.security")


def identifier_hash(identifier: str) -> str:
    return hashlib.sha256(identifier.strip().lower().encode()).hexdigest()[:16]


def record(db: Session, event: str, *, user_id: int | None = None, company_id: int | None = None,
           ip: str = "", now: datetime | None = None, **detail) -> SecurityEvent:
    row = SecurityEvent(event=event, user_id=user_id, company_id=company_id, ip_address=ip[:64],
                        detail=detail, occurred_at=now or utcnow())
    db.add(row)
    log.info("security event %s user=%s company=%s ip=%s %s", event, user_id, company_id, ip, detail)
    return row
