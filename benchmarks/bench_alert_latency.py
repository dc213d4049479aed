"""Alert latency of the real service: push acknowledged (202) -> SSE event received.

`carbonstream run` starts with no simulators, a threshold rule on the consumption of 5 probe
meters, and the probe (carbonstream/bench/alert_latency.py) pushes one closing reading per probe
meter each round: every round closes a period of each meter and flips its alert (breach, clear,
...). The latency counts from the 202 of the push whose reading closed the period (an alert can
only be decided when its period closes) to the event's arrival on an SSE subscription. The
benchmark's own timing is the whole round (push + wait for its events); the ack -> event
quantiles are in `extra_info` and in benchmarks/results/. Target: p99 < 1 s.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from carbonstream.bench.alert_latency import AlertProbe, probe_config
from carbonstream.bench.service import RunningService

PROBES = 5
ROUNDS = 60
QUIET = """
[connectors.meter_simulator]
enabled = false
[connectors.cems_simulator]
enabled = false
[ec.simulator]
enabled = false
[rollups]
enabled = false
"""


@pytest.fixture(scope="module")
def probe(tmp_path_factory: pytest.TempPathFactory) -> Iterator[AlertProbe]:
    svc = RunningService.start(
        tmp_path_factory.mktemp("alert-latency"), QUIET + probe_config(PROBES)
    )
    try:
        svc.wait_ready()
        p = AlertProbe(svc.base_url, svc.token("ingest"), svc.token("read"), meters=PROBES)
        p.start()
        p.push()  # the first reading closes nothing
        yield p
        p.close()
    finally:
        assert svc.stop() == 0, svc.log_tail()


@pytest.mark.benchmark(group="alert-latency")
def test_alert_latency_ack_to_sse(benchmark: BenchmarkFixture, probe: AlertProbe) -> None:
    def round_trip() -> None:
        probe.push()
        probe.stats(wait_s=10.0)

    benchmark.pedantic(round_trip, rounds=ROUNDS, iterations=1, warmup_rounds=2)
    time.sleep(0.5)
    stats = probe.stats(wait_s=10.0)
    benchmark.extra_info.update({f"ack_to_event_{k}": v for k, v in stats.summary().items()})
    assert stats.missing == 0, f"{stats.missing} alert(s) never arrived"
    assert len(stats.samples_s) >= ROUNDS * PROBES
    # The target is p99 < 1 s; asserted loosely here (a shared machine), reported exactly.
    assert stats.p99 is not None and stats.p99 < 5.0, stats.summary()
