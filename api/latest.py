"""`latest` answers: the newest period with data per stream, rendered once per product write.

Dashboards and alerting consumers poll `latest` far more often than the products change (a meter
interval closes every minutes, a flux every 30 min), so a rendered answer is kept until the
product it came from is written again. Whether it was is read from the writers' published status
(one small SQLite query, at most every CHECK_S, shared by every product), so a hit costs a dict
lookup and no Zarr read, and an answer is at most CHECK_S older than the store.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
from starlette.concurrency import run_in_threadpool

from storage.metadata import STATUS_ZARR, MetadataDB
from storage.zarr_store import ProductReader

CHECK_S = 0.25
MAX_ENTRIES = 4096
LOOKBACK_SLOTS = 16
"""How far back from a product's newest period a fleet page of `latest` looks (one small read:
a stream silent longer than that is shown as silent)."""
SEARCH_SLOTS = 1_000_000
"""How far back a single stream's `latest` may search (chunk by chunk, only on a cache miss)."""


@dataclass(frozen=True)
class ProductState:
    version: int
    """Changes whenever a writer of the product publishes a flush."""
    newest_slot: int | None


class LatestCache:
    def __init__(self, db: MetadataDB, check_s: float = CHECK_S, max_entries: int = MAX_ENTRIES):
        self._db = db
        self._check_s = check_s
        self._max_entries = max_entries
        self._products: dict[str, ProductState] = {}
        self._checked = float("-inf")
        self._entries: OrderedDict[Hashable, tuple[int, bytes]] = OrderedDict()
        self._lock = threading.Lock()
        self._in_flight: dict[tuple[Hashable, int], asyncio.Future[bytes]] = {}
        """Renders under way, by key and product version (touched on the event loop only)."""

    def product(self, name: str) -> ProductState:
        now = time.monotonic()
        if now - self._checked > self._check_s:
            self._products = self._read_states()
            self._checked = now
        return self._products.get(name, ProductState(0, None))

    def _read_states(self) -> dict[str, ProductState]:
        versions: dict[str, int] = {}
        newest: dict[str, int] = {}
        for (_, key), (value, updated_ns) in self._db.status(STATUS_ZARR).items():
            name = key.split("#", 1)[0]
            versions[name] = max(versions.get(name, 0), updated_ns)
            slot = int(value.get("max_slot", -1))
            if slot >= 0:
                newest[name] = max(newest.get(name, -1), slot)
        return {n: ProductState(v, newest.get(n)) for n, v in versions.items()}

    def peek(self, key: Hashable, product: str) -> bytes | None:
        """The cached body for `key` if it is current, else None (nothing is rendered)."""
        state = self.product(product)
        with self._lock:
            hit = self._entries.get(key)
            if hit is not None and hit[0] == state.version:
                self._entries.move_to_end(key)
                return hit[1]
        return None

    async def get(
        self, key: Hashable, product: str, render: Callable[[ProductState], bytes]
    ) -> bytes:
        """The cached body for `key` if `product` was not written since; else renders it (in a
        worker thread: it reads Zarr) and keeps it. Concurrent misses of one key share a single
        render (a dashboard fleet asking at once must not start as many Zarr searches). Errors
        raised by `render` are not cached."""
        state = self.product(product)
        cached = self.peek(key, product)
        if cached is not None:
            return cached
        flight_key = (key, state.version)
        running = self._in_flight.get(flight_key)
        if running is not None:
            return await asyncio.shield(running)
        future: asyncio.Future[bytes] = asyncio.get_running_loop().create_future()
        self._in_flight[flight_key] = future
        try:
            body = await run_in_threadpool(render, state)
        except BaseException as exc:
            future.set_exception(exc)
            future.exception()  # retrieved: waiters re-raise it, nobody else must
            raise
        finally:
            del self._in_flight[flight_key]
        future.set_result(body)
        with self._lock:
            self._entries[key] = (state.version, body)
            self._entries.move_to_end(key)
            while len(self._entries) > self._max_entries:
                self._entries.popitem(last=False)
        return body


def newest_cells(
    reader: ProductReader,
    rows: Sequence[int],
    newest_slot: int | None,
    search_slots: int = LOOKBACK_SLOTS,
) -> list[tuple[int, dict[str, Any]] | None]:
    """Per row: (slot, {variable: value}) of its newest period with any value, looking back at
    most `search_slots` periods from the product's newest one; None when there is none.

    The search walks back from the newest time chunk in windows that double (1, 2, 4...
    chunks) and stops when every row is found: a live stream costs one small read, a stream
    silent for months a few reads (not one per chunk), and only rows still missing are read
    again.
    """
    out: list[tuple[int, dict[str, Any]] | None] = [None] * len(rows)
    if newest_slot is None or not rows:
        return out
    missing = list(range(len(rows)))
    stop, floor = newest_slot + 1, max(0, newest_slot + 1 - search_slots)
    chunks = 1
    while missing and stop > floor:
        chunk = reader.spec.chunk_time
        first = max(floor, ((stop - 1) // chunk - chunks + 1) * chunk)
        chunks *= 2
        data = reader.read([rows[i] for i in missing], first, stop)
        present = np.zeros((len(missing), stop - first), dtype=bool)
        for v in reader.spec.presence_variables():
            present |= v.holds(data[v.name])
        still: list[int] = []
        for k, i in enumerate(missing):
            cols = np.flatnonzero(present[k])
            if cols.size == 0:
                still.append(i)
                continue
            j = int(cols[-1])
            out[i] = (first + j, {name: block[k, j].item() for name, block in data.items()})
        missing, stop = still, first
    return out
