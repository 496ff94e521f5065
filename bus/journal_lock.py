"""The journal's writer lock: at most one process writes a journal directory at a time.

The lock is `fcntl.flock` on `<journal>/LOCK`, so the kernel drops it when its holder exits,
however it exits (a `kill -9` never leaves a stale lock behind). The holder writes its pid and
what it is (`ledger`, `oh journal repair`, `oh replay --rebuild`) into the file, so a refusal can
name who holds the journal. Readers that never write (`Journal(read_only=True)`) take no lock.
"""

from __future__ import annotations

import fcntl
import logging
import os
import re
import time
from pathlib import Path

log = logging.getLogger(__name__)

LOCK_NAME = "LOCK"
_HOLDER = re.compile(r"pid (\d+) \((.+)\)")


class JournalLocked(RuntimeError):
    """Another process holds the journal's writer lock."""


class JournalLock:
    """One process's claim on a journal directory (acquire once, release on close or exit)."""

    def __init__(self, directory: Path, holder: str) -> None:
        self.path = directory / LOCK_NAME
        self.holder = holder
        self._fd: int | None = None

    @property
    def held(self) -> bool:
        """True once `acquire` succeeded and until `release`."""
        return self._fd is not None

    def describe_holder(self) -> str:
        """Who holds the lock, as the holder wrote it (`pid 123 (ledger)`), or `another process`."""
        try:
            text = self.path.read_text().strip()
        except OSError:
            text = ""
        return text or "another process"

    def acquire(self, wait: bool = False, poll: float = 0.5) -> JournalLock:
        """Take the lock; without `wait`, raise JournalLocked naming the holder if it is taken."""
        if self._fd is not None:
            return self
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        logged = False
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if not wait:
                    holder = self.describe_holder()
                    os.close(fd)
                    raise JournalLocked(
                        f"the journal in {self.path.parent} is in use by {holder}; only one process may write it"
                    ) from None
                if not logged:
                    log.warning("waiting for the journal lock held by %s", self.describe_holder())
                    logged = True
                time.sleep(poll)
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, f"pid {os.getpid()} ({self.holder})\n".encode(), 0)
        except OSError:
            pass  # the name is for messages only: a full disk must not stop the lock
        self._fd = fd
        return self

    def release(self) -> None:
        """Give the lock up (closing the descriptor releases the flock)."""
        if self._fd is not None:
            try:
                os.ftruncate(self._fd, 0)
            except OSError:
                pass  # a full disk cannot stop a release
            os.close(self._fd)
            self._fd = None


def live_holder(directory: Path) -> str | None:
    """What holds `directory`'s writer lock by its own account (`ledger`, `oh journal repair`, ...), when the pid it
    wrote is a live process of this host; None when the lock names nobody, or a process that has exited (a holder
    killed with -9 leaves its line behind: the kernel drops the lock, not the text). Takes no lock itself: a
    probe that briefly held the lock could make a starting ledger's `acquire` fail."""
    try:
        found = _HOLDER.fullmatch((directory / LOCK_NAME).read_text().strip())
    except OSError:
        return None
    if found is None:
        return None
    try:
        os.kill(int(found[1]), 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass  # alive, another user's
    return found[2]
