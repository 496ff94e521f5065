"""devtools/schedule_report.py: the suite's schedule from the CPU log's timelines (which module ran when, where)."""

from __future__ import annotations

from pathlib import Path

from devtools.cpu_report import _report
from devtools.schedule_report import report


def test_the_schedule_shows_each_workers_modules_its_idle_end_and_the_tail(tmp_path: Path) -> None:
    """Consecutive tests of a module are one stretch (a parameter's "::" does not cut it); a worker that ends
    early is idle to the run's end; the tail lists what still ran then; cpu_report's sums skip the timelines."""
    (tmp_path / "timeline-gw0.tsv").write_text(
        "tests/a.py::t[::1]\t100.0\t110.0\ntests/a.py::u\t110.0\t130.0\ntests/b.py::v\t130.0\t200.0\n")
    (tmp_path / "timeline-gw1.tsv").write_text("tests/c.py::w\t100.0\t150.0\n")
    (tmp_path / "pytest-gw0.tsv").write_text("pytest\ttests/a.py::u\t1.500\t20.000\n")
    text = report(tmp_path, tail=40.0)
    assert "first test to last: 100.0 s on 2 workers" in text
    assert "      0.0    30.0   30.0  tests/a.py" in text  # one stretch of a.py, both tests
    assert "gw1: 1 stretches, last test ended at 50.0 s (idle 50.0 s to the end)" in text
    assert "worker-seconds idle before the last test ended: 50.0" in text
    tail = text.split("running in the last 40 s:")[1]
    assert "tests/b.py" in tail and "tests/c.py" not in tail and "tests/a.py" not in tail
    assert _report(tmp_path).startswith("total 1.5 CPU-s")
