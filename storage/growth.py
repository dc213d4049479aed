"""Grows product groups ahead of the data, on a thread of their own.

Why: growing a group resizes every array (one metadata document each), writes the new part of
the time coordinate and refreshes the consolidated metadata; creating one makes every array.
For the 76 arrays of ec/flux_2min that took 0.6-0.9 s on an idle 2-core machine and several
seconds under load. Done inside a flush, the dataflow's thread (and every alert behind it)
waited for it: when a store was new, and again each time the data entered a time chunk not
allocated yet (every 11 h for 2-min EC periods, every 4 h for 1-min meter intervals at the
default chunking). This thread creates the groups when the flow starts, keeps their rows as
many as the stream registry has, and, while a product's data is live (its newest period is in
the clock's time chunk or the one before), allocates the time chunk after the clock's. A flush
still grows the arrays itself when they are not big enough (data stamped ahead of the clock, a
stream registered a moment ago): correctness never depends on this thread.

Data far behind the clock (a replay, a backfill) is left to grow with itself, as before: the
time axis is not stretched to today, and a store built from the same input is the same store
whenever it is built.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from storage.database import DbLocation
from storage.metadata import MetadataDB
from storage.zarr_store import ProductStore

log = logging.getLogger(__name__)

INTERVAL_S = 1.0
"""How often the registry and the clock are looked at; a look that needs no growth costs a
registry count per axis."""


def ahead_target(
    store: ProductStore, registered: int, now_ns: int, newest_slot: int | None
) -> tuple[int, int]:
    """(streams, slots) the group should cover: every registered stream, and, while the data
    is live (`newest_slot`, the newest period written, in the clock's time chunk or the one
    before), the time chunk after the clock's; else no time (0)."""
    spec = store.spec
    clock_slot = spec.slot_of(now_ns)
    ct = spec.chunk_time
    if newest_slot is None or clock_slot < 0 or newest_slot // ct < clock_slot // ct - 1:
        return registered, 0
    return registered, (clock_slot // ct + 2) * ct


class GrowthAhead:
    """A thread growing `stores` ahead of their data until `stop` (see the module docstring)."""

    def __init__(
        self,
        stores: Sequence[ProductStore],
        db_path: DbLocation,
        newest_slot: Callable[[str], int | None],
        clock_ns: Callable[[], int] = time.time_ns,
        interval_s: float = INTERVAL_S,
        alive: Callable[[], bool] = lambda: True,
    ) -> None:
        """`db_path`: the metadata database with the stream registry; the thread opens a
        connection of its own. `newest_slot`: a product's newest period written so far, None
        before any. `alive`: the thread also ends once this is False (its owner was dropped
        without stopping it, e.g. a dataflow that ended in an error)."""
        self._stores = list(stores)
        self._db_path = db_path
        self._newest_slot = newest_slot
        self._clock_ns = clock_ns
        self._interval_s = interval_s
        self._alive = alive
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing: set[str] = set()
        """Products whose last growth failed: logged once, not every second."""

    def grow_once(self, stream_count: Callable[[str], int]) -> None:
        """Grows every store to its target now (the thread calls this every `interval_s`);
        `stream_count`: registered streams of an axis (`MetadataDB.stream_count`)."""
        counts: dict[str, int] = {}
        for store in self._stores:
            name = store.spec.name
            try:
                axis = store.spec.axis
                if axis not in counts:
                    counts[axis] = stream_count(axis)
                if store.allocated() is None:
                    store.ensure_shape(0, 0)  # opens (or creates) the group
                target = ahead_target(
                    store, counts[axis], self._clock_ns(), self._newest_slot(name)
                )
                store.ensure_shape(*target)
            except Exception as exc:  # the flushes grow what this could not
                if name not in self._failing:
                    log.warning("growing %s ahead of its data failed: %s", name, exc)
                    self._failing.add(name)
            else:
                self._failing.discard(name)

    def start(self) -> GrowthAhead:
        self._thread = threading.Thread(target=self._run, name="zarr-growth", daemon=True)
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join()

    def _run(self) -> None:
        db = MetadataDB(self._db_path)
        try:
            while not self._stop.is_set() and self._alive():
                self.grow_once(db.stream_count)
                self._stop.wait(self._interval_s)
        finally:
            db.close()
