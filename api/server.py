"""The api role: serves the FastAPI app with uvicorn (uvloop + httptools)."""

from __future__ import annotations

import uvicorn

from api.app import create_app
from carbonstream.config import Config


def run_api(config: Config) -> int:
    uvicorn.run(
        create_app(config),
        host=config.api.host,
        port=config.api.port,
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )
    return 0
