"""A bounded memory of recent event ids, so a resent event is acknowledged but not applied twice."""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence


class RecentIds:
    """Remembers the seq given to the newest `capacity` ids (producers resend within seconds)."""

    def __init__(self, capacity: int = 500_000) -> None:
        self.capacity = capacity
        self._seqs: OrderedDict[str, int] = OrderedDict()

    def get(self, event_id: str) -> int | None:
        """The seq an id was journaled under, or None if it is new (or too old to remember)."""
        return self._seqs.get(event_id)

    def add(self, event_id: str, seq: int) -> None:
        """Remember an id, forgetting the oldest beyond capacity."""
        self._seqs[event_id] = seq
        if len(self._seqs) > self.capacity:
            self._seqs.popitem(last=False)

    def add_many(self, event_ids: Sequence[str], seqs: Sequence[int]) -> None:
        """Remember a journaled batch at once (as `add` one by one, in order, at C speed)."""
        self._seqs.update(zip(event_ids, seqs, strict=True))
        for _ in range(len(self._seqs) - self.capacity):
            self._seqs.popitem(last=False)

    def __len__(self) -> int:
        return len(self._seqs)
