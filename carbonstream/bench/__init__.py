"""Benchmarks that need the running service: alert latency and `carbonstream bench capacity`.

They ship with the package (unlike benchmarks/, which holds the pytest-benchmark kernel suites)
because `carbonstream bench capacity` is a command of the installed service."""
