"""Simulated fleets (meters, stacks, towers) for the demo, the tests and the benchmarks."""
