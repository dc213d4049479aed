"""The real API app served by uvicorn on a loopback port, in a thread of the test process.

For tests of one router against a real data directory over real HTTP and WebSocket connections
(the whole service, all roles, is in tests/e2e/).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager

import uvicorn

from api.app import create_app
from carbonstream.config import Config
from tests.conftest import free_port


@contextmanager
def live_api(config: Config) -> Iterator[str]:
    """Serves the API of `config`; yields its base URL (http://127.0.0.1:port)."""
    port = free_port()
    server = uvicorn.Server(
        uvicorn.Config(create_app(config), host="127.0.0.1", port=port, log_level="warning")
    )
    thread = threading.Thread(target=server.run, name="live-api", daemon=True)
    thread.start()
    deadline = time.monotonic() + 30
    while not server.started:
        if time.monotonic() > deadline or not thread.is_alive():
            raise RuntimeError("the API did not start")
        time.sleep(0.02)
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(30)
