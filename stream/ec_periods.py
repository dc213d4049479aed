"""One tower's open averaging period, buffered in preallocated float32 arrays, and its closing.

Periods are aligned to UTC multiples of the averaging period from the epoch (30 min: :00 and :30)
and labelled by their start. A sample at time t (its start) belongs to period
floor(t / period) and sits at index round((t - period start) x rate) of it: samples may arrive in
any order and batch size inside the open period; a repeated sample overwrites the earlier one.

The open period closes when a sample of a later period arrives (event time): it is handed to
`on_close` once, then the buffer is reset (filled with NaN) for the new period. Samples of a period
that has already closed are late: they are counted and dropped (the period's fluxes are published
and a replay of the journal reproduces exactly the same decision). A gap of whole periods closes
nothing in between: periods without data have no row.

Memory: the buffer holds `len(columns) x samples per period` float32 and nothing per sample, so a
tower costs its raw float32 size (+ a few hundred bytes of Python objects).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import numpy.typing as npt

NS = 1_000_000_000

Columns = Mapping[str, npt.NDArray[np.float32]]
OnClose = Callable[[int, dict[str, npt.NDArray[np.float32]], int], None]
"""(period start ns, columns (views of the buffer, valid during the call), samples received)."""


@dataclass
class AddStats:
    accepted: int = 0
    late: int = 0
    """Samples of periods already closed (dropped)."""
    outside: int = 0
    """Samples between the grid points (more than a quarter sample off); dropped."""


class PeriodBuffer:
    def __init__(self, columns: Sequence[str], sampling_hz: float, period_s: float) -> None:
        self.columns = tuple(columns)
        self.rate = sampling_hz
        self.period_ns = round(period_s * NS)
        self.samples = round(sampling_hz * period_s)
        self.data = np.full((len(self.columns), self.samples), np.nan, dtype=np.float32)
        self.start_ns: int | None = None
        """Start of the open period, None before the first sample."""
        self.received = 0
        self._seen = np.zeros(self.samples, dtype=bool)

    @property
    def nbytes(self) -> int:
        """Bytes held for samples (the arrays of the open period)."""
        return int(self.data.nbytes + self._seen.nbytes)

    def add(self, ts_ns: npt.NDArray[np.int64], columns: Columns, on_close: OnClose) -> AddStats:
        """Places samples (any order); closes the open period when a later one begins."""
        stats = AddStats()
        if ts_ns.size == 0:
            return stats
        period = ts_ns // self.period_ns
        lo, hi = int(period.min()), int(period.max())
        if lo == hi:  # the usual record: one period, placed without splitting it
            self._add_period(lo, ts_ns, columns, on_close, stats)
            return stats
        order = np.argsort(period, kind="stable")
        bounds = np.flatnonzero(np.diff(period[order])) + 1
        for sel in np.split(order, bounds):
            part = {k: v[sel] for k, v in columns.items()}
            self._add_period(int(period[sel[0]]), ts_ns[sel], part, on_close, stats)
        return stats

    def _add_period(
        self,
        index: int,
        ts: npt.NDArray[np.int64],
        columns: Columns,
        on_close: OnClose,
        stats: AddStats,
    ) -> None:
        p_start = index * self.period_ns
        if self.start_ns is not None and p_start < self.start_ns:
            stats.late += int(ts.size)
            return
        if self.start_ns is not None and p_start > self.start_ns:
            self.close(on_close)
        if self.start_ns is None:
            self.start_ns = p_start
        self._place(ts, columns, stats)

    def _place(self, ts: npt.NDArray[np.int64], columns: Columns, stats: AddStats) -> None:
        assert self.start_ns is not None
        pos = (ts - self.start_ns) * self.rate / NS
        idx = np.rint(pos).astype(np.int64)
        ok = (np.abs(pos - idx) <= 0.25) & (idx >= 0) & (idx < self.samples)
        everywhere = bool(ok.all())
        if not everywhere:
            stats.outside += int(ok.size - np.count_nonzero(ok))
            idx = idx[ok]
        for i, name in enumerate(self.columns):
            col = columns.get(name)
            if col is not None:
                self.data[i, idx] = col if everywhere else col[ok]
        fresh = idx[~self._seen[idx]]
        # Distinct new positions: a record's samples are usually in order without repeats.
        if fresh.size > 1 and not bool((np.diff(fresh) > 0).all()):
            fresh = np.unique(fresh)
        self.received += int(fresh.size)
        self._seen[idx] = True
        stats.accepted += int(idx.size)

    def close(self, on_close: OnClose) -> None:
        """Hands the open period to `on_close` (if it has samples) and resets the buffer."""
        if self.start_ns is not None and self.received:
            on_close(self.start_ns, dict(zip(self.columns, self.data, strict=True)), self.received)
        self.reopen(None)

    def reopen(self, start_ns: int | None) -> None:
        """Empties the buffer and opens the period starting at `start_ns` (None: none open). A
        resumed tower opens its period before placing its journal records again, so that their
        samples of earlier periods count as late instead of opening those periods."""
        self.data.fill(np.nan)
        self._seen.fill(False)
        self.received = 0
        self.start_ns = start_ns

    # Recovery from snapshots written before journal replay (samples inline), see stream/ec.py.
    def snapshot(self) -> tuple[int | None, int, bytes, bytes]:
        if self.start_ns is None:
            return (None, 0, b"", b"")
        top = int(np.flatnonzero(self._seen)[-1]) + 1 if self.received else 0
        return (
            self.start_ns,
            top,
            np.ascontiguousarray(self.data[:, :top]).tobytes(),
            np.packbits(self._seen[:top]).tobytes(),
        )

    def restore(self, snap: tuple[int | None, int, bytes, bytes]) -> None:
        start, top, data, seen = snap
        self.reopen(start)
        if top:
            self.data[:, :top] = np.frombuffer(data, dtype=np.float32).reshape(-1, top)
            self._seen[:top] = np.unpackbits(np.frombuffer(seen, dtype=np.uint8))[:top].astype(bool)
        self.received = int(self._seen.sum())
