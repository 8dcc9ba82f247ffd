"""Verifying a Stripe webhook delivery before anything else looks at it.

The HMAC check is the stripe SDK's (`stripe.WebhookSignature.verify_header`): HMAC-SHA256 of
`"{t}.{raw body}"`, compared in constant time against every `v1` signature in the header, so a header
carrying two `v1` signatures passes when one of them is valid (Stripe sends two during a secret roll).
Each configured secret is tried in turn (rotation). The time window is checked here rather than by the
SDK, because the SDK only refuses old timestamps: a delivery must be signed no more than
`TOLERANCE_SECONDS` ago and no more than `FUTURE_SKEW_SECONDS` ahead of our clock (a timestamp far in the
future would otherwise make a captured request replayable for that long).
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Sequence
from typing import Any

import stripe

TOLERANCE_SECONDS = 300
FUTURE_SKEW_SECONDS = 60
MAX_BODY_BYTES = 1024 * 1024
# Stripe's ids and event types are plain ASCII; anything else (a NUL, a control character, non-ASCII) is not a
# Stripe event, and must be refused here rather than reach the database.
EVENT_ID = re.compile(r"evt_[A-Za-z0-9_]{1,250}")
EVENT_TYPE = re.compile(r"[a-z0-9_]+(?:\.[a-z0-9_]+)*")
ACCOUNT_ID = re.compile(r"acct_[A-Za-z0-9_]{1,250}")


class WebhookRefused(Exception):
    """The delivery is not authentic, not fresh, or not a Stripe event; `reason` says which."""

    def __init__(self, reason: str):
        super().__init__(reason)
        self.reason = reason


def signed_timestamp(header: str) -> int:
    """The `t=` value of a Stripe-Signature header."""
    values = [part.split("=", 1)[1] for part in header.split(",") if part.strip().startswith("t=")]
    if len(values) != 1:
        raise WebhookRefused("the Stripe-Signature header must carry exactly one timestamp (t=)")
    try:
        return int(values[0].strip())
    except ValueError:
        raise WebhookRefused("the Stripe-Signature timestamp is not an integer") from None


def verify(payload: bytes, header: str | None, secrets: Sequence[str], *, now: float | None = None) -> int:
    """Check a delivery's signature and freshness; returns its signed timestamp or raises WebhookRefused."""
    if not header:
        raise WebhookRefused("the Stripe-Signature header is missing")
    try:
        text = payload.decode("utf-8")
    except UnicodeDecodeError:
        raise WebhookRefused("the body is not UTF-8") from None
    timestamp = signed_timestamp(header)
    for secret in secrets:
        try:
            stripe.WebhookSignature.verify_header(text, header, secret, tolerance=None)
            break
        except stripe.SignatureVerificationError:
            continue
    else:
        raise WebhookRefused("no v1 signature matches any configured webhook secret")
    now = time.time() if now is None else now
    if timestamp < now - TOLERANCE_SECONDS:
        raise WebhookRefused(f"the signature is older than {TOLERANCE_SECONDS} seconds (replayed or delayed)")
    if timestamp > now + FUTURE_SKEW_SECONDS:
        raise WebhookRefused("the signature timestamp lies in the future")
    return timestamp


def parse_event(payload: bytes) -> dict[str, Any]:
    """The event as a dict, after checking the fields the queue relies on."""
    try:
        event = json.loads(payload)
    except ValueError:
        raise WebhookRefused("the body is not JSON") from None
    if not isinstance(event, dict) or event.get("object") not in (None, "event"):
        raise WebhookRefused("the body is not a Stripe event")
    checks = {
        "id": isinstance(event.get("id"), str) and EVENT_ID.fullmatch(event["id"]) is not None,
        "type": isinstance(event.get("type"), str) and len(event["type"]) <= 100
        and EVENT_TYPE.fullmatch(event["type"]) is not None,
        "created": isinstance(event.get("created"), int) and not isinstance(event.get("created"), bool),
        "livemode": isinstance(event.get("livemode"), bool),
        "data.object": isinstance(event.get("data"), dict) and isinstance(event["data"].get("object"), dict),
    }
    missing = [name for name, ok in checks.items() if not ok]
    if missing:
        raise WebhookRefused(f"the event lacks valid {', '.join(missing)}")
    if event.get("account") is not None and not (isinstance(event["account"], str)
                                                 and ACCOUNT_ID.fullmatch(event["account"])):
        raise WebhookRefused("the event's account is not a Stripe account id")
    return event


def sign(payload: bytes | str, secret: str, timestamp: int | None = None) -> str:
    """A Stripe-Signature header for `payload` (what Stripe sends; used by tests and local tools)."""
    text = payload.decode("utf-8") if isinstance(payload, bytes) else payload
    return stripe.WebhookSignature.generate_signature_header(text, secret, timestamp=timestamp)
