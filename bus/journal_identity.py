"""A journal's identity: a random id written once, when the journal directory is first opened to write.

Seqs are positions in one journal. A worker keeps its place as a seq (`OH_HOME/state/<name>.offset`),
and a seq from another journal means nothing: after the journal and the warehouse are deleted to
start over (or the ledger points at a new home) with the old `state/` kept, a worker that trusted its
old seq 500 would silently drop the new journal's commands 1..500 as already seen. So the ledger
tells its subscribers which journal a seq belongs to (the status and catch-up replies, the head
tick), and a subscriber that was reading another journal starts over in this one
(`bus/subscriber.py`).

The id lives in `<journal>/IDENTITY` (32 hex digits), written atomically (temporary file, fsync,
rename, directory fsync). A journal from before identities gets one when a writer first opens it;
a read-only open never writes one and reports "" when there is none. Repairs and rebuilds keep the
directory, so they keep the id: the seqs still mean the same events.
"""

from __future__ import annotations

import os
import secrets
from pathlib import Path

from bus.journal_check import sync_directory

IDENTITY_FILE = "IDENTITY"


def read_identity(directory: Path) -> str:
    """The journal's id, or "" when it has none yet (or it is unreadable)."""
    try:
        text = (directory / IDENTITY_FILE).read_text(encoding="ascii").strip()
    except (OSError, UnicodeDecodeError):
        return ""
    return text if len(text) == 32 and all(c in "0123456789abcdef" for c in text) else ""


def ensure_identity(directory: Path) -> str:
    """The journal's id, written now if it has none (the caller holds the journal's writer lock)."""
    existing = read_identity(directory)
    if existing:
        return existing
    identity = secrets.token_hex(16)
    tmp = directory / f"{IDENTITY_FILE}.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        os.write(fd, identity.encode("ascii") + b"\n")
        os.fsync(fd)
    finally:
        os.close(fd)
    os.replace(tmp, directory / IDENTITY_FILE)
    sync_directory(directory)
    return identity
