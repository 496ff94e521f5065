"""`oh demo` sends its snapshot range in parts (oh.cli.demo.split_sessions): every session exactly once, in order.

Protects the demo's pipeline: a session left out would have no chain (and no flow, derived row or briefing), a
session twice would be snapshotted twice, and parts out of order would let a later part's derived rows be computed
before the IV history of an earlier part is stored.
"""

from __future__ import annotations

from datetime import date, timedelta

import pytest

from oh.cli.demo import split_sessions


def _days(n: int) -> list[date]:
    return [date(2026, 1, 1) + timedelta(days=i) for i in range(n)]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 10, 29, 30])
@pytest.mark.parametrize("parts", [1, 2, 3, 5, 40])
def test_parts_cover_every_session_once_in_order_and_nearly_equal(count: int, parts: int) -> None:
    """Concatenated, the parts are the sessions; no part is empty; their lengths differ by at most one; there are
    `parts` of them unless there are fewer sessions."""
    days = _days(count)
    split = split_sessions(days, parts)
    assert [day for part in split for day in part] == days
    assert all(split) and len(split) == min(parts, count)
    assert max(map(len, split)) - min(map(len, split)) <= 1


def test_the_first_parts_take_the_extra_sessions() -> None:
    """29 sessions in 3 parts: 10, 10, 9, oldest first."""
    split = split_sessions(_days(29), 3)
    assert [len(part) for part in split] == [10, 10, 9]
    assert split[0][0] == date(2026, 1, 1) and split[-1][-1] == date(2026, 1, 29)


def test_zero_parts_is_one_part() -> None:
    """A part count below one still sends every session, as one part."""
    assert split_sessions(_days(3), 0) == [_days(3)]
