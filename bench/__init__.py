"""Benchmarks: `python -m bench` runs them all; each prints its figures and the ratio it is judged by."""
