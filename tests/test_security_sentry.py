"""Sentry: an error in an API route reaches the configured DSN (here a small HTTP server on 127.0.0.1 that
receives the real envelopes) with environment, release and component, and with no secret in it."""

from __future__ import annotations

import gzip
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
import sentry_sdk
from fastapi.testclient import TestClient

from ez360.core.observability import FILTERED, scrub_event
from operational_api.app import create_app
from tests.support.platform import free_port
from tests.support.security_world import settings_for

SECRETS = {
    "password": "hunter2-correct-horse", "token": "ez360_Zk3vQ9sTokenValue0123456789", "cookie": "CookieSecret0042",
    "csrf": "CsrfSecret0099", "query": "QueryTokenSecret77", "code": "493021",
}


class Envelopes(BaseHTTPRequestHandler):
    received: list[bytes] = []

    def do_POST(self):  # noqa: N802 - http.server's handler name
        body = self.rfile.read(int(self.headers["Content-Length"]))
        if self.headers.get("Content-Encoding") == "gzip":
            body = gzip.decompress(body)
        Envelopes.received.append(body)
        self.send_response(200)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *_args):
        pass


@pytest.fixture
def sentry_server():
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), Envelopes)
    Envelopes.received = []
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://publickey@127.0.0.1:{server.server_address[1]}/1"
    sentry_sdk.get_client().close()
    sentry_sdk.init()  # no DSN: Sentry off again for the rest of the session
    server.shutdown()
    server.server_close()


def _events(raw: list[bytes]) -> list[dict]:
    """The event items of the received envelopes (header line, then item header and payload lines)."""
    events = []
    for envelope in raw:
        lines = envelope.split(b"\n")
        for header, payload in zip(lines[1::2], lines[2::2], strict=False):
            if json.loads(header).get("type") == "event":
                events.append(json.loads(payload))
    return events


def test_an_error_in_an_api_route_reaches_sentry_without_any_secret(tmp_path, sentry_server):
    # an ops DB without its schema: signing in fails inside the route with a database error
    app = create_app(settings_for(f"sqlite:///{tmp_path / 'not-migrated.sqlite3'}", sentry_dsn=sentry_server,
                                  release="ez360@1.2.3", environment="test"))
    client = TestClient(app, base_url="https://testserver", raise_server_exceptions=False)
    response = client.post(f"/api/v1/auth/login?token={SECRETS['query']}&code={SECRETS['code']}&page=2",
                           json={"email": "ana@example.test", "password": SECRETS["password"]},
                           headers={"Authorization": f"Bearer {SECRETS['token']}", "X-CSRF-Token": SECRETS["csrf"],
                                    "Cookie": f"ez360_session={SECRETS['cookie']}"})
    assert response.status_code == 500
    sentry_sdk.flush(timeout=10)

    [event] = [e for e in _events(Envelopes.received) if e.get("exception")]
    assert "no such table: users" in json.dumps(event["exception"])
    assert (event["environment"], event["release"], event["tags"]["component"]) == ("test", "ez360@1.2.3", "api")
    request = event["request"]
    assert request["url"].endswith("/api/v1/auth/login") and request["data"]["email"] == "ana@example.test"
    assert request["data"]["password"] == FILTERED and request["headers"]["authorization"] == FILTERED
    raw = b"".join(Envelopes.received).decode()
    assert [name for name, secret in SECRETS.items() if secret in raw] == []


def test_the_scrubber_reaches_extra_data_breadcrumbs_messages_and_header_lists():
    event = {
        "extra": {"otpauth_uri": "otpauth://totp/EZ360:ana?secret=JBSWY3DPEHPK3PXP", "invoice": 7,
                  "nested": [{"recovery_code": "abcd-efgh-jkmn-pqrs", "amount": "12.00"}]},
        "breadcrumbs": {"values": [{"message": "GET /verify-email?token=LinkSecret123 and whsec_RotatedSecret9",
                                    "data": {"api_key": "sk_live_51AbCdEf"}}]},
        "logentry": {"message": "stripe said sk_test_4eC39HqLyjWDarjtT1zdp7dc for Bearer abc.def"},
        "request": {"headers": [["Authorization", "Basic dXNlcjpwYXNz"], ["Accept", "text/html"]]},
    }
    scrubbed = json.dumps(scrub_event(event, {}))
    for secret in ("JBSWY3DPEHPK3PXP", "abcd-efgh", "LinkSecret123", "whsec_RotatedSecret9", "sk_live_51AbCdEf",
                   "sk_test_4eC39H", "abc.def", "dXNlcjpwYXNz"):
        assert secret not in scrubbed
    for kept in ('"invoice": 7', '"amount": "12.00"', "text/html", "GET /verify-email?token="):
        assert kept in scrubbed  # what is not a secret stays, for debugging
