"""When one drain of the ledger stops gathering events and commits them: group commit sized by time and bytes.

Each group costs the same fixed work whatever its size: one journal write and fsync, one DuckDB
transaction (BEGIN, one statement per event type and per bookkeeping table, the offset, COMMIT and
DuckDB's own WAL fsync), one Ack per producer, one published message per run of one type. So a drain
reads everything waiting on the ingress and, when the ingress runs dry while the group is still
small (fewer than `events` events and fewer than `max_bytes` bytes), waits for more to arrive, up to
a linger counted from the start of the drain:

- `linger` (`OH_GROUP_COMMIT_MS`, 1 ms) after a quiet spell (the group before was small): a lone
  command is acknowledged and committed at most this much later;
- `busy_linger` (`OH_GROUP_COMMIT_BUSY_MS`, 5 ms) while events stream in (the group before reached a
  tenth of either bound): the fixed cost is spread over more events, and a stream's events wait at
  most this long for their group.

A group that reaches either bound is committed at once; the linger never holds back a full group.
"""

from __future__ import annotations

from dataclasses import dataclass

from services.settings import env_float


@dataclass
class GroupCommit:
    """The bounds of one group commit and whether the ingress is busy (see the module docstring)."""

    linger: float = 0.001  # seconds
    busy_linger: float = 0.005  # seconds
    events: int = 2000
    max_bytes: int = 4 * 1024 * 1024
    busy: bool = False

    @classmethod
    def from_env(cls) -> GroupCommit:
        """The bounds from OH_GROUP_COMMIT_MS, OH_GROUP_COMMIT_BUSY_MS, OH_GROUP_COMMIT_EVENTS, OH_GROUP_COMMIT_BYTES."""
        defaults = cls()
        return cls(
            linger=env_float("OH_GROUP_COMMIT_MS", defaults.linger * 1000) / 1000,
            busy_linger=env_float("OH_GROUP_COMMIT_BUSY_MS", defaults.busy_linger * 1000) / 1000,
            events=max(1, int(env_float("OH_GROUP_COMMIT_EVENTS", defaults.events))),
            max_bytes=max(1, int(env_float("OH_GROUP_COMMIT_BYTES", defaults.max_bytes))),
        )

    def deadline(self, started: float) -> float:
        """Until when a drain started at `started` (monotonic seconds) may wait for more events."""
        return started + (self.busy_linger if self.busy else self.linger)

    def full(self, events: int, size: int) -> bool:
        """Whether a group of `events` events and `size` bytes is committed without waiting for more."""
        return events >= self.events or size >= self.max_bytes

    def committed(self, events: int, size: int) -> None:
        """Note the size of the group just gathered: it decides the next drain's linger."""
        self.busy = events * 10 >= self.events or size * 10 >= self.max_bytes
