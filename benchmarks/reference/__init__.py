"""Reference implementations in numpy/pure Python: the independent check in tests, the baseline
of the ratios in benchmarks. Written for clarity and a different formulation, not for speed."""
