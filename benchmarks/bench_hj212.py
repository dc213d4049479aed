"""HJ 212 decoding: the Rust core vs a straightforward pure-Python decoder, same frames, same run.

Input: the hourly stack packet of reference/hj212/README.md (612-byte segment, 30 fields),
10,000 copies. Three Rust paths: the decoder alone (`decode_count`: frame check, CRC, typed
fields, no Python objects), the server's path (`StreamDecoder.feed` on one glued buffer: tuples
per packet), and the dataflow's path (`extract` into numpy columns). The reference is
benchmarks/reference/hj212.py. packets/s = 10,000 / median time; the target is >= 200,000
packets/s per core for the Rust decoder.
"""

from __future__ import annotations

import pytest
from pytest_benchmark.fixture import BenchmarkFixture

from benchmarks.reference import hj212 as reference
from carbonstream.core import hj212
from tests.connectors.hj212.vectors import HOURLY_STACK

N = 10_000
FRAMES = [HOURLY_STACK] * N
CODES = ["a00000", "a01011", "a01012", "a01013", "a01014", "a24088", "a05002"]


def _rate(benchmark: BenchmarkFixture) -> None:
    stats = benchmark.stats
    if stats is not None:
        benchmark.extra_info["packets_per_s"] = round(N / stats.stats.median)


@pytest.mark.benchmark(group="hj212-decode")
def test_rust_decoder(benchmark: BenchmarkFixture) -> None:
    assert benchmark(hj212.decode_count, FRAMES, 1) == N
    _rate(benchmark)


@pytest.mark.benchmark(group="hj212-decode")
def test_rust_stream_decoder_as_the_server_uses_it(benchmark: BenchmarkFixture) -> None:
    data = b"".join(FRAMES)

    def run() -> int:
        return len(hj212.StreamDecoder().feed(data))

    assert benchmark(run) == N
    _rate(benchmark)


@pytest.mark.benchmark(group="hj212-decode")
def test_rust_extract_as_the_flow_uses_it(benchmark: BenchmarkFixture) -> None:
    def run() -> int:
        return int(hj212.extract(FRAMES, CODES, 480)["status"].size)

    assert benchmark(run) == N
    _rate(benchmark)


@pytest.mark.benchmark(group="hj212-decode")
def test_python_reference_decoder(benchmark: BenchmarkFixture) -> None:
    def run() -> int:
        return sum(1 for f in FRAMES[:1000] if reference.decode(f).values) * 10

    assert benchmark.pedantic(run, rounds=3, iterations=1) == N
    _rate(benchmark)
