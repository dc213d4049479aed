"""Benchmarks run only with `make bench` (pytest-benchmark is disabled in the default test run)."""

from __future__ import annotations

import sys
from collections.abc import Generator
from typing import Any

import pytest


@pytest.hookimpl(hookwrapper=True)
def pytest_benchmark_generate_json(
    config: pytest.Config, benchmarks: list[Any], **_: Any
) -> Generator[None, None, None]:
    """A benchmark whose test stopped (failed, skipped by a fixture) before timing anything has
    no data, and pytest-benchmark's JSON writer raises on it, losing every other result of a
    run of many minutes: it is left out of the JSON, by name, on stderr."""
    empty = [b for b in benchmarks if not getattr(getattr(b, "stats", None), "data", None)]
    for b in empty:
        print(f"benchmark {b.fullname}: no timings (its test stopped first)", file=sys.stderr)
        benchmarks.remove(b)
    yield
