"""How the suite's work units were laid out on the xdist workers: from the CPU log's timelines.

Contract: `python -m devtools.schedule_report DIR [TAIL]` reads `DIR/timeline-<worker>.tsv` (written by
devtools/cpu_report.py's plugin: test id, start, end, in epoch seconds) and prints, per worker, the
modules it ran in order (start and end in seconds from the first test's start, and their span), when
each worker ran its last test (its idle time to the run's end), and the modules still running in the
last TAIL seconds (60 by default): the tail, where fewer workers than there are have work.
"""

from __future__ import annotations

import sys
from pathlib import Path


def _runs(directory: Path) -> dict[str, list[tuple[str, float, float]]]:
    """Per worker: (module, start, end) for each stretch of consecutive tests of one module."""
    runs: dict[str, list[tuple[str, float, float]]] = {}
    for path in sorted(directory.glob("timeline-*.tsv")):
        worker = path.stem.removeprefix("timeline-")
        stretches: list[tuple[str, float, float]] = []
        for line in path.read_text().splitlines():
            test, start_text, end_text = line.split("\t")
            module, start, end = test.split("::", 1)[0], float(start_text), float(end_text)  # a parameter may hold "::"
            if stretches and stretches[-1][0] == module:
                stretches[-1] = (module, stretches[-1][1], end)
            else:
                stretches.append((module, start, end))
        runs[worker] = stretches
    return runs


def report(directory: Path, tail: float = 60.0) -> str:
    runs = _runs(directory)
    if not runs:
        return f"no timeline-*.tsv in {directory}"
    first = min(stretch[1] for stretches in runs.values() for stretch in stretches)
    last = max(stretch[2] for stretches in runs.values() for stretch in stretches)
    lines = [f"first test to last: {last - first:.1f} s on {len(runs)} workers", ""]
    idle = 0.0
    for worker, stretches in runs.items():
        done = stretches[-1][2]
        idle += last - done
        lines.append(f"{worker}: {len(stretches)} stretches, last test ended at {done - first:.1f} s "
                     f"(idle {last - done:.1f} s to the end)")
        for module, start, end in stretches:
            if end - start >= 3.0 or end > last - tail:
                lines.append(f"  {start - first:7.1f} {end - first:7.1f} {end - start:6.1f}  {module}")
    lines += ["", f"worker-seconds idle before the last test ended: {idle:.1f}",
              "", f"running in the last {tail:.0f} s:"]
    for worker, stretches in runs.items():
        for module, start, end in stretches:
            if end > last - tail:
                lines.append(f"  {worker} {start - first:7.1f} {end - first:7.1f}  {module}")
    return "\n".join(lines)


if __name__ == "__main__":
    print(report(Path(sys.argv[1]), float(sys.argv[2]) if len(sys.argv) > 2 else 60.0))
