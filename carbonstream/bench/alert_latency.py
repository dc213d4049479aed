"""Alert latency of the running service: push acknowledged (HTTP 202) -> SSE event received.

A threshold rule (`window = 1`) watches the consumption of a few probe meters on
meters/interval. An alert can only be decided when its period closes, and a meter's period
closes when the meter's first reading of a later period arrives; so each probe push carries, for
every probe meter, exactly that reading, 1 s after the next period boundary, and the latency of
the push is measured from its 202 (the batch is durable in the journal) to the SSE event of the
period it closed. The register rises by HIGH and LOW in turn, so every closed period breaches or
clears: each push causes one transition (firing, resolved, firing, ...) per probe meter.

The probe meters' readings are stamped on their own clock, one minute apart, starting a day in
the past, so a push every half second closes a period each time (otherwise one transition a minute:
too few for a p99 within a benchmark step). What is timed is the service's own path (journal,
dataflow, kernel, alert engine, store, SSE fan-out); event time only decides which period closes.
"""

from __future__ import annotations

import contextlib
import threading
import time
from dataclasses import dataclass, field
from typing import Any

import httpx
import numpy as np
import orjson

PREFIX = "probe-alert-"
RULE_ID = "bench-alert-latency"
HIGH, LOW, THRESHOLD = 100.0, 1.0, 50.0
STEP_NS = 60 * 1_000_000_000
NS = 1_000_000_000


def probe_ids(count: int) -> list[str]:
    return [f"{PREFIX}{i:03d}" for i in range(count)]


def probe_config(count: int) -> str:
    """TOML declaring the probe meters and the rule (meters/interval at its default 1 min)."""
    lines = []
    for m in probe_ids(count):
        lines += ["[[streams.meters]]", f'id = "{m}"']
    lines += [
        "[[alerts.rules]]",
        f'id = "{RULE_ID}"',
        'product = "meters/interval"',
        'variable = "consumption"',
        f'subject = "{PREFIX}*"',
        f"threshold = {THRESHOLD}",
        "window = 1",
    ]
    return "\n".join(lines) + "\n"


SLOW_S = 1.0
"""Latency from which an alert is listed by when it was pushed (see `LatencyStats.slow_at_s`)."""


@dataclass
class LatencyStats:
    samples_s: list[float]
    missing: int
    acked_s: list[float] = field(default_factory=list)
    """Monotonic time of each sample's push acknowledgement (same order as `samples_s`)."""

    def slow_at_s(self) -> list[float]:
        """Seconds into the measurement of the pushes whose alerts took `SLOW_S` or more: a
        tail made of a few stalls shows as a few clusters, a slow path as a spread."""
        if not self.acked_s:
            return []
        t0 = min(self.acked_s)
        slow = {
            round(a - t0, 1)
            for a, x in zip(self.acked_s, self.samples_s, strict=True)
            if x >= SLOW_S
        }
        return sorted(slow)

    def quantile(self, q: float) -> float | None:
        return float(np.quantile(self.samples_s, q)) if self.samples_s else None

    @property
    def p50(self) -> float | None:
        return self.quantile(0.5)

    @property
    def p99(self) -> float | None:
        return self.quantile(0.99)

    def summary(self) -> dict[str, Any]:
        return {
            "count": len(self.samples_s),
            "missing": self.missing,
            "p50_s": self.p50,
            "p99_s": self.p99,
            "max_s": max(self.samples_s) if self.samples_s else None,
            "slow_at_s": self.slow_at_s(),
        }


class _SseReader(threading.Thread):
    """Receives the rule's events and stamps each on arrival (monotonic clock)."""

    def __init__(self, url: str, token: str) -> None:
        super().__init__(daemon=True, name="alert-sse")
        self.url, self.token = url, token
        self.received: dict[tuple[str, int], tuple[str, float]] = {}
        self.connected = threading.Event()
        self._halt = threading.Event()
        self._lock = threading.Lock()
        self._client = httpx.Client(timeout=httpx.Timeout(10.0, read=60.0))

    def run(self) -> None:
        headers = {"Authorization": f"Bearer {self.token}"}
        with self._client as c:
            while not self._halt.is_set():
                try:
                    with c.stream("GET", self.url, headers=headers) as r:
                        r.raise_for_status()
                        self.connected.set()
                        for line in r.iter_lines():
                            if self._halt.is_set():
                                return
                            if line.startswith("data: "):
                                now = time.monotonic()
                                e = orjson.loads(line[6:])
                                with self._lock:
                                    key = (str(e["subject"]), int(e["period_ns"]))
                                    self.received.setdefault(key, (str(e["transition"]), now))
                except Exception:
                    if self._halt.is_set():
                        return  # stop() closed the connection under the reader
                    time.sleep(0.5)  # a missed event shows as missing, never as a fast one

    def get(self, key: tuple[str, int]) -> tuple[str, float] | None:
        with self._lock:
            return self.received.get(key)

    def stop(self) -> None:
        """Closes the connection at once: an open SSE stream would hold the API's shutdown
        (keep-alives come only every 15 s)."""
        self._halt.set()
        with contextlib.suppress(Exception):
            self._client.close()


@dataclass
class AlertProbe:
    """Drives the probe meters of a running service and times their alerts."""

    base_url: str
    ingest_token: str
    read_token: str
    meters: int = 5
    start_ns: int = field(default_factory=lambda: (time.time_ns() // STEP_NS - 24 * 60) * STEP_NS)
    _k: int = 0
    _register: float = 1_000.0
    _acked: dict[tuple[str, int], tuple[str, float]] = field(default_factory=dict)
    _failed_pushes: int = 0

    def __post_init__(self) -> None:
        self._ids = probe_ids(self.meters)
        self._sse = _SseReader(f"{self.base_url}/v1/alerts/stream?rule={RULE_ID}", self.read_token)
        self._client = httpx.Client(
            base_url=self.base_url,
            timeout=30.0,
            headers={"Authorization": f"Bearer {self.ingest_token}"},
        )

    def start(self, timeout_s: float = 60.0) -> None:
        self._sse.start()
        if not self._sse.connected.wait(timeout_s):
            raise RuntimeError("the alert stream did not answer")

    def push(self) -> None:
        """One probe push: every probe meter's reading 1 s into period k, closing period k-1."""
        k = self._k
        t_ns = self.start_ns + k * STEP_NS + NS
        if t_ns > time.time_ns():
            raise RuntimeError("the probe's clock caught up with real time; start it earlier")
        if k > 0:
            self._register += HIGH if k % 2 == 1 else LOW
        rows = [{"meter": m, "ts": t_ns / NS, "value": self._register} for m in self._ids]
        r = self._client.post("/v1/ingest/meters", json=rows)
        acked = time.monotonic()
        if r.status_code != 202 or r.json().get("accepted") != len(rows):
            self._failed_pushes += 1
            return
        self._k += 1
        if k > 0:
            # Period k-1 rose by HIGH when k is odd: it breaches (firing); else it clears.
            transition = "firing" if k % 2 == 1 else "resolved"
            period_ns = self.start_ns + (k - 1) * STEP_NS
            for m in self._ids:
                self._acked[(m, period_ns)] = (transition, acked)

    def run(self, duration_s: float, every_s: float = 1.0) -> None:
        """Pushes every `every_s` for `duration_s` (wall clock)."""
        end = time.monotonic() + duration_s
        while time.monotonic() < end:
            started = time.monotonic()
            self.push()
            time.sleep(max(0.0, every_s - (time.monotonic() - started)))

    def stats(self, wait_s: float = 5.0) -> LatencyStats:
        """Latencies of the pushes so far, waiting up to `wait_s` for events still due. An
        event that never comes (or has the wrong transition) counts as missing."""
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline and any(
            self._sse.get(key) is None for key in self._acked
        ):
            time.sleep(0.1)
        samples, acks, missing = [], [], self._failed_pushes
        for key, (transition, acked) in self._acked.items():
            got = self._sse.get(key)
            if got is None or got[0] != transition:
                missing += 1
            else:
                samples.append(max(0.0, got[1] - acked))
                acks.append(acked)
        return LatencyStats(samples, missing, acks)

    def reset(self) -> None:
        """Forgets the pushes so far (e.g. a warm-up's); the probe's clock goes on."""
        self._acked.clear()
        self._failed_pushes = 0

    def close(self) -> None:
        self._sse.stop()
        self._client.close()
