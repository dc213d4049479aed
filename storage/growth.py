"""Grows the time axis of live products ahead of their data, on a thread of its own.

Why: growing a group resizes every array (one metadata document each), writes the new part of
the time coordinate and refreshes the consolidated metadata: 0.6-0.9 s for the 76 arrays of
ec/flux_2min on an idle 2-core machine, several seconds under load. Done inside a flush, the
dataflow's thread (and every alert behind it) waited for it each time the data entered a time
chunk not allocated yet (every 11 h for 2-min EC periods, every 4 h for 1-min meter intervals
at the default chunking). While a product's data is live (its newest period staged is in the
clock's time chunk or the one before), this thread allocates the time chunk after the clock's,
so the flushes find it there.

It grows nothing else, so a store is the same whichever deployment built it (one process, a
cluster, an object store, where the thread does not run): the rows and the first time chunks
are grown by the flushes, as the data need them, and data far behind the clock (a replay, a
backfill) grow their own time axis, which is not stretched to today. A flush still grows the
arrays itself whenever they are too small: correctness never depends on this thread.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence

from storage.zarr_store import ProductStore

log = logging.getLogger(__name__)

INTERVAL_S = 1.0
"""How often the clock is looked at; a look that needs no growth costs a shape comparison."""


def ahead_target(store: ProductStore, now_ns: int, newest_slot: int | None) -> int | None:
    """Periods the time axis should cover: through the time chunk after the clock's while the
    data is live (`newest_slot`, the newest period staged, in the clock's time chunk or the
    one before); None when it is not."""
    spec = store.spec
    clock_slot = spec.slot_of(now_ns)
    ct = spec.chunk_time
    if newest_slot is None or clock_slot < 0 or newest_slot // ct < clock_slot // ct - 1:
        return None
    return (clock_slot // ct + 2) * ct


class GrowthAhead:
    """A thread growing `stores` ahead of their data until `stop` (see the module docstring)."""

    def __init__(
        self,
        stores: Sequence[ProductStore],
        newest_slot: Callable[[str], int | None],
        clock_ns: Callable[[], int] = time.time_ns,
        interval_s: float = INTERVAL_S,
        alive: Callable[[], bool] = lambda: True,
    ) -> None:
        """`newest_slot`: a product's newest period staged so far, None before any. `alive`:
        the thread also ends once this is False (its owner was dropped without stopping it,
        e.g. a dataflow that ended in an error)."""
        self._stores = list(stores)
        self._newest_slot = newest_slot
        self._clock_ns = clock_ns
        self._interval_s = interval_s
        self._alive = alive
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failing: set[str] = set()
        """Products whose last growth failed: logged once, not every second."""

    def grow_once(self) -> None:
        """Grows every live store's time axis to its target now (the thread calls this every
        `interval_s`)."""
        for store in self._stores:
            name = store.spec.name
            try:
                slots = ahead_target(store, self._clock_ns(), self._newest_slot(name))
                if slots is not None:
                    store.ensure_shape(0, slots)
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
        while not self._stop.is_set() and self._alive():
            self.grow_once()
            self._stop.wait(self._interval_s)
