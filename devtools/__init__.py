"""Tooling shared by the tests and the benchmarks (not installed): starting the real processes, the
browser stack. Neither tests/ nor bench/ imports the other."""
