"""A real HTTP webhook receiver on loopback, for delivery tests: it answers 503 to the first
`fail_first` requests, then 200, and records every request it saw."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType

import orjson


@dataclass(frozen=True)
class Received:
    status: int
    event_id: int
    timestamp: str
    signature: str
    body: bytes
    at: float  # time.monotonic() on arrival

    @property
    def event(self) -> dict[str, object]:
        parsed = orjson.loads(self.body)
        assert isinstance(parsed, dict)
        return parsed


class WebhookReceiver:
    def __init__(self, fail_first: int = 0) -> None:
        self.requests: list[Received] = []
        self._fail_left = fail_first
        self._lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                with receiver._lock:
                    status = 503 if receiver._fail_left > 0 else 200
                    receiver._fail_left -= 1
                    receiver.requests.append(
                        Received(
                            status,
                            int(self.headers["x-carbonstream-event-id"]),
                            self.headers["x-carbonstream-timestamp"],
                            self.headers["x-carbonstream-signature"],
                            body,
                            time.monotonic(),
                        )
                    )
                self.send_response(status)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}/hook"
        self._thread = threading.Thread(target=self._server.serve_forever, daemon=True)

    def accepted(self) -> list[Received]:
        with self._lock:
            return [r for r in self.requests if r.status == 200]

    def __enter__(self) -> WebhookReceiver:
        self._thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
