"""Soak: the real service with every built-in simulator at full rate, for a bounded time.

Not a speed benchmark (no speed claim is made from it, so it has no reference implementation):
it runs under `make bench` because it takes minutes. `carbonstream run` starts with

- 2,000 simulated smart meters reading every second (2,000 readings/s into the journal),
- 4 simulated flux towers at 20 Hz (80 raw samples/s, 2-minute averaging periods),
- 10 simulated CEMS stacks speaking HJ 212 over TCP in real time,

and runs for `CARBONSTREAM_SOAK_S` seconds (default 600). Every `duration / 60` seconds (at
least 2 s) it samples each process (the supervisor and its three roles): resident memory and
open file descriptors from /proc; and, from /metrics and /health, the error counters (dead
letters, rows refused at ingest, writes the disk refused, HJ 212 input refused, EC periods in
error), the samples made durable and the journal lag.

The first quarter is warm-up (imports, first chunks, caches). Then, per process:

- memory flat: the median RSS of the last quarter is within 15 % of the second quarter's;
- no descriptor leak: the median fd count of the last quarter is at most 2 above the second's;

and for the service: no role restarted (same pids), no error counters rising (the simulators
send valid data only, so every error counter stays where warm-up left it), samples keep arriving
in the last quarter, and the flow keeps up (journal lag in the last quarter under 60 s).

The samples and a summary go to benchmarks/results/soak.md. On this shared 2-core machine other
work competes for the CPU; the lag and RSS figures are for that machine at that moment.
"""

from __future__ import annotations

import os
import statistics
import time
from contextlib import suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import httpx
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from tests.conftest import free_port
from tests.e2e.service import Service
from tests.reliability.live import fd_count, metric, role_pids, rss_bytes

DURATION_S = float(os.environ.get("CARBONSTREAM_SOAK_S", "600"))
SAMPLE_S = max(2.0, DURATION_S / 60)
RSS_TOLERANCE = 0.15
FD_SLACK = 2
MAX_LAG_S = 60.0
RESULTS = Path(__file__).parent / "results" / "soak.md"

CONFIG = """
[storage]
data_dir = "{data_dir}"
[connectors.meter_simulator]
count = 2000
interval_s = 1.0
[ec.simulator]
count = 4
sampling_hz = 20.0
[connectors.cems_simulator]
count = 10
"""

ERRORS: dict[str, dict[str, str]] = {
    "carbonstream_dead_letters_total": {},
    "carbonstream_ingest_rejected_rows_total": {},
    "carbonstream_storage_refused_writes_total": {},
    "carbonstream_hj212_rejected_total": {},
    "carbonstream_ec_periods_total": {"outcome": "error"},
}
"""Counters that only grow on trouble (name -> labels a sample must carry)."""

PROCESSES = ("supervisor", "ingest", "flow", "api")


@dataclass
class Sample:
    t_s: float
    rss: dict[str, int]
    fds: dict[str, int]
    errors: dict[str, float]
    ingested: float
    lag_s: float
    problems: list[str]
    """What /health found wrong (empty: 200)."""


@dataclass
class Soak:
    svc: Service
    pids: dict[str, int]
    samples: list[Sample] = field(default_factory=list)

    def sample(self, t_s: float) -> None:
        with self.svc.client(token="") as c:
            text = c.get("/metrics").text
            health = c.get("/health")
        self.samples.append(
            Sample(
                t_s,
                {p: rss_bytes(pid) for p, pid in self.pids.items()},
                {p: fd_count(pid) for p, pid in self.pids.items()},
                {name: metric(text, name, **labels) for name, labels in ERRORS.items()},
                metric(text, "carbonstream_samples_ingested_total"),
                float(health.json()["journal"]["lag_seconds"]),
                [] if health.status_code == 200 else list(health.json()["problems"]),
            )
        )

    def quarter(self, q: int) -> list[Sample]:
        """Samples of quarter q (1-4) of the run."""
        n = len(self.samples)
        return self.samples[(q - 1) * n // 4 : q * n // 4]


def run_soak(tmp_path: Path) -> Soak:
    config = tmp_path / "carbonstream.toml"
    config.write_text(CONFIG.replace("{data_dir}", str(tmp_path / "data")))
    svc = Service.start(tmp_path, free_port(), config)
    try:
        svc.wait_for("the API", lambda: svc.get_json("/health"), timeout_s=120)
        roles = svc.wait_for(
            "three roles",
            lambda: role_pids(svc.proc.pid) if len(role_pids(svc.proc.pid)) == 3 else None,
            timeout_s=60,
        )
        soak = Soak(svc, {"supervisor": svc.proc.pid, **roles})
        start = time.monotonic()
        tick = 0
        while (now := time.monotonic() - start) < DURATION_S:
            with suppress(httpx.TransportError):  # too slow an answer (loaded machine): skipped
                soak.sample(now)
            tick += 1
            time.sleep(max(0.0, start + tick * SAMPLE_S - time.monotonic()))
        assert role_pids(svc.proc.pid) == roles, f"a role restarted:\n{svc.log_tail()}"
        return soak
    finally:
        code = svc.stop()
        assert code == 0, svc.log_tail()


def median(values: list[float]) -> float:
    return float(statistics.median(values))


def summarize(soak: Soak) -> dict[str, Any]:
    q2, q4 = soak.quarter(2), soak.quarter(4)
    out: dict[str, Any] = {"duration_s": DURATION_S, "samples": len(soak.samples)}
    for p in PROCESSES:
        rss2 = median([s.rss[p] for s in q2])
        rss4 = median([s.rss[p] for s in q4])
        out[f"{p}_rss_mb_q2"] = round(rss2 / 2**20, 1)
        out[f"{p}_rss_mb_q4"] = round(rss4 / 2**20, 1)
        out[f"{p}_rss_ratio_q4_q2"] = round(rss4 / rss2, 3)
        out[f"{p}_fds_q2"] = median([s.fds[p] for s in q2])
        out[f"{p}_fds_q4"] = median([s.fds[p] for s in q4])
    first, last = soak.quarter(2)[0], soak.samples[-1]
    out["errors_after_warmup"] = {name: last.errors[name] - first.errors[name] for name in ERRORS}
    out["errors_total"] = last.errors
    out["samples_per_s_q4"] = round(
        (q4[-1].ingested - q4[0].ingested) / max(q4[-1].t_s - q4[0].t_s, 1e-9), 1
    )
    out["lag_s_max_q4"] = max(s.lag_s for s in q4)
    out["lag_s_median_q4"] = median([s.lag_s for s in q4])
    out["unhealthy_samples_after_warmup"] = sum(
        bool(s.problems) for s in soak.samples[len(soak.samples) // 4 :]
    )
    return out


def write_results(soak: Soak, summary: dict[str, Any]) -> None:
    lines = [
        "# Soak",
        "",
        f"Every built-in simulator at full rate for {DURATION_S:g} s, sampled every "
        f"{SAMPLE_S:g} s (benchmarks/bench_soak.py; `CARBONSTREAM_SOAK_S` sets the duration). "
        "Shared 2-core machine: other work competed for the CPU.",
        "",
        "## Summary",
        "",
        "| | value |",
        "|---|---|",
        *(f"| {k} | {v} |" for k, v in summary.items()),
        "",
        "## Samples",
        "",
        "| t (s) | "
        + " | ".join(f"{p} RSS (MB) | {p} fds" for p in PROCESSES)
        + " | errors | samples ingested | lag (s) | /health problems |",
        "|---" * (2 + 2 * len(PROCESSES) + 3) + "|",
    ]
    for s in soak.samples:
        cells = [f"{s.t_s:.0f}"]
        for p in PROCESSES:
            cells += [f"{s.rss[p] / 2**20:.1f}", str(s.fds[p])]
        cells += [f"{sum(s.errors.values()):g}", f"{s.ingested:.0f}", f"{s.lag_s:.1f}"]
        cells.append("; ".join(s.problems) or "-")
        lines.append("| " + " | ".join(cells) + " |")
    RESULTS.parent.mkdir(exist_ok=True)
    RESULTS.write_text("\n".join(lines) + "\n")


# The project-wide pytest timeout (300 s) is for tests; the soak runs for DURATION_S by design,
# plus start-up and shutdown.
@pytest.mark.timeout(DURATION_S + 300)
def test_soak_all_simulators(benchmark: BenchmarkFixture, tmp_path: Path) -> None:
    soak = benchmark.pedantic(run_soak, args=(tmp_path,), rounds=1, iterations=1)
    summary = summarize(soak)
    write_results(soak, summary)
    benchmark.extra_info.update(summary)

    assert len(soak.samples) >= 8, "too few samples to compare quarters"
    for p in PROCESSES:
        ratio = summary[f"{p}_rss_ratio_q4_q2"]
        assert abs(ratio - 1) <= RSS_TOLERANCE, f"{p} RSS moved by {ratio:.3f}x: {summary}"
        assert summary[f"{p}_fds_q4"] <= summary[f"{p}_fds_q2"] + FD_SLACK, (p, summary)
    assert not any(summary["errors_after_warmup"].values()), summary
    assert summary["samples_per_s_q4"] > 2_000, summary
    assert summary["lag_s_max_q4"] < MAX_LAG_S, summary
