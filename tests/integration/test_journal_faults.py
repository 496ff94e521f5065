"""A damaged journal never costs committed data: the ledger halts naming the damage, and the repair restores it.

The module builds data once with the real stack (ledger with small segments, the ingest worker, `oh emit ... --wait`,
trades from a producer) and stops it; each test starts from its own byte-for-byte copy of that home's journal and
warehouse, damages the journal on disk, and starts the ledger again.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from bus.home import Home
from bus.journal import _scan
from bus.producer import Producer
from contracts import TradeUpdated
from devtools.processes import wait_applied
from services.ledger.schema import PROJECTED_TABLES
from tests.integration.conftest import Stack, copy_home, run_oh, shared_home

pytestmark = pytest.mark.integration

SEGMENT_BYTES = "8192"  # a few segments for a few thousand candles, so older ones get sealed


def _snapshot(stack: Stack) -> dict[str, Any]:
    tables: dict[str, Any] = {t: stack.client.query(f"SELECT * FROM {t} ORDER BY ALL").to_pylist() for t in PROJECTED_TABLES}
    tables["ledger.events"] = stack.client.query("SELECT seq, id, type, bytes FROM ledger.events ORDER BY seq").to_pylist()
    return tables


@dataclass(frozen=True)
class Built:
    """A stopped home holding committed runs and trades, with its tables and head seq as the ledger served them."""

    home: Home
    before: dict[str, Any]
    head: int


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Built]:
    """Runs from the CLI and trades from a producer, all committed, then the stack stopped: once for the module
    (every test damages its own copy, never this one)."""
    with shared_home(tmp_path_factory.mktemp("journal-faults")) as home:
        stack = Stack(home, ledger_env={"OH_SEGMENT_BYTES": SEGMENT_BYTES})
        try:
            stack.start_ledger()
            stack.start_ingest()
            for symbols, start, end in (("AAPL,MSFT", "2025-01-01", "2025-03-31"),
                                        ("SPY", "2025-01-01", "2025-06-30"), ("QQQ,IWM", "2025-04-01", "2025-04-30")):
                done = run_oh("emit", "ingest-candles", "--symbols", symbols, "--start", start, "--end", end, "--wait")
                assert done.returncode == 0, done.stderr
            producer = Producer(home)
            producer.send_many([TradeUpdated(order_id=f"o{i}", symbol="AAPL", event="fill", side="buy", qty=1.0,
                                             price=10.0) for i in range(20)])
            producer.flush(30)
            producer.close()
            wait_applied(home, producer.last_acked_seq)
            before = _snapshot(stack)
            head = stack.client.status().head_seq
            assert head == producer.last_acked_seq
        finally:
            stack.stop()
        yield Built(home, before, head)


def _build(home: Home, built: Built) -> tuple[Stack, dict[str, Any], int]:
    """This test's home gets a copy of the built journal, warehouse and state (not its logs or sockets); returns a
    stopped stack on it, the tables and the head."""
    copy_home(built.home, home)
    return Stack(home, ledger_env={"OH_SEGMENT_BYTES": SEGMENT_BYTES}), built.before, built.head


def _frames(segment: Path) -> list[tuple[int, int, int, str]]:
    """(start offset, end offset, seq, type) of every frame in a segment."""
    out, start = [], 0
    for end, frame in _scan(segment):
        out.append((start, end, frame.seq, frame.type))
        start = end
    return out


def _flip(segment: Path, position: int, mask: int = 0x5A) -> bytes:
    data = bytearray(segment.read_bytes())
    data[position] ^= mask
    segment.write_bytes(bytes(data))
    return bytes(data)


def _restart(stack: Stack) -> Stack:
    again = Stack(stack.home, ledger_env={"OH_SEGMENT_BYTES": SEGMENT_BYTES})
    again.start_ledger()
    return again


def _assert_halted_and_named(stack: Stack, segment: Path, offset: int, before: dict[str, Any]) -> None:
    """The ledger answers, keeps every committed row, reports the fault naming the segment and offset, refuses events."""
    assert _snapshot(stack) == before, "committed data changed"
    status = stack.client.status()
    assert status.fault is not None and segment.name in status.fault and f"byte {offset}" in status.fault
    assert "oh journal repair" in status.fault
    assert status.applied_seq == max(r["seq"] for r in before["ledger.events"])
    assert segment.name in stack.ledger.log_text()
    shown = run_oh("status")
    assert "ledger not storing events" in shown.stdout and segment.name in shown.stdout and shown.returncode != 0
    health = run_oh("db", "health")
    assert health.returncode == 0, health.stderr
    assert "ledger not storing events" in health.stdout and segment.name in health.stdout
    refused = run_oh("emit", "ingest-candles", "--symbols", "NVDA", "--start", "2025-01-01", "--end", "2025-01-31",
                     "--wait", timeout=60)
    assert refused.returncode == 1 and "did not store the command" in refused.stderr and "HALTED" in refused.stderr
    locked = run_oh("journal", "repair")
    assert locked.returncode == 1 and "oh down" in locked.stderr


def _repair_and_restart(stack: Stack, before: dict[str, Any], *repair_args: str) -> Stack:
    stack.stop()
    check = run_oh("journal", "check")
    assert check.returncode == 1 and "damaged" in check.stdout
    repaired = run_oh("journal", "repair", *repair_args)
    assert repaired.returncode == 0, repaired.stderr
    assert "journal repaired" in repaired.stdout
    assert run_oh("journal", "check").returncode == 0
    again = _restart(stack)
    status = again.client.status()
    assert status.fault is None
    assert _snapshot(again) == before
    return again


def test_a_flipped_byte_in_the_newest_segment_halts_and_is_repaired_exactly(home: Home, built: Built) -> None:
    """Flip one byte of a committed candles frame in the newest segment: on start the ledger halts (the warehouse is not
    rebuilt, not one row is lost), `oh status`, `oh db health` and the log name the segment and offset, events are
    refused; `oh journal repair` (ledger stopped) corrects the byte; after a restart the tables equal those before the
    flip, a rebuild from the repaired journal gives them again, and new commands run."""
    stack, before, head = _build(home, built)
    segment = max(home.journal.glob("*.seg"))
    frames = _frames(segment)
    assert len(frames) >= 3, "the newest segment should hold several frames"
    start, end, _, _ = frames[len(frames) // 2]
    damaged = _flip(segment, (start + end) // 2)
    stack = _restart(stack)
    try:
        _assert_halted_and_named(stack, segment, start, before)
        assert segment.read_bytes() == damaged and not list(home.journal.glob("*.cut-*")), "the journal was changed"
        stack = _repair_and_restart(stack, before)
        rebuilt = run_oh("replay", "--rebuild")
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert _snapshot(stack) == before
        stack.start_ingest()
        more = run_oh("emit", "ingest-candles", "--symbols", "NVDA", "--start", "2025-01-01", "--end", "2025-01-31", "--wait")
        assert more.returncode == 0, more.stderr
        assert stack.client.status().head_seq > head
    finally:
        stack.stop()


def test_a_flipped_byte_in_a_sealed_segment_is_found_on_start_and_repaired(home: Home, built: Built) -> None:
    """Flip one byte in the oldest (sealed) segment: caught on start by its seal, not later by a rebuild; the ledger
    halts naming it; the repair restores it; the restarted ledger has the same tables, and so does a rebuild."""
    stack, before, _ = _build(home, built)
    segments = sorted(home.journal.glob("*.seg"))
    assert len(segments) >= 2, "the data should span several segments"
    oldest = segments[0]
    frames = _frames(oldest)
    start, end, _, _ = frames[-1]
    _flip(oldest, end - 3, 0x01)
    stack = _restart(stack)
    try:
        _assert_halted_and_named(stack, oldest, start, before)
        stack = _repair_and_restart(stack, before)
        rebuilt = run_oh("replay", "--rebuild")
        assert rebuilt.returncode == 0, rebuilt.stderr
        assert _snapshot(stack) == before
    finally:
        stack.stop()


def test_a_frame_beyond_correction_is_marked_lost_and_the_warehouse_keeps_its_rows(home: Home, built: Built) -> None:
    """Two damaged bytes in one committed frame cannot be corrected: the repair says which seq cannot be restored and
    writes nothing until told `--mark-lost`; then the frames after it are kept (resync), the ledger starts with every
    committed row still in the warehouse, and goes on journaling."""
    stack, before, head = _build(home, built)
    segment = max(home.journal.glob("*.seg"))
    frames = _frames(segment)
    start, end, seq, _ = frames[len(frames) // 2]
    _flip(segment, start + 30, 0x01)
    damaged = _flip(segment, end - 10, 0x01)
    stack = _restart(stack)
    try:
        assert stack.client.status().fault is not None
        stack.stop()
        refused = run_oh("journal", "repair")
        assert refused.returncode == 1 and f"1 seq ({seq}) cannot be restored" in refused.stderr and "--mark-lost" in refused.stderr
        assert segment.read_bytes() == damaged
        stack = _restart(stack)
        stack = _repair_and_restart(stack, before, "--mark-lost")
        producer = Producer(home)
        producer.send(TradeUpdated(order_id="after", symbol="AAPL", event="fill", side="buy", qty=1.0, price=10.0))
        producer.flush(30)
        producer.close()
        assert producer.last_acked_seq == head + 1
    finally:
        stack.stop()


def test_a_journal_shorter_than_the_warehouse_halts_instead_of_rebuilding(home: Home, built: Built) -> None:
    """The newest frames vanished from the journal (a tail cut by an older version, kept in a `.cut` file): the ledger
    keeps the warehouse, halts naming the missing seqs and the `.cut` file, and the repair puts the frames back."""
    stack, before, head = _build(home, built)
    segment = max(home.journal.glob("*.seg"))
    start, _, seq, _ = _frames(segment)[-3]
    data = segment.read_bytes()
    cut = segment.with_name(f"{segment.name}.cut-{start}")
    cut.write_bytes(data[start:])
    segment.write_bytes(data[:start])
    stack = _restart(stack)
    try:
        status = stack.client.status()
        assert status.fault is not None and f"seqs {seq}..{head} are missing" in status.fault and cut.name in status.fault
        assert _snapshot(stack) == before
        deadline = time.monotonic() + 5
        while time.monotonic() < deadline:  # still halted a while later: no restart, no rebuild
            assert stack.ledger.proc is not None and stack.ledger.proc.poll() is None
            time.sleep(0.5)
        assert _snapshot(stack) == before
        stack = _repair_and_restart(stack, before)
        assert stack.client.status().head_seq == head
    finally:
        stack.stop()


def test_an_offline_rebuild_never_writes_beside_another_journal_writer(home: Home, built: Built) -> None:
    """`oh replay --rebuild` with no ledger answering takes the journal's writer lock: while another process holds it
    (a ledger that does not answer, a repair), the rebuild is refused naming the holder, and nothing is touched."""
    from bus.journal_lock import JournalLock

    stack, before, _ = _build(home, built)
    warehouse = home.warehouse.read_bytes()
    lock = JournalLock(home.journal, "a test standing in for a busy ledger").acquire()
    try:
        refused = run_oh("replay", "--rebuild")
        assert refused.returncode == 1 and "a test standing in for a busy ledger" in refused.stderr
        assert home.warehouse.read_bytes() == warehouse
    finally:
        lock.release()
    rebuilt = run_oh("replay", "--rebuild")
    assert rebuilt.returncode == 0, rebuilt.stderr
    stack = _restart(stack)
    try:
        assert _snapshot(stack) == before
    finally:
        stack.stop()

