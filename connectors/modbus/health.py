"""Per-device health of the Modbus poller.

A poll is one scheduled reading of a device: up to 1 + `retries` requests (attempts) within the
poll's interval. Its outcome is ok (a reading), failed (every attempt failed) or missed (no
attempt could start within its interval: the gateway's connections were all busy).

States, from the outcomes of the device's polls (`dead_after` is a gateway setting, default 3):

- unknown: no poll has finished yet;
- ok: the last poll gave a reading;
- degraded: the last 1 .. dead_after-1 polls failed (readings come back on the next success);
- dead: the last `dead_after` or more polls failed. A dead device is reported unhealthy and
  produces no reading (never a zero). It is probed every `dead_probe_s` with a single attempt;
  the first good reading makes it ok again.

Missed polls do not change the state: they say the poller is short of capacity, not that the
device is broken.

Publishing. A fleet's health is published every few seconds, but a healthy meter's row changes
only when it is polled (once a minute, typically). So each tracker flags its own changes and
only flagged trackers are written (`take_unpublished`), as plain tuples of numbers and strings:
the garbage collector stops tracking those, where 50,000 snapshots and dicts every 10 s had set
off a full collection of the ingest role's heap (0.2-0.4 s) every 11-22 s at 100,000 meters.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Literal

from storage.metadata import DeviceHealthRow

HealthState = Literal["unknown", "ok", "degraded", "dead"]


@dataclass(frozen=True)
class DeviceHealth:
    """Snapshot of one device's health."""

    meter: str
    gateway: str
    unit_id: int
    state: HealthState
    last_good_ns: int | None
    """Time of the last reading (the clock when its response arrived)."""
    last_value: float | None
    consecutive_errors: int
    """Failed polls since the last reading."""
    total_errors: int
    """Failed polls since start."""
    request_errors: int
    """Failed requests since start, retried ones included."""
    polls_ok: int
    missed: int
    """Polls of this device that could not be attempted within their interval."""
    last_error: str | None
    last_error_ns: int | None

    @property
    def healthy(self) -> bool:
        return self.state != "dead"


class HealthTracker:
    """Mutable health of one device; `snapshot()` gives the immutable view."""

    def __init__(self, meter: str, gateway: str, unit_id: int, dead_after: int) -> None:
        self.meter = meter
        self.gateway = gateway
        self.unit_id = unit_id
        self.dead_after = dead_after
        self.state: HealthState = "unknown"
        self.last_good_ns: int | None = None
        self.last_value: float | None = None
        self.consecutive_errors = 0
        self.total_errors = 0
        self.request_errors = 0
        self.polls_ok = 0
        self.missed = 0
        self.last_error: str | None = None
        self.last_error_ns: int | None = None
        self.unpublished = True
        """Its row (`health_row`) changed since `take_unpublished` last took it; a new tracker's
        row was never published. Each change sets it after the fields it changes: the poller
        runs beside the publishing thread, and a row read before the fields are all set is
        then written again by the next publication."""

    def request_failed(self, now_ns: int, error: str) -> None:
        """One attempt failed (the poll may still succeed on a retry)."""
        self.request_errors += 1
        self.last_error = error
        self.last_error_ns = now_ns
        self.unpublished = True

    def poll_ok(self, ts_ns: int, value: float) -> None:
        self.state = "ok"
        self.polls_ok += 1
        self.consecutive_errors = 0
        self.last_good_ns = ts_ns
        self.last_value = value
        self.unpublished = True

    def poll_failed(self) -> None:
        """Every attempt of a poll failed (`request_failed` recorded why)."""
        self.consecutive_errors += 1
        self.total_errors += 1
        self.state = "dead" if self.consecutive_errors >= self.dead_after else "degraded"
        self.unpublished = True

    def poll_missed(self, count: int = 1) -> None:
        self.missed += count  # not in the published row

    def snapshot(self) -> DeviceHealth:
        return DeviceHealth(
            meter=self.meter,
            gateway=self.gateway,
            unit_id=self.unit_id,
            state=self.state,
            last_good_ns=self.last_good_ns,
            last_value=self.last_value,
            consecutive_errors=self.consecutive_errors,
            total_errors=self.total_errors,
            request_errors=self.request_errors,
            polls_ok=self.polls_ok,
            missed=self.missed,
            last_error=self.last_error,
            last_error_ns=self.last_error_ns,
        )


def health_row(h: HealthTracker | DeviceHealth) -> DeviceHealthRow:
    return (
        h.meter,
        h.gateway,
        h.unit_id,
        h.state,
        h.last_good_ns,
        h.consecutive_errors,
        h.total_errors,
        h.last_error,
    )


def take_unpublished(trackers: Iterable[HealthTracker]) -> list[HealthTracker]:
    """The trackers changed since they were last taken, now marked as published. Whoever fails
    to publish them marks them unpublished again. A tracker that changes after it was taken is
    flagged again, so a row read mid-change is written again next time."""
    taken = [t for t in trackers if t.unpublished]
    for t in taken:
        t.unpublished = False
    return taken


def count_states(trackers: Iterable[HealthTracker | DeviceHealth]) -> dict[HealthState, int]:
    """Devices per state, every state present."""
    counts: dict[HealthState, int] = {"unknown": 0, "ok": 0, "degraded": 0, "dead": 0}
    for t in trackers:
        counts[t.state] += 1
    return counts
