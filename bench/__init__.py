"""Benchmark scripts (not part of the test suite); each prints figures and a same-run baseline ratio."""
