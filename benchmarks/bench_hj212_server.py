"""HJ 212 server under load: 2,000 logger connections sending one real-time packet per second
each (Flag=5), answer latency measured from the send to the 9014 read by the client.

The server runs in its own process exactly as in the ingest role (Hj212Server, a journal with
`fsync` durability: every answer waits for its commit); the loggers run in this process on one
asyncio loop, spread evenly over each second. Reported: packets answered per second, and the
p50/p99/max answer latency over the measured span (after the connections are open). Target:
p99 < 100 ms. On a shared 2-core machine the client and the server compete for the CPU, so this
is a pessimistic figure.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from connectors.hj212.packets import data_frame

CONNECTIONS = int(os.environ.get("HJ212_BENCH_CONNECTIONS", "2000"))
SECONDS = int(os.environ.get("HJ212_BENCH_SECONDS", "20"))
WARMUP_S = 3
NS = 10**9
T0 = 1_772_366_400 * NS


def serve(journal_dir: str, connections: int) -> None:
    """The server process: prints its port, serves until SIGTERM."""
    from connectors.hj212.server import Hj212Server
    from connectors.hj212.settings import Hj212ServerSettings, SiteSettings
    from storage.journal import Journal

    async def main() -> None:
        journal = Journal(Path(journal_dir), 4, durability="fsync")
        sites = [
            SiteSettings(id=f"load-{i:05d}", mn=f"LOAD{i:08d}", password="pw")
            for i in range(connections)
        ]
        server = Hj212Server(Hj212ServerSettings(port=0), sites, journal)
        port = await server.start()
        print(port, flush=True)
        stop = asyncio.Event()
        asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
        task = asyncio.create_task(server.serve_forever())
        await stop.wait()
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        print(f"commits={server.writer.commits}", file=sys.stderr, flush=True)
        journal.close()

    asyncio.run(main())


class _Logger(asyncio.Protocol):
    def __init__(self, latencies: list[float]) -> None:
        self.sent: dict[bytes, float] = {}
        self.latencies = latencies
        self.transport: asyncio.Transport | None = None
        self.buf = b""

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        assert isinstance(transport, asyncio.Transport)
        self.transport = transport

    def data_received(self, data: bytes) -> None:
        now = time.perf_counter()
        self.buf += data
        *frames, self.buf = self.buf.split(b"\r\n")
        for f in frames:
            qn = f.split(b"QN=", 1)[1].split(b";", 1)[0]
            t = self.sent.pop(qn, None)
            if t is not None:
                self.latencies.append(now - t)


def frames_for(i: int, seconds: int) -> list[tuple[bytes, bytes]]:
    out = []
    for k in range(seconds):
        f = data_frame(
            cn=2011,
            mn=f"LOAD{i:08d}",
            pw="pw",
            t_ns=T0 + k * NS,
            offset_minutes=480,
            readings={
                "a00000": {"Rtd": 50.0 + k % 7, "Flag": "N"},
                "a05001": {"Rtd": 10.5, "Flag": "N"},
                "a21026": {"Rtd": 28.0, "Flag": "N"},
            },
        )
        out.append((f.split(b"QN=", 1)[1].split(b";", 1)[0], f))
    return out


async def load(port: int, connections: int, seconds: int) -> dict[str, float]:
    loop = asyncio.get_running_loop()
    latencies: list[float] = []
    plans = [frames_for(i, seconds + WARMUP_S) for i in range(connections)]
    loggers: list[_Logger] = []
    for start in range(0, connections, 200):
        made = await asyncio.gather(
            *(
                loop.create_connection(lambda: _Logger(latencies), "127.0.0.1", port)
                for _ in range(start, min(connections, start + 200))
            )
        )
        loggers += [p for _, p in made]
    t0 = time.perf_counter() + 0.5
    measured_from = t0 + WARMUP_S
    order = [
        (k + i / connections, i, k) for k in range(seconds + WARMUP_S) for i in range(connections)
    ]
    pos = 0
    mark = 0
    while pos < len(order):
        now = time.perf_counter() - t0
        while pos < len(order) and order[pos][0] <= now:
            _, i, k = order[pos]
            qn, frame = plans[i][k]
            loggers[i].sent[qn] = time.perf_counter()
            transport = loggers[i].transport
            assert transport is not None
            transport.write(frame)
            pos += 1
        if mark == 0 and time.perf_counter() >= measured_from:
            mark = len(latencies)
        await asyncio.sleep(0.002)
    deadline = time.perf_counter() + 10
    while any(lg.sent for lg in loggers) and time.perf_counter() < deadline:
        await asyncio.sleep(0.05)
    counted = latencies[mark:]
    for lg in loggers:
        if lg.transport is not None:
            lg.transport.close()
    arr = np.array(counted) * 1000
    return {
        "connections": connections,
        "packets_answered": len(latencies),
        "unanswered": sum(len(lg.sent) for lg in loggers),
        "answered_per_s": len(counted) / seconds,
        "p50_ms": float(np.percentile(arr, 50)),
        "p99_ms": float(np.percentile(arr, 99)),
        "max_ms": float(arr.max()),
    }


@pytest.mark.benchmark(group="hj212-server")
def test_server_under_two_thousand_loggers(
    benchmark: BenchmarkFixture, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    proc = subprocess.Popen(
        [
            sys.executable,
            "-c",
            "import sys; from benchmarks.bench_hj212_server import serve; "
            "serve(sys.argv[1], int(sys.argv[2]))",
            str(tmp_path / "journal"),
            str(CONNECTIONS),
        ],
        stdout=subprocess.PIPE,
        cwd=Path(__file__).resolve().parents[1],
    )
    try:
        assert proc.stdout is not None
        port = int(proc.stdout.readline())
        result: dict[str, float] = {}

        def run() -> None:
            result.update(asyncio.run(load(port, CONNECTIONS, SECONDS)))

        benchmark.pedantic(run, rounds=1, iterations=1)
    finally:
        proc.send_signal(signal.SIGTERM)
        proc.wait(timeout=30)
    benchmark.extra_info.update(result)
    with capsys.disabled():
        print(
            f"\nhj212 server, {CONNECTIONS} connections x 1 packet/s for {SECONDS} s: "
            f"{result['answered_per_s']:.0f} answers/s, latency p50 {result['p50_ms']:.1f} ms, "
            f"p99 {result['p99_ms']:.1f} ms, max {result['max_ms']:.1f} ms, "
            f"{result['unanswered']:.0f} unanswered"
        )
    assert result["unanswered"] == 0
