"""The ledger's bounded memory of recent event ids."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from services.ledger.dedup import RecentIds


def test_remembers_the_seq_each_id_got() -> None:
    """A resent id is recognised and answered with the seq it was first journaled under."""
    ids = RecentIds(capacity=10)
    ids.add("a", 1)
    ids.add("b", 2)
    assert ids.get("a") == 1
    assert ids.get("b") == 2
    assert ids.get("c") is None
    assert len(ids) == 2


def test_capacity_evicts_the_oldest_first() -> None:
    """Beyond capacity the oldest id is forgotten and the newest ones are kept; size never exceeds capacity."""
    ids = RecentIds(capacity=3)
    for seq, event_id in enumerate("abcde", start=1):
        ids.add(event_id, seq)
        assert len(ids) <= 3
    assert [ids.get(x) for x in "abcde"] == [None, None, 3, 4, 5]
    assert len(ids) == 3


@settings(max_examples=200, deadline=None)
@given(capacity=st.integers(min_value=1, max_value=20), count=st.integers(min_value=0, max_value=60))
def test_exactly_the_newest_capacity_ids_are_remembered(capacity: int, count: int) -> None:
    """After n distinct adds, the last min(n, capacity) ids are remembered with their seqs and no older one is."""
    ids = RecentIds(capacity=capacity)
    for seq in range(1, count + 1):
        ids.add(f"id-{seq}", seq)
    assert len(ids) == min(count, capacity)
    for seq in range(1, count + 1):
        expected = seq if seq > count - capacity else None
        assert ids.get(f"id-{seq}") == expected


@settings(max_examples=200, deadline=None)
@given(
    capacity=st.integers(min_value=1, max_value=20),
    chunks=st.lists(st.integers(min_value=0, max_value=15), max_size=8),
)
def test_adding_a_batch_remembers_what_adding_one_by_one_does(capacity: int, chunks: list[int]) -> None:
    """`add_many` (the ledger adds each journaled batch at once) keeps exactly the ids and seqs, in the same
    eviction order, that `add` per id would: same size, same answers for every id ever added."""
    one_by_one, batched = RecentIds(capacity=capacity), RecentIds(capacity=capacity)
    seq = 0
    for size in chunks:
        ids, seqs = [f"id-{seq + i}" for i in range(1, size + 1)], list(range(seq + 1, seq + size + 1))
        for event_id, s in zip(ids, seqs, strict=True):
            one_by_one.add(event_id, s)
        batched.add_many(ids, seqs)
        seq += size
        assert len(batched) == len(one_by_one) <= capacity
    assert [batched.get(f"id-{s}") for s in range(1, seq + 1)] == [one_by_one.get(f"id-{s}") for s in range(1, seq + 1)]
