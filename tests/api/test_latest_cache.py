"""The `latest` cache: a hit costs no re-render, a product write invalidates it, and answers
never outlive the store by more than the check interval."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest

from api.latest import LatestCache, ProductState
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
