"""Benchmarks run only with `make bench` (pytest-benchmark is disabled in the default test run)."""
