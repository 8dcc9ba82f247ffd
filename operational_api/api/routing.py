"""The route class of the records and money API.

- JSON numbers in request bodies are parsed as Decimal, never float, so `"amount": 0.1` arrives exactly.
- A database refusal raised by one of the integrity triggers (messages start with "ez360:") becomes a 409
  problem document instead of a server error, in case a request reaches one past the services' own checks.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from decimal import Decimal

from fastapi import Request, Response
from fastapi.routing import APIRoute
from sqlalchemy.exc import DBAPIError

from operational_api.services.errors import ImmutableRecord

TRIGGER_MARK = "ez360:"


class DecimalRequest(Request):
    async def json(self):
        if not hasattr(self, "_json"):
            self._json = json.loads(await self.body(), parse_float=Decimal)
        return self._json


def trigger_message(exc: DBAPIError) -> str | None:
    text = str(exc.orig) if exc.orig is not None else str(exc)
    if TRIGGER_MARK not in text:
        return None
    return text[text.index(TRIGGER_MARK) + len(TRIGGER_MARK):].splitlines()[0].strip()


class MoneyRoute(APIRoute):
    def get_route_handler(self) -> Callable:
        handler = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handler(DecimalRequest(request.scope, request.receive))
            except DBAPIError as exc:
                message = trigger_message(exc)
                if message is None:
                    raise
                raise ImmutableRecord(message) from exc

        return route
