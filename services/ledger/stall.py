"""The ledger's two ways of not accepting events: *stalled* (the disk is full) and *halted* (the journal is damaged).

Stalled is temporary and ends by itself. A journal write that fails (ENOSPC, or any OSError) is rolled back
(`Journal.append` is all or nothing), a warehouse COMMIT that fails for want of space leaves the
batch in the journal only; either way the ledger stops acknowledging new events (each gets a
`Nack(retry=True)` naming the full disk, so producers keep them and resend), says so once in its
log (the path, and the free space there), and every `retry_seconds()` tries again: the journal's
fsync, then applying whatever the journal holds beyond the warehouse's offset. When that works and
the disk has room for the batch that failed, it accepts events again, without a restart.

Halted lasts until a person repairs the journal (`oh journal repair`): the ledger keeps serving
status and read-only queries but journals nothing, so supervisord never restart-loops it.
"""

from __future__ import annotations

import errno
import os
import re
import time
from dataclasses import dataclass
from pathlib import Path

HEADROOM_BYTES = 1 << 20  # free space wanted beyond the batch that failed before accepting events again


def retry_seconds() -> float:
    """OH_STALL_RETRY_SECONDS (2), read when used, never at import."""
    return float(os.environ.get("OH_STALL_RETRY_SECONDS", "2"))


_NO_SPACE_ERRNOS = {errno.ENOSPC, errno.EDQUOT}
_NO_SPACE_TEXT = re.compile(r"no space left on device|disk quota exceeded|not enough space", re.IGNORECASE)
_FILE_IN_TEXT = re.compile(r'file "([^"]+)"')


class JournalNotDurable(RuntimeError):
    """The journal's fsync failed, so the batch must not be committed to the warehouse yet."""


def is_disk_full(exc: BaseException) -> bool:
    """True if `exc` (or what caused it) says the disk or the quota is full: OSError ENOSPC/EDQUOT, or DuckDB's words."""
    seen: set[int] = set()
    current: BaseException | None = exc
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _NO_SPACE_ERRNOS:
            return True
        if _NO_SPACE_TEXT.search(str(current)):
            return True
        current = current.__cause__ or current.__context__
    return False


def free_bytes(path: Path) -> int:
    """Free bytes for an unprivileged writer on the filesystem holding `path` (or its nearest existing parent)."""
    probe = path
    while not probe.exists() and probe != probe.parent:
        probe = probe.parent
    stats = os.statvfs(probe)
    return stats.f_bavail * stats.f_frsize


def _human(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024  # type: ignore[assignment]
    return f"{size} B"


@dataclass
class Stall:
    """Why the ledger is not accepting events right now, and when it tries again."""

    path: Path
    needed: int
    error: str
    since: float
    next_try: float
    full: bool = True

    @classmethod
    def from_error(cls, exc: BaseException, default_path: Path, needed: int) -> Stall:
        match = _FILE_IN_TEXT.search(str(exc))
        path = Path(match.group(1)) if match else Path(getattr(exc, "filename", None) or default_path)
        now = time.monotonic()
        return cls(path=path, needed=needed, error=str(exc).splitlines()[0][:200] if str(exc) else type(exc).__name__,
                   since=time.time(), next_try=now + retry_seconds(), full=is_disk_full(exc))

    def describe(self) -> str:
        """One line for the log, `oh status` and waiting clients."""
        try:
            free = _human(free_bytes(self.path))
        except OSError:
            free = "unknown"
        what = "disk full" if self.full else "storage failing"
        return (f"{what}: cannot write {self.path} ({self.error}); {free} free there. Not acknowledging new "
                f"events until it works again (retrying every {retry_seconds():g}s); nothing unstored was acknowledged")

    def due(self) -> bool:
        """Time to try again?"""
        return time.monotonic() >= self.next_try

    def postpone(self) -> None:
        """The retry failed: try again after `retry_seconds()`."""
        self.next_try = time.monotonic() + retry_seconds()

    def room(self) -> bool:
        """True once the disk has room for the batch that failed, and some headroom."""
        try:
            return free_bytes(self.path) >= self.needed + HEADROOM_BYTES
        except OSError:
            return False
