"""The Bytewax dataflow: journal partitions in, Rust kernels per stream kind, Zarr and dead
letters out.

Bytewax is used only inside this package (it is community-maintained since 0.21.1), so the rest
of carbonstream never depends on its API.
"""
