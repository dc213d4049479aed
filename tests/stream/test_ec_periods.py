"""The open-period buffer (stream/ec_periods.py): where samples land, what closes a period, and
what is counted as late or off the grid, whatever the order and batching of the samples."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt

from stream.ec_periods import OnClose, PeriodBuffer

NS = 1_000_000_000
RATE, PERIOD_S = 10.0, 60.0
T0 = 1_772_323_200 * NS  # a period boundary
STEP = NS // int(RATE)

Closed = list[tuple[int, dict[str, npt.NDArray[np.float32]], int]]


def buffer() -> tuple[PeriodBuffer, Closed]:
    return PeriodBuffer(["w", "ts"], RATE, PERIOD_S), []


def keep(closed: Closed) -> OnClose:
    def on_close(start: int, cols: dict[str, npt.NDArray[np.float32]], n: int) -> None:
        closed.append((start, {k: v.copy() for k, v in cols.items()}, n))

    return on_close


def samples(
    i: npt.NDArray[np.int64],
) -> tuple[npt.NDArray[np.int64], dict[str, npt.NDArray[np.float32]]]:
    """Samples at grid positions `i` from T0, valued by their position."""
    return T0 + i * STEP, {"w": i.astype(np.float32), "ts": -i.astype(np.float32)}


def test_any_order_and_batching_give_the_same_period() -> None:
    n = int(RATE * PERIOD_S)
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(n)
    b, closed = buffer()
    for part in np.array_split(shuffled, 7):
        stats = b.add(*samples(part), keep(closed))
        assert (stats.late, stats.outside) == (0, 0)
    assert b.received == n and not closed
    b.add(*samples(np.array([n])), keep(closed))  # the next period's first sample closes it
    ((start, cols, received),) = closed
    assert (start, received) == (T0, n)
    np.testing.assert_array_equal(cols["w"], np.arange(n, dtype=np.float32))
    np.testing.assert_array_equal(cols["ts"], -np.arange(n, dtype=np.float32))
    assert b.start_ns == T0 + int(PERIOD_S) * NS and b.received == 1


def test_repeated_samples_overwrite_and_count_once() -> None:
    b, closed = buffer()
    b.add(*samples(np.array([3, 1, 3, 2, 1])), keep(closed))  # repeats inside one record
    assert b.received == 3
    ts, cols = samples(np.array([2, 4]))
    cols["w"] = np.array([20.0, 40.0], np.float32)
    b.add(ts, cols, keep(closed))  # one repeat across records
    assert b.received == 4
    assert b.data[0, 1:5].tolist() == [1.0, 20.0, 3.0, 40.0]


def test_a_record_across_a_boundary_closes_the_first_period_and_late_samples_are_counted() -> None:
    n = int(RATE * PERIOD_S)
    b, closed = buffer()
    b.add(*samples(np.arange(0, n - 5)), keep(closed))
    stats = b.add(*samples(np.arange(n - 5, n + 5)), keep(closed))
    assert stats.accepted == 10 and len(closed) == 1 and closed[0][2] == n
    assert b.received == 5
    late = b.add(*samples(np.array([10, 11])), keep(closed))
    assert (late.late, late.accepted, len(closed)) == (2, 0, 1)


def test_off_grid_samples_are_dropped_and_counted() -> None:
    b, closed = buffer()
    ts, cols = samples(np.arange(4))
    ts = ts + np.array([0, STEP // 2, STEP // 10, 0])  # half a step off: no grid point
    stats = b.add(ts, cols, keep(closed))
    assert (stats.accepted, stats.outside) == (3, 1)
    assert b.received == 3 and np.isnan(b.data[0, 1])


def test_a_gap_closes_nothing_in_between_and_reopen_starts_empty() -> None:
    n = int(RATE * PERIOD_S)
    b, closed = buffer()
    b.add(*samples(np.array([0, 1])), keep(closed))
    b.add(*samples(np.array([5 * n])), keep(closed))
    assert [c[0] for c in closed] == [T0]
    b.reopen(T0 + 5 * int(PERIOD_S) * NS)
    assert b.received == 0 and np.isnan(b.data).all()
    stats = b.add(*samples(np.array([4 * n + 1])), keep(closed))
    assert stats.late == 1
