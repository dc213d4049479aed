"""The api role: serves the FastAPI app with uvicorn (uvloop + httptools)."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from carbonstream.config import Config

GRACEFUL_SHUTDOWN_S = 3


def run_api(config: Config) -> int:
    uvicorn.run(
        create_app(config),
        host=config.api.host,
        port=config.api.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
        # Open SSE and WebSocket subscriptions never end by themselves: without a bound, a stop
        # waits for every subscriber to hang up (the supervisor then kills the role).
        timeout_graceful_shutdown=GRACEFUL_SHUTDOWN_S,
    )
    return 0
