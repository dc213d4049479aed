"""The `latest` cache: a hit costs no re-render, a product write invalidates it, and answers
never outlive the store by more than the check interval."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from types import SimpleNamespace

import pytest
from starlette.types import Message, Receive, Scope, Send

from api.latest import LatestCache, ProductState
from api.latest_fastpath import LatestFastPath
from storage.metadata import STATUS_ZARR, MetadataDB


def publish(db: MetadataDB, product: str, writer: str, max_slot: int) -> None:
    db.put_status(STATUS_ZARR, f"{product}#{writer}", {"max_slot": max_slot, "flushed_ns": 1})


def test_a_write_invalidates_only_the_product_written(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "meta.db")
    publish(db, "cems/hour", "w0", 10)
    publish(db, "meters/interval", "w0", 5)
    cache = LatestCache(db, check_s=0.0)
    renders: list[tuple[str, ProductState]] = []

    def render_for(name: str):  # type: ignore[no-untyped-def]
        def render(state: ProductState) -> bytes:
            renders.append((name, state))
            return f"{name}@{state.newest_slot}".encode()

        return render

    async def get(name: str) -> bytes:
        return await cache.get(name, name, render_for(name))

    assert asyncio.run(get("cems/hour")) == b"cems/hour@10"
    assert asyncio.run(get("meters/interval")) == b"meters/interval@5"
    assert asyncio.run(get("cems/hour")) == b"cems/hour@10"
    assert len(renders) == 2, "the second read of cems/hour was a hit"

    time.sleep(0.001)
    publish(db, "cems/hour", "w1", 12)  # a second writer moves the newest period on
    assert asyncio.run(get("cems/hour")) == b"cems/hour@12"
    assert asyncio.run(get("meters/interval")) == b"meters/interval@5"
    assert [n for n, _ in renders] == ["cems/hour", "meters/interval", "cems/hour"]


def test_the_store_is_checked_at_most_every_check_interval(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "meta.db")
    publish(db, "p", "w", 1)
    cache = LatestCache(db, check_s=0.3)
    assert cache.product("p").newest_slot == 1
    publish(db, "p", "w", 2)
    assert cache.product("p").newest_slot == 1, "within the interval: the known state"
    time.sleep(0.35)
    assert cache.product("p").newest_slot == 2
    assert cache.product("unknown") == ProductState(0, None)


def test_errors_are_not_cached_and_the_size_is_bounded(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "meta.db")
    cache = LatestCache(db, check_s=0.0, max_entries=3)
    calls = 0

    def failing(_: ProductState) -> bytes:
        nonlocal calls
        calls += 1
        raise LookupError("no such stream")

    for _ in range(2):
        with pytest.raises(LookupError):
            asyncio.run(cache.get("k", "p", failing))
    assert calls == 2

    for k in range(5):
        asyncio.run(cache.get(k, "p", lambda _, k=k: str(k).encode()))
    hits = []
    for k in range(5):
        asyncio.run(cache.get(k, "p", lambda _, k=k: hits.append(k) or b""))
    assert hits[:2] == [0, 1], "the oldest entries were evicted"


def test_concurrent_misses_of_one_key_share_one_render(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "meta.db")
    publish(db, "p", "w", 1)
    cache = LatestCache(db, check_s=10.0)
    renders = 0

    def slow_render(state: ProductState) -> bytes:
        nonlocal renders
        renders += 1
        time.sleep(0.2)
        return b"body"

    async def many() -> list[bytes]:
        return await asyncio.gather(*(cache.get("k", "p", slow_render) for _ in range(8)))

    assert asyncio.run(many()) == [b"body"] * 8
    assert renders == 1


class _App:
    """The ASGI app behind the fast path: records what reached it."""

    def __init__(self) -> None:
        self.calls: list[str] = []

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        self.calls.append(scope["path"])
        await send({"type": "http.response.start", "status": 404, "headers": []})
        await send({"type": "http.response.body", "body": b"app"})


def _serve(
    fast: LatestFastPath, state: object, path: str, query: bytes = b"", auth: bool = False
) -> tuple[int, bytes]:
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    async def receive() -> Message:
        return {"type": "http.request", "body": b""}

    scope = {
        "type": "http",
        "method": "GET",
        "path": path,
        "query_string": query,
        "headers": [(b"authorization", b"Bearer x")] if auth else [],
        "app": SimpleNamespace(state=SimpleNamespace(carbonstream=state)),
    }
    asyncio.run(fast(scope, receive, send))
    return int(sent[0]["status"]), bytes(sent[1]["body"])


def test_the_fast_path_serves_only_current_anonymous_hits(tmp_path: Path) -> None:
    db = MetadataDB(tmp_path / "meta.db")
    publish(db, "meters/interval", "w", 1)
    cache = LatestCache(db, check_s=0.0)
    state = SimpleNamespace(
        latest=cache,
        products_of=lambda kind: ["meters/interval"] if kind == "meters" else [],
        meters=SimpleNamespace(spec=SimpleNamespace(name="meters/interval")),
    )
    key = ("stream", "meters", "m-1", "meters/interval")
    asyncio.run(cache.get(key, "meters/interval", lambda s: b'{"id":"m-1"}'))
    asyncio.run(cache.get(("meters", 100, 0), "meters/interval", lambda s: b'{"items":[]}'))
    app = _App()
    fast = LatestFastPath(app, anonymous_read=True)

    assert _serve(fast, state, "/v1/streams/meters/m-1/latest") == (200, b'{"id":"m-1"}')
    assert _serve(fast, state, "/v1/meters/latest", b"limit=100") == (200, b'{"items":[]}')
    assert app.calls == [], "hits never reach the app"

    # Everything else goes to the app: a token, another parameter, a miss, another kind.
    _serve(fast, state, "/v1/streams/meters/m-1/latest", auth=True)
    _serve(fast, state, "/v1/streams/meters/m-1/latest", b"format=csv")
    _serve(fast, state, "/v1/streams/meters/m-2/latest")
    _serve(fast, state, "/v1/streams/cems/m-1/latest")
    _serve(fast, state, "/v1/meters/latest", b"limit=1")
    assert len(app.calls) == 5

    time.sleep(0.001)
    publish(db, "meters/interval", "w", 2)  # written again: the hit is stale
    assert _serve(fast, state, "/v1/streams/meters/m-1/latest") == (404, b"app")
    assert _serve(
        LatestFastPath(_App(), anonymous_read=False), state, "/v1/meters/latest", b"limit=100"
    ) == (404, b"app")
