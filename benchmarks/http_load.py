"""A small HTTP/1.1 load generator for benchmarks: keep-alive connections on one uvloop loop,
each sending its next GET as soon as the previous answer is complete (closed loop).

Written on raw asyncio protocols because an HTTP client library costs more CPU per request than
the server being measured; with the client pinned to the other core, the server's core is the
bottleneck. It understands exactly what uvicorn sends: a Content-Length body.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import cast

import numpy as np
import uvloop


@dataclass(frozen=True)
class LoadResult:
    requests: int
    seconds: float
    errors: int
    p50_ms: float
    p99_ms: float

    @property
    def per_s(self) -> float:
        return self.requests / self.seconds


class _Connection(asyncio.Protocol):
    def __init__(self, request: bytes, deadline: float, latencies: list[float]) -> None:
        self.request = request
        self.deadline = deadline
        self.latencies = latencies
        self.errors = 0
        self.done = asyncio.get_running_loop().create_future()
        self.buf = b""
        self.sent_at = 0.0
        self.transport: asyncio.Transport | None = None

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        # uvloop's transports implement asyncio.Transport without subclassing it.
        self.transport = cast(asyncio.Transport, transport)
        self._send()

    def _send(self) -> None:
        assert self.transport is not None
        self.sent_at = time.perf_counter()
        self.transport.write(self.request)

    def data_received(self, data: bytes) -> None:
        self.buf += data
        while True:
            head_end = self.buf.find(b"\r\n\r\n")
            if head_end < 0:
                return
            head = self.buf[:head_end].lower()
            at = head.find(b"content-length:")
            length = int(head[at + 15 : head.find(b"\r\n", at)]) if at >= 0 else 0
            total = head_end + 4 + length
            if len(self.buf) < total:
                return
            if not head.startswith(b"http/1.1 200"):
                self.errors += 1
            self.buf = self.buf[total:]
            now = time.perf_counter()
            self.latencies.append(now - self.sent_at)
            if now >= self.deadline:
                assert self.transport is not None
                self.transport.close()
                return
            self._send()

    def connection_lost(self, exc: Exception | None) -> None:
        if not self.done.done():
            self.done.set_result(None)


async def _run(host: str, port: int, path: str, connections: int, seconds: float) -> LoadResult:
    loop = asyncio.get_running_loop()
    request = f"GET {path} HTTP/1.1\r\nhost: {host}\r\naccept: */*\r\n\r\n".encode()
    latencies: list[float] = []
    started = time.perf_counter()
    deadline = started + seconds
    conns: list[_Connection] = []
    for _ in range(connections):
        _, proto = await loop.create_connection(
            lambda: _Connection(request, deadline, latencies), host, port
        )
        conns.append(proto)
    await asyncio.gather(*(c.done for c in conns))
    elapsed = time.perf_counter() - started
    ms = np.array(latencies) * 1000
    return LoadResult(
        len(latencies),
        elapsed,
        sum(c.errors for c in conns),
        float(np.percentile(ms, 50)),
        float(np.percentile(ms, 99)),
    )


def closed_loop_load(
    port: int, path: str, connections: int = 16, seconds: float = 5.0, host: str = "127.0.0.1"
) -> LoadResult:
    """GET `path` over `connections` keep-alive connections for `seconds`."""
    return uvloop.run(_run(host, port, path, connections, seconds))
