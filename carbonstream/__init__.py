"""carbonstream: real-time carbon monitoring (smart meters, stack CEMS, eddy-covariance fluxes).

This package holds what ties the others together: the CLI, the configuration, the process
supervisor and the compiled Rust core (`carbonstream._core`, imported only by `carbonstream.core`).
"""

__version__ = "0.1.0"
