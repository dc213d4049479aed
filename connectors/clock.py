"""Clocks for connectors: the real one, and a scaled one that runs simulated time faster.

Everything a connector does in time goes through a `Clock`: the timestamps it puts on readings,
when it polls, how long it waits before a retry, how long a request may take. Tests and
simulators share one `ScaledClock` with the code under test, so an hour of polling can run in a
minute of wall time while every timestamp, schedule and timeout stays consistent.

Times are integers in nanoseconds since the UTC epoch (the journal's `ts_ns`); durations are
seconds of the clock's own time.
"""

from __future__ import annotations

import asyncio
import time
from abc import ABC, abstractmethod

NS_PER_S = 1_000_000_000


class Clock(ABC):
    """Current time and sleeping, in the clock's own (possibly simulated) time."""

    @property
    @abstractmethod
    def rate(self) -> float:
        """Seconds of this clock per second of wall time (1.0 for the real clock)."""

    @abstractmethod
    def now_ns(self) -> int:
        """Now, nanoseconds since the UTC epoch."""

    def now_s(self) -> float:
        """Now, seconds since the UTC epoch."""
        return self.now_ns() / NS_PER_S

    def real_delay(self, seconds: float) -> float:
        """Wall-clock seconds that `seconds` of this clock take (for socket timeouts)."""
        return max(0.0, seconds) / self.rate

    async def sleep(self, seconds: float) -> None:
        """Waits `seconds` of this clock."""
        await asyncio.sleep(self.real_delay(seconds))

    async def sleep_until(self, t_ns: int) -> None:
        """Waits until this clock reads `t_ns` (returns at once if that is past)."""
        await asyncio.sleep(self.real_delay((t_ns - self.now_ns()) / NS_PER_S))


class RealClock(Clock):
    """The system's UTC clock."""

    @property
    def rate(self) -> float:
        return 1.0

    def now_ns(self) -> int:
        return time.time_ns()


class ScaledClock(Clock):
    """Simulated time: starts at `start_ns` and advances `rate` times faster than wall time.

    It is driven by the monotonic clock, so it never jumps; two instances built with the same
    `start_ns`, `rate` and `anchor_ns` read the same time, even in different processes of the
    same machine (CLOCK_MONOTONIC is system-wide).
    """

    def __init__(
        self, start_ns: int | None = None, rate: float = 1.0, anchor_ns: int | None = None
    ) -> None:
        if not rate > 0:
            raise ValueError(f"rate must be positive, got {rate}")
        self.start_ns = time.time_ns() if start_ns is None else int(start_ns)
        self.anchor_ns = time.monotonic_ns() if anchor_ns is None else int(anchor_ns)
        self._rate = float(rate)

    @property
    def rate(self) -> float:
        return self._rate

    def now_ns(self) -> int:
        return self.start_ns + int((time.monotonic_ns() - self.anchor_ns) * self._rate)
