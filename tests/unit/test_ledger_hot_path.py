"""The ledger's per-event path made cheaper for small events (issue #14.2) keeps every promise of the slow one.

- `Intake` decodes a producer's packed batch in one call, yet sorts each message exactly as decoding them one
  by one did: a bad message is rejected alone, duplicates are answered with their seq, heartbeats are kept,
  and nothing is admitted while the ledger refuses events.
- `Journal.append` frames inline, byte for byte as `encode_frame` lays a frame out, across segment rollovers.
- `Warehouse.commit` first inserts fills without a conflict check; a fill whose id is stored already (older
  than the dedup window, or journaled twice) still lands once, and the batch around it commits.
- `GroupCommit`: the bounds of a group commit, from the environment, with a clear error for a bad value.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import date
from pathlib import Path

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import bus.codec
import bus.journal
import services.ledger.intake
from bus.codec import encode, pack_messages
from bus.journal import Journal, encode_frame
from contracts import CandlesIngested, Heartbeat, TradeUpdated
from services.ledger.dedup import RecentIds
from services.ledger.group_commit import GroupCommit
from services.ledger.intake import Intake
from tests.unit.factories import MiniLedger, candles, run_finished, run_started, table_rows, trade

ME = b"producer-1"


class Answers:
    """What an Intake answered: rejections (kind, id), refusals (id), counters."""

    def __init__(self) -> None:
        self.rejected: list[tuple[str, str | None]] = []
        self.refused: list[str | None] = []
        self.counted: dict[str, int] = {}

    def intake(self, seen: RecentIds | None = None, refusal: str | None = None,
               heartbeats: dict | None = None) -> Intake:
        return Intake(seen or RecentIds(100), {} if heartbeats is None else heartbeats, refusal,
                      self._reject, self._refuse, self._count)

    def _reject(self, identity: bytes, reason: str, kind: str, event_id: str | None) -> None:
        assert identity == ME and reason
        self.rejected.append((kind, event_id))

    def _refuse(self, identity: bytes, event_id: str | None, reason: str) -> None:
        assert identity == ME and reason
        self.refused.append(event_id)

    def _count(self, name: str, by: int) -> None:
        self.counted[name] = self.counted.get(name, 0) + by


def _fills(n: int) -> list[TradeUpdated]:
    return [trade(f"o-{i}", float(i)) for i in range(n)]


BAD_MESSAGES: dict[str, tuple[bytes, str]] = {
    "unknown type": (encode({"type": "NoSuchEvent", "id": "x"}), "unknown_type"),
    "missing field": (encode({"type": "TradeUpdated", "id": "y"}), "malformed"),
    "wrong field type": (encode({"type": "TradeUpdated", "id": "z", "order_id": 5, "symbol": "A", "event": "fill",
                                 "side": "buy", "qty": 1.0}), "malformed"),
    "not a map": (encode(17), "malformed"),
}


@pytest.mark.parametrize("bad", list(BAD_MESSAGES))
@pytest.mark.parametrize("position", [0, 2, 4])
def test_one_bad_message_in_a_packed_batch_is_rejected_alone(bad: str, position: int) -> None:
    """A packed batch holding one undecodable message: that one is rejected (with its kind), every other one
    is admitted in order, exactly as when each was decoded on its own."""
    good = _fills(4)
    payloads = [encode(m) for m in good]
    payloads.insert(position, BAD_MESSAGES[bad][0])
    answers = Answers()
    intake = answers.intake()
    intake.admit_frame(ME, pack_messages(payloads))
    assert answers.rejected == [(BAD_MESSAGES[bad][1], None)]
    assert [m.id for m in intake.messages] == [m.id for m in good]
    assert intake.payloads == [encode(m) for m in good]
    assert intake.types == ["TradeUpdated"] * 4 and intake.identities == [ME] * 4


def test_a_packed_batch_sorts_duplicates_heartbeats_and_new_events() -> None:
    """In one packed frame: an id journaled before is a duplicate answered with its seq; an id seen earlier in the
    same drain is a late duplicate pointing at the first; a heartbeat is recorded and not journaled; the rest
    are fresh, in arrival order."""
    old, new_a, new_b = _fills(3)
    seen = RecentIds(100)
    seen.add(old.id, 41)
    heartbeats: dict = {}
    answers = Answers()
    intake = answers.intake(seen=seen, heartbeats=heartbeats)
    beat = Heartbeat(service="flow", pid=7, state="idle")
    intake.admit_frame(ME, pack_messages([encode(m) for m in (new_a, old, beat, new_b, new_a)]))
    assert [m.id for m in intake.messages] == [new_a.id, new_b.id]
    assert intake.duplicates == [(ME, old.id, 41)]
    assert intake.late_duplicates == [(ME, new_a.id, 0)]
    assert heartbeats["flow"]["pid"] == 7
    assert answers.counted == {"duplicates_dropped": 2} and answers.rejected == []


def test_nothing_is_admitted_while_the_ledger_refuses_but_duplicates_are_still_answered() -> None:
    """Halted or stalled: each new event gets a refusal (the producer keeps it), none is fresh; an event journaled
    before is still a duplicate (it is stored: its Ack is owed)."""
    old, *new = _fills(4)
    seen = RecentIds(100)
    seen.add(old.id, 3)
    answers = Answers()
    intake = answers.intake(seen=seen, refusal="HALTED: the journal is damaged")
    intake.admit_frame(ME, pack_messages([encode(m) for m in (*new, old)]))
    intake.admit_frame(ME, encode(new[0]))  # one message, not packed
    assert intake.messages == []
    assert answers.refused == [m.id for m in new] + [new[0].id]
    assert intake.duplicates == [(ME, old.id, 3)]


def test_an_invalid_payload_in_a_batch_is_rejected_by_its_id() -> None:
    """A bulk event whose Arrow rows do not parse is rejected as invalid_payload, naming its id; the fills around it
    are admitted."""
    broken = candles("AAPL", date(2025, 1, 1), date(2025, 1, 10), "r1")
    broken = CandlesIngested(**{f: getattr(broken, f) for f in broken.__struct_fields__ if f != "rows"},
                             rows=b"not arrow")
    fills = _fills(2)
    answers = Answers()
    intake = answers.intake()
    intake.admit_frame(ME, pack_messages([encode(fills[0]), encode(broken), encode(fills[1])]))
    assert answers.rejected == [("invalid_payload", broken.id)]
    assert [m.id for m in intake.messages] == [m.id for m in fills]


def test_a_packed_frame_over_the_size_limit_is_checked_message_by_message(monkeypatch: pytest.MonkeyPatch) -> None:
    """Past OH_MAX_FRAME_BYTES the batch is not decoded at once: each message is held to the limit, so an oversized
    one is rejected as oversized and the small ones are admitted."""
    small = _fills(2)
    big = trade("o-" + "x" * 3000, 9.0)
    limit = len(encode(big)) - 1
    monkeypatch.setattr(bus.codec, "max_frame_bytes", lambda: limit)
    monkeypatch.setattr(services.ledger.intake, "max_frame_bytes", lambda: limit)
    answers = Answers()
    intake = answers.intake()
    intake.admit_frame(ME, pack_messages([encode(small[0]), encode(big), encode(small[1])]))
    assert answers.rejected == [("oversized", None)]
    assert [m.id for m in intake.messages] == [m.id for m in small]


def test_a_malformed_packed_frame_is_rejected_once() -> None:
    """A frame that claims to be a batch (a msgpack array) but does not parse is one rejection, nothing admitted."""
    answers = Answers()
    intake = answers.intake()
    intake.admit_frame(ME, pack_messages([encode(m) for m in _fills(3)])[:-40])
    assert answers.rejected == [("malformed", None)] and intake.messages == []


@settings(max_examples=60, deadline=None)
@given(st.lists(st.sampled_from(["fill", "repeat", "heartbeat", "bad"]), max_size=30))
def test_a_packed_batch_sorts_as_its_messages_sent_one_per_frame(kinds: list[str]) -> None:
    """Whatever a batch holds, admitting it packed gives the same fresh events, duplicates, late duplicates and
    rejections as admitting the same messages one frame each (the path the batch decode replaced)."""
    payloads: list[bytes] = []
    fills = _fills(len(kinds))
    for index, kind in enumerate(kinds):
        if kind == "fill":
            payloads.append(encode(fills[index]))
        elif kind == "repeat":
            payloads.append(encode(fills[0]))
        elif kind == "heartbeat":
            payloads.append(encode(Heartbeat(service=f"s{index}", pid=index, state="idle")))
        else:
            payloads.append(BAD_MESSAGES["missing field"][0])

    def sort(admit: Callable[[Intake], None]) -> tuple:
        answers = Answers()
        intake = answers.intake()
        admit(intake)
        return ([m.id for m in intake.messages], intake.payloads, intake.late_duplicates, answers.rejected,
                answers.counted)

    packed = sort(lambda intake: intake.admit_frame(ME, pack_messages(payloads)))
    one_by_one = sort(lambda intake: [intake.admit_frame(ME, p) for p in payloads])
    assert packed == one_by_one


# -- the journal's inline framing ------------------------------------------------------------
def test_appended_bytes_are_the_frames_encode_frame_lays_out(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The segments hold exactly encode_frame(seq, type, payload) for every frame, in seq order, also when the
    batch rolls over to new segments (so journal checks, repair and readers keep their one layout)."""
    monkeypatch.setenv("OH_SEGMENT_BYTES", "300")
    journal = Journal(tmp_path)
    frames = [(("TradeUpdated", "RunStarted", "CandlesIngested")[i % 3], bytes([i]) * (i * 7 % 90)) for i in range(40)]
    assert journal.append(frames[:5]) == [1, 2, 3, 4, 5]
    assert journal.append(frames[5:]) == list(range(6, 41))
    journal.close()
    segments = sorted(tmp_path.glob("*.seg"))
    assert len(segments) > 3
    stored = b"".join(path.read_bytes() for path in segments)
    assert stored == b"".join(encode_frame(seq, t, p) for seq, (t, p) in enumerate(frames, start=1))


# -- fills inserted without a conflict check first ---------------------------------------------
def test_a_fill_stored_before_lands_once_and_its_batch_commits(tmp_path: Path) -> None:
    """A batch of new fills that also holds a fill whose id is stored already (it came back after the dedup window):
    the first, unchecked INSERT fails on that id, the batch is applied again with the check, and every new fill is
    stored, the old one once and unchanged, nothing rejected, the offset past the batch."""
    ledger = MiniLedger(tmp_path)
    first = [run_started("r1", 0), *_fills(3)]
    ledger.submit(first)
    before = {row["event_id"]: row for row in table_rows(ledger.warehouse.con, "trade_updates")}
    again = first[2]
    new = [trade(f"new-{i}", 10.0 + i) for i in range(3)]
    seqs = ledger.submit([new[0], again, new[1], new[2], run_finished("r1", 20)])
    con = ledger.warehouse.con
    rows = {row["event_id"]: row for row in table_rows(con, "trade_updates")}
    assert set(rows) == set(before) | {m.id for m in new}
    assert rows[again.id] == before[again.id]
    assert table_rows(con, "ledger.rejected") == []
    assert ledger.warehouse.applied_seq == seqs[-1]
    assert table_rows(con, "meta.ingestion_runs")[0]["status"] == "success"


def test_a_journal_holding_one_fill_twice_rebuilds_to_the_live_tables(tmp_path: Path) -> None:
    """The same fill journaled twice (in one group commit and in separate ones) rebuilds to the tables the live
    commits gave: one row for it, nothing rejected."""
    ledger = MiniLedger(tmp_path)
    fills = _fills(4)
    ledger.submit([run_started("r1", 0), fills[0], fills[1]])
    ledger.submit([fills[2], fills[1], fills[3], fills[3]])
    live = table_rows(ledger.warehouse.con, "trade_updates")
    assert len(live) == 4
    ledger.warehouse.rebuild(ledger.journal)
    assert table_rows(ledger.warehouse.con, "trade_updates") == live
    assert table_rows(ledger.warehouse.con, "ledger.rejected") == []


# -- the group commit's bounds -------------------------------------------------------------
def test_group_commit_bounds_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """OH_GROUP_COMMIT_MS, _BUSY_MS, _EVENTS and _BYTES set the bounds; unset ones keep their defaults."""
    monkeypatch.setenv("OH_GROUP_COMMIT_MS", "0.5")
    monkeypatch.setenv("OH_GROUP_COMMIT_BUSY_MS", "8")
    monkeypatch.setenv("OH_GROUP_COMMIT_EVENTS", "300")
    monkeypatch.delenv("OH_GROUP_COMMIT_BYTES", raising=False)
    group = GroupCommit.from_env()
    assert (group.linger, group.busy_linger, group.events, group.max_bytes) == (0.0005, 0.008, 300, GroupCommit().max_bytes)


@pytest.mark.parametrize("value", ["fast", "-1", "1ms", "nan-ish"])
def test_a_bad_group_commit_setting_is_a_one_line_error(monkeypatch: pytest.MonkeyPatch, value: str) -> None:
    """A value that is not a non-negative number stops the ledger with one line naming the variable."""
    monkeypatch.setenv("OH_GROUP_COMMIT_BUSY_MS", value)
    with pytest.raises(SystemExit) as raised:
        GroupCommit.from_env()
    assert "OH_GROUP_COMMIT_BUSY_MS" in str(raised.value) and "\n" not in str(raised.value)


def test_the_linger_grows_only_while_events_stream_in() -> None:
    """After a small group (a lone command) the next drain waits at most `linger`; after a group of a tenth of either
    bound it waits up to `busy_linger`; a full group is never held back."""
    group = GroupCommit(linger=0.001, busy_linger=0.005, events=1000, max_bytes=1_000_000)
    assert group.deadline(10.0) == 10.001
    group.committed(1, 200)
    assert group.deadline(10.0) == 10.001
    group.committed(100, 20_000)
    assert group.deadline(10.0) == 10.005
    group.committed(3, 100_000)
    assert group.deadline(10.0) == 10.005
    group.committed(2, 300)
    assert group.deadline(10.0) == 10.001
    assert group.full(1000, 10) and group.full(1, 1_000_000) and not group.full(999, 999_999)
