"""A minimal dataflow measuring what it costs to move an item between cluster processes.

Every worker generates its share of `items` numpy arrays of `size` float64 values (like the cell
and record batches of carbonstream's flow) and counts them in a sink on the same worker. With
`mode="exchange"` a `redistribute` step first sends each item to a random worker: with W workers
in W processes, (W - 1) / W of the items cross a process boundary (pickled, sent over TCP,
unpickled). The difference between the two modes, per crossing item, is the exchange cost.

    python -m bytewax.run "benchmarks.exchange_flow:build(200000, 1000, 'exchange')" \
        -i 0 -a "127.0.0.1:2101;127.0.0.1:2102"
"""

from __future__ import annotations

import numpy as np
from bytewax import operators as op
from bytewax.dataflow import Dataflow
from bytewax.inputs import DynamicSource, StatelessSourcePartition
from bytewax.outputs import DynamicSink, StatelessSinkPartition


class _Gen(StatelessSourcePartition[np.ndarray]):
    def __init__(self, n: int, size: int) -> None:
        self._left = n
        self._item = np.ones(size)

    def next_batch(self) -> list[np.ndarray]:
        if self._left <= 0:
            raise StopIteration()
        k = min(self._left, 256)
        self._left -= k
        return [self._item.copy() for _ in range(k)]


class _Source(DynamicSource[np.ndarray]):
    def __init__(self, items: int, size: int) -> None:
        self._items, self._size = items, size

    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Gen:
        share = self._items // worker_count + (worker_index < self._items % worker_count)
        return _Gen(share, self._size)


class _Count(StatelessSinkPartition[np.ndarray]):
    def __init__(self) -> None:
        self.n = 0

    def write_batch(self, items: list[np.ndarray]) -> None:
        self.n += len(items)


class _Sink(DynamicSink[np.ndarray]):
    def build(self, step_id: str, worker_index: int, worker_count: int) -> _Count:
        return _Count()


def build(items: int, size: int, mode: str) -> Dataflow:
    flow = Dataflow("exchange")
    s = op.input("gen", flow, _Source(items, size))
    if mode == "exchange":
        s = op.redistribute("cross", s)
    elif mode != "local":
        raise ValueError(mode)
    op.output("count", s, _Sink())
    return flow
