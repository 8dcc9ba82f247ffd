"""Faults a real API shows, put in front of any ASGI test server: rate limits, dropped connections, a hang.

`Faults(app, rate_limit_every=5)` answers every 5th request with Stripe's HTTP 429 instead of the app;
`drop_at={7}` sends the 7th response's headers and half its body, then closes the connection (the client
sees an incomplete read, as when a network path drops mid-transfer); `hold_at=12` parks the 12th request
until `release()` (a test kills the client meanwhile). Counts are of HTTP requests that reached the server.
"""

from __future__ import annotations

import asyncio
import json
import threading
from typing import Any


class Faults:
    def __init__(self, app: Any, *, rate_limit_every: int | None = None, rate_limit_always: bool = False,
                 retry_after: str | None = None, drop_at: set[int] | None = None, hold_at: int | None = None,
                 status: int = 429) -> None:
        self.app = app
        self.rate_limit_every, self.rate_limit_always = rate_limit_every, rate_limit_always
        self.retry_after, self.drop_at, self.hold_at, self.status = retry_after, drop_at or set(), hold_at, status
        self.requests = self.rate_limited = self.dropped = 0
        self.paths: list[str] = []
        self.held = threading.Event()
        self._released = threading.Event()

    def release(self) -> None:
        self._released.set()

    async def __call__(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        self.requests += 1
        number = self.requests
        self.paths.append(scope["path"])
        if number == self.hold_at:
            self.held.set()
            while not self._released.is_set():
                await asyncio.sleep(0.02)
        if self.rate_limit_always or (self.rate_limit_every and number % self.rate_limit_every == 0):
            self.rate_limited += 1
            body = json.dumps({"error": {"type": "invalid_request_error", "code": "rate_limit",
                                         "message": "Too many requests hit the API too quickly."}}).encode()
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
            if self.retry_after is not None:
                headers.append((b"retry-after", self.retry_after.encode()))
            await send({"type": "http.response.start", "status": self.status, "headers": headers})
            await send({"type": "http.response.body", "body": body})
            return
        if number in self.drop_at:
            self.dropped += 1
            await self._drop(scope, receive, send)
            return
        await self.app(scope, receive, send)

    async def _drop(self, scope: dict[str, Any], receive: Any, send: Any) -> None:
        captured: dict[str, Any] = {"headers": [], "body": b""}

        async def capture(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start":
                captured.update(status=message["status"], headers=message.get("headers", []))
            elif message["type"] == "http.response.body":
                captured["body"] += message.get("body", b"")

        await self.app(scope, receive, capture)
        body = captured["body"]
        headers = [(k, v) for k, v in captured["headers"] if k.lower() != b"content-length"]
        headers.append((b"content-length", str(len(body)).encode()))
        await send({"type": "http.response.start", "status": captured["status"], "headers": headers})
        await send({"type": "http.response.body", "body": body[: len(body) // 2], "more_body": True})
        raise ConnectionAbortedError("fault injection: connection dropped in the middle of the response")
