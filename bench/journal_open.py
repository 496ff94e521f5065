"""What checking every journal segment on open costs, on a few-hundred-MB journal.

A journal of `--mb` MiB (default 300) is written with `Journal.append` into a fresh temp dir, with
the ledger's 128 MiB segments, so all but the newest are sealed (`<segment>.sum`). The frames mix
256 KiB bulk payloads (Arrow rows) with 200-byte events, `--small-share` of the bytes small. Then
`--repeat` times, back to back, with the page cache warm (the file was just written; the shared
machine's cache is not dropped):

- baseline: checking every segment without seals: each one walked frame by frame, every frame's crc
  checked (what the journal did for the newest segment only, and what a rebuild does);
- ours: `Journal(directory)`: each sealed segment's crc32 checked against its seal in one C loop, the
  newest segment walked frame by frame (as before: that is where a torn tail is found);
- for information: every segment read in 1 MiB chunks and thrown away (the copy floor), the open as
  it was before seals (the newest segment only, the sealed ones unchecked: what checking them adds),
  and the first open of the same journal without its seals (it walks and seals each sealed segment once).

    python -m bench.journal_open [--mb 300] [--small-share 0.1] [--repeat 3]

RATIO journal_open = ours / baseline, median seconds (aim < 1: seals make the full check cheaper than a walk).
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

from bench._common import header, ratio_line
from bus.journal import Journal, _scan
from bus.journal_check import map_segment

BULK = 256 * 1024
SMALL = 200


def build(directory: Path, megabytes: int, small_share: float) -> int:
    """Append the mix until the journal holds `megabytes` MiB; return the number of frames."""
    journal = Journal(directory, fsync="off")
    bulk_payload, small_payload = os.urandom(BULK), os.urandom(SMALL)
    target = megabytes * 1024 * 1024
    written = frames = 0
    while written < target:
        batch = [("CandlesIngested", bulk_payload)] * 4
        small_bytes = int(4 * BULK * small_share / (1 - small_share)) if small_share < 1 else 0
        batch += [("TradeUpdated", small_payload)] * (small_bytes // SMALL)
        journal.append(batch)
        frames += len(batch)
        written += 4 * BULK + (small_bytes // SMALL) * SMALL
    journal.close()
    return frames


def plain_read(directory: Path) -> None:
    """Read every segment byte once, 1 MiB at a time."""
    for path in sorted(directory.glob("*.seg")):
        with path.open("rb") as fh:
            while fh.read(1 << 20):
                pass


def open_journal(directory: Path) -> None:
    journal = Journal(directory)
    assert not journal.faults
    journal.close()


def walk_all(directory: Path) -> None:
    for path in sorted(directory.glob("*.seg")):
        assert not map_segment(path, int(path.stem)).damages


def newest_only(directory: Path) -> None:
    """The open before seals: scan the newest segment's frames, nothing else."""
    newest = max(directory.glob("*.seg"))
    for _ in _scan(newest):
        pass


def timed(action: Callable[[Path], None], directory: Path) -> float:
    started = time.perf_counter()
    action(directory)
    return time.perf_counter() - started


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.journal_open", description=__doc__.split("\n")[0])
    parser.add_argument("--mb", type=int, default=300, help="journal size in MiB")
    parser.add_argument("--small-share", type=float, default=0.1, help="share of the bytes in 200-byte frames")
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    header(f"journal_open: checking a {args.mb} MiB journal on open")
    root = Path(tempfile.mkdtemp(prefix="oh-bench-journal-"))
    try:
        directory = root / "journal"
        started = time.perf_counter()
        frames = build(directory, args.mb, args.small_share)
        segments = sorted(directory.glob("*.seg"))
        size = sum(p.stat().st_size for p in segments)
        print(f"   built {size / 2**20:.0f} MiB, {frames:,} frames in {len(segments)} segments "
              f"({len(list(directory.glob('*.sum')))} sealed) in {time.perf_counter() - started:.1f}s")
        ours, base = [], []
        for i in range(args.repeat):
            base.append(timed(walk_all, directory))
            ours.append(timed(open_journal, directory))
            print(f"   pair {i + 1}: frame walk of every segment {base[-1]:.3f}s ({size / 2**20 / base[-1]:,.0f} MiB/s), "
                  f"Journal() open {ours[-1]:.3f}s ({size / 2**20 / ours[-1]:,.0f} MiB/s)")
        read = statistics.median(timed(plain_read, directory) for _ in range(args.repeat))
        old = statistics.median(timed(newest_only, directory) for _ in range(args.repeat))
        print(f"   for information: plain read of every byte {read:.3f}s; the open before seals (newest segment only, "
              f"the older ones unchecked) {old:.3f}s, so checking the sealed ones adds {statistics.median(ours) - old:.3f}s")
        for seal in directory.glob("*.sum"):
            seal.unlink()
        first = timed(open_journal, directory)
        print(f"   first open without seals (walks and seals each older segment once) {first:.3f}s; "
              f"seals written again: {len(list(directory.glob('*.sum')))}")
        ratio_line("journal_open", statistics.median(ours) / statistics.median(base), "< 1")
    finally:
        shutil.rmtree(root, ignore_errors=True)


if __name__ == "__main__":
    main()
