"""The client's address, as login throttling (per address) and the security log see it.

X-Forwarded-For is believed only from the reverse proxies in `EZ360_TRUSTED_PROXIES` (default: none). uvicorn does
the believing: `ez360 serve api` starts it with `--forwarded-allow-ips` from that setting, or with
`--no-proxy-headers` when it is empty, so the address the app receives is already the right one.

The app does not take that on trust. With no proxy configured, a request whose X-Forwarded-For lists the very
address the server handed over was rewritten from the header by a server started with uvicorn's own default
(which believes 127.0.0.1): that address is the sender's claim, so the app uses `UNVERIFIED` instead, one
shared bucket that a sender cannot choose, rather than an address a sender picked to dodge the per-address limit
or to put a stranger's address into the log.
"""

from __future__ import annotations

from fastapi import Request

UNVERIFIED = "unverified-forwarded"


def forwarded_chain(request: Request) -> list[str]:
    return [hop.strip() for value in request.headers.getlist("x-forwarded-for") for hop in value.split(",")
            if hop.strip()]


def client_address(request: Request) -> str:
    peer = request.client.host if request.client else ""
    if not request.app.state.settings.trusted_proxy_list and peer and peer in forwarded_chain(request):
        return UNVERIFIED
    return peer
