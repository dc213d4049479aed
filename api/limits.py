"""A request-size limit for every route (pure ASGI, so it also covers chunked bodies that carry
no Content-Length): a body over the limit is refused with 413 before it is buffered."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from api.errors import MEDIA_TYPE

SQL_INT_MAX = (1 << 63) - 1
"""The largest integer SQLite stores: the bound of ids and offsets taken from a request."""
MAX_OFFSET = 1 << 62
"""The bound of paging offsets (an offset plus a limit still fits SQLite's integers)."""


def parse_seq(value: str | None) -> int | None:
    """An event sequence number from a header or query value (ASCII digits within SQLite's
    integers); None when absent or not one."""
    if value is None or not (value.isascii() and value.isdigit()) or len(value) > 19:
        return None
    seq = int(value)
    return seq if seq <= SQL_INT_MAX else None


class BodyLimit:
    def __init__(self, app: ASGIApp, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        declared = headers.get(b"content-length")
        if declared is not None and declared.isdigit():
            if int(declared) > self.max_bytes:
                await _refuse(scope, send, self.max_bytes)
                return
            # Within the limit, and the server delivers no more than it declared.
            await self.app(scope, receive, send)
            return
        if declared is None and b"transfer-encoding" not in headers:
            # No body at all (HTTP/1.1: neither a length nor chunking), as for nearly every GET:
            # wrapping send and receive would cost each of them for nothing.
            await self.app(scope, receive, send)
            return
        seen = 0
        started = False

        async def limited_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    raise _TooLarge()
            return message

        async def tracking_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, limited_receive, tracking_send)
        except _TooLarge:
            if not started:
                await _refuse(scope, send, self.max_bytes)


class _TooLarge(Exception):
    pass


async def _refuse(scope: Scope, send: Send, limit: int) -> None:
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": "Body too large",
        "status": 413,
        "detail": f"the request body exceeds the {limit}-byte limit",
        "instance": scope.get("path", ""),
    }
    payload = orjson.dumps(body)
    await send(
        {
            "type": "http.response.start",
            "status": 413,
            "headers": [
                (b"content-type", MEDIA_TYPE.encode()),
                (b"content-length", str(len(payload)).encode()),
            ],
        }
    )
    await send({"type": "http.response.body", "body": payload})
