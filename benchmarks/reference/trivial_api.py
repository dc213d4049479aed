"""The framework's ceiling, as the reference of the API benchmarks: a FastAPI app answering a
constant small JSON body, served by uvicorn exactly as the api role serves carbonstream
(uvloop + httptools, one worker, no access log). An endpoint of ours reaching a large fraction
of this is as fast as FastAPI lets it be.

Run: python -m benchmarks.reference.trivial_api PORT
"""

from __future__ import annotations

import sys

import uvicorn
from fastapi import FastAPI
from fastapi.responses import Response

app = FastAPI()
BODY = b'{"kind":"meters","id":"m","time":"2026-03-01T00:00:00Z","values":{"co2":0.5}}'


@app.get("/latest")
async def latest() -> Response:
    return Response(BODY, media_type="application/json")


if __name__ == "__main__":
    uvicorn.run(
        app,
        host="127.0.0.1",
        port=int(sys.argv[1]),
        loop="uvloop",
        http="httptools",
        log_level="warning",
        access_log=False,
    )
