"""Benchmarks (pytest-benchmark), each paired with a reference implementation in the same run."""
