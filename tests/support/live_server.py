"""Run any ASGI app under a real uvicorn server in a background thread, for tests that need HTTP.

The socket is bound before the server starts (port 0, so the OS picks a free port and there is no
race with other tests), the context waits until the server is accepting connections, and exit asks
uvicorn to stop and joins the thread, so nothing outlives the test.
"""

from __future__ import annotations

import socket
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import uvicorn


@contextmanager
def serve_app(app: Any, host: str = "127.0.0.1", startup_timeout: float = 15.0) -> Iterator[str]:
    """Serve `app`; yield its base URL such as `http://127.0.0.1:54321` (no trailing slash)."""
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((host, 0))
    port = sock.getsockname()[1]
    config = uvicorn.Config(app, log_level="warning", lifespan="off", access_log=False)
    server = uvicorn.Server(config)
    errors: list[BaseException] = []

    def run() -> None:
        try:
            server.run(sockets=[sock])
        except BaseException as exc:  # surfaced to the test below instead of dying silently
            errors.append(exc)

    thread = threading.Thread(target=run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + startup_timeout
        while not server.started:
            if errors or not thread.is_alive():
                raise RuntimeError(f"test server on port {port} failed to start") from (errors or [None])[0]
            if time.monotonic() > deadline:
                raise RuntimeError(f"test server on port {port} did not start within {startup_timeout}s")
            time.sleep(0.02)
        yield f"http://{host}:{port}"
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()
        if thread.is_alive() and sys.exc_info()[0] is None:  # never mask the test's own failure
            raise RuntimeError(f"test server on port {port} did not shut down within 10s")
