"""`python -m bench` knows every benchmark in bench/ (but the one run alone), and `--smoke` has a size for each.

Protects: a benchmark added to bench/ but not to BENCHMARKS runs in neither `make bench` nor `make bench-smoke`, and
one without a SMOKE size cannot be smoke-run; both ways it could stop working unseen, as two did (bench/__main__.py).
"""

from __future__ import annotations

from bench.__main__ import BENCHMARKS, SMOKE, main
from devtools.paths import REPO

NOT_BENCHMARKS = {"__init__", "__main__", "_common"}  # bench/'s own helpers
ALONE = {"candles_incremental"}  # run by itself (bench/README.md): it compares two code paths of one job


def test_every_benchmark_module_is_listed_and_has_a_smoke_size() -> None:
    modules = {p.stem for p in (REPO / "bench").glob("*.py")} - NOT_BENCHMARKS
    assert sorted(modules - set(BENCHMARKS) - ALONE) == []
    assert sorted(set(BENCHMARKS) - modules) == []
    assert sorted(SMOKE) == sorted(modules)


def test_an_unknown_name_is_refused_before_anything_runs() -> None:
    assert main(["--smoke", "nosuch"]) == 2
    assert main(["candles_incremental"]) == 2  # alone, or smoke-run; not in the full run
