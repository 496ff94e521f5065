"""When a worker records its place (`OH_HOME/state/<name>.offset`, services/runtime.py `Worker.serve`).

Reactions' offsets are written at most every OFFSET_SECONDS while committed events keep coming and at the first
poll that brings none (not once per event, nor per batch: a worker keeping up gets batches of one; ~12% of the
checks worker's CPU on a wide day), after every command at once, and on the way out; the
file never names a seq the worker has not handled, and never lags the last handled one once `serve` returns.
What reactions send is held for the batch and handed to the producer as one frame (at most HELD_MAX messages)
before the offset is written and before a command runs.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from pathlib import Path

from contracts import RunChecks, SymbolsRemembered
from contracts.base import Message
from services import runtime
from services.runs import Shutdown
from services.runtime import Worker, read_offset

JOURNAL_ID = "a" * 32


class _Subscriber:
    """Hands over the given batches of (seq, message), one per poll, then nothing."""

    def __init__(self, batches: list[list[tuple[int, Message]]]) -> None:
        self.batches = batches
        self.journal_id = JOURNAL_ID

    def poll(self, timeout_ms: int = 100) -> list[tuple[int, Message]]:
        return self.batches.pop(0) if self.batches else []

    def close(self) -> None:
        pass


class _Producer:
    """Records each frame (`send_many`) it is given."""

    def __init__(self) -> None:
        self.frames: list[list[Message]] = []

    def pump(self) -> None:
        pass

    def send_many(self, messages: list[Message]) -> None:
        self.frames.append(list(messages))


class _Bus:
    """The real SocketBus's send, hold and release on a recording producer."""

    stop_requested = False
    send = runtime.SocketBus.send
    hold = runtime.SocketBus.hold
    release = runtime.SocketBus.release

    def __init__(self) -> None:
        self.producer = _Producer()
        self.held: list[Message] | None = None

    def close(self, name: str) -> None:
        pass


class _Heartbeat:
    def __init__(self) -> None:
        self.stopped = threading.Event()
        self.state = "idle"
        self.run_id = None

    def start(self) -> None:
        pass


def _worker(tmp_path: Path, batches: list[list[tuple[int, Message]]], react, handlers=None) -> Worker:  # type: ignore[no-untyped-def]
    worker = Worker.__new__(Worker)
    worker.name = "checks"
    worker.handlers = handlers or {}
    worker.reactions = {SymbolsRemembered: react}
    worker.bus = _Bus()  # type: ignore[assignment]
    worker.offset_path = tmp_path / "checks.offset"
    worker.subscriber = _Subscriber(batches)  # type: ignore[assignment]
    worker.heartbeat = _Heartbeat()  # type: ignore[assignment]
    worker._offset_due = 0.0
    return worker


def _events(first: int, n: int) -> list[tuple[int, Message]]:
    return [(seq, SymbolsRemembered(symbols=[f"S{seq}"])) for seq in range(first, first + n)]


def _counting_writes(monkeypatch) -> list[int]:  # type: ignore[no-untyped-def]
    written: list[int] = []
    real = runtime.write_offset

    def write(path: Path, seq: int, journal_id: str | None) -> None:
        written.append(seq)
        real(path, seq, journal_id)

    monkeypatch.setattr(runtime, "write_offset", write)
    return written


def test_a_batch_of_reactions_writes_the_offset_once_with_its_last_seq(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Two batches of 200 committed events: two writes (each batch's last seq), not 400; the file ends at the last."""
    written = _counting_writes(monkeypatch)
    monkeypatch.setattr(runtime, "OFFSET_SECONDS", 3600.0)
    batches = [_events(10, 200), _events(210, 200)]
    seen: list[int] = []
    worker = _worker(tmp_path, batches, lambda message, bus: seen.append(int(message.symbols[0][1:])))

    def stop_when_drained(message: Message, bus: object) -> None:
        seen.append(int(message.symbols[0][1:]))  # type: ignore[attr-defined]
        if len(seen) == 400:
            worker.bus.stop_requested = True

    worker.reactions = {SymbolsRemembered: stop_when_drained}
    worker.serve()
    assert seen == list(range(10, 410))
    assert written[-1] == 409 and len(written) <= 3, written  # the second batch's 1st write may fall on time
    assert read_offset(worker.offset_path, "checks") == (409, JOURNAL_ID)


def test_the_offset_never_names_an_event_not_yet_handled(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """While an event is being handled the file names an earlier seq (or none): a crash redelivers it."""
    monkeypatch.setattr(runtime, "OFFSET_SECONDS", 0.0)  # a write after every event: the strictest timing
    worker = _worker(tmp_path, [_events(1, 50)], lambda m, b: None)
    seen_in_file: list[tuple[int, int]] = []

    def look(message: Message, bus: object) -> None:
        seq = int(message.symbols[0][1:])  # type: ignore[attr-defined]
        seen_in_file.append((seq, read_offset(worker.offset_path, "checks")[0]))
        if seq == 50:
            worker.bus.stop_requested = True

    worker.reactions = {SymbolsRemembered: look}
    worker.serve()
    assert all(stored < seq for seq, stored in seen_in_file), seen_in_file
    assert read_offset(worker.offset_path, "checks")[0] == 50


def test_a_command_is_recorded_as_soon_as_it_is_handled(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A command's seq is in the file before the next event of its batch is handled (a run is never redone
    for want of a batched write; its claim check would skip it anyway)."""
    monkeypatch.setattr(runtime, "OFFSET_SECONDS", 3600.0)
    monkeypatch.setattr(runtime, "execute", lambda bus, message, handler, name: None)
    batch: list[tuple[int, Message]] = [*_events(1, 3), (4, RunChecks()), *_events(5, 3)]
    worker = _worker(tmp_path, [batch], lambda m, b: None, handlers={RunChecks: lambda c, r: None})
    seen_in_file: dict[int, int] = {}

    def look(message: Message, bus: object) -> None:
        seq = int(message.symbols[0][1:])  # type: ignore[attr-defined]
        seen_in_file[seq] = read_offset(worker.offset_path, "checks")[0]
        if seq == 7:
            worker.bus.stop_requested = True

    worker.reactions = {SymbolsRemembered: look}
    worker.serve()
    assert seen_in_file[5] == 4, seen_in_file
    assert read_offset(worker.offset_path, "checks")[0] == 7


def test_stopping_mid_batch_records_the_last_event_handled(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """A stop (SIGTERM) in the middle of a batch: the file names the last event handled, not the batch's end;
    a job's Shutdown: the file names the event before the interrupted command (which resumes on restart)."""
    monkeypatch.setattr(runtime, "OFFSET_SECONDS", 3600.0)
    worker = _worker(tmp_path, [_events(1, 100)], lambda m, b: None)

    def stop_at_40(message: Message, bus: object) -> None:
        if message.symbols == ["S40"]:  # type: ignore[attr-defined]
            worker.bus.stop_requested = True

    worker.reactions = {SymbolsRemembered: stop_at_40}
    worker.serve()
    assert read_offset(worker.offset_path, "checks")[0] == 40

    def shut_down(bus: object, message: Message, handler: object, name: str) -> None:
        raise Shutdown

    monkeypatch.setattr(runtime, "execute", shut_down)
    other = tmp_path / "other"
    other.mkdir()
    batch: list[tuple[int, Message]] = [*_events(101, 5), (106, RunChecks()), *_events(107, 5)]
    worker = _worker(other, [batch], lambda m, b: None, handlers={RunChecks: lambda c, r: None})
    worker.serve()
    assert read_offset(worker.offset_path, "checks")[0] == 105


def _sent(bus: object) -> list[str]:
    return [m.symbols[0] for frame in bus.producer.frames for m in frame]  # type: ignore[attr-defined]


def _echo_until(worker: Worker, last: str) -> Callable[[Message, runtime.SocketBus], None]:
    """A reaction that sends one message per event (`R<seq>` for event `S<seq>`) and stops the worker at `last`."""
    def echo(message: Message, bus: runtime.SocketBus) -> None:
        bus.send([SymbolsRemembered(symbols=[f"R{message.symbols[0][1:]}"])])  # type: ignore[attr-defined]
        if message.symbols == [last]:  # type: ignore[attr-defined]
            worker.bus.stop_requested = True

    return echo


def test_what_a_batch_of_reactions_sends_goes_as_one_frame_at_most_held_max(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """600 committed events in one batch, each reaction sending one message: frames of HELD_MAX, HELD_MAX and the
    rest, in order; a second batch of 3 is a frame of its own (a batch's messages never wait for the next batch)."""
    monkeypatch.setattr(runtime, "OFFSET_SECONDS", 3600.0)
    worker = _worker(tmp_path, [_events(1, 600), _events(601, 3)], lambda m, b: None)
    worker._offset_due = float("inf")  # no write on time within a batch

    worker.reactions = {SymbolsRemembered: _echo_until(worker, "S603")}
    worker.serve()
    frames = worker.bus.producer.frames  # type: ignore[attr-defined]
    assert [len(f) for f in frames] == [runtime.HELD_MAX, runtime.HELD_MAX, 600 - 2 * runtime.HELD_MAX, 3]
    assert _sent(worker.bus) == [f"R{seq}" for seq in range(1, 604)]


def test_the_offset_is_written_only_after_the_reactions_messages_left(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Whenever the offset file is written (after every event here: the strictest timing, and on the way out after
    a stop mid-batch), every message the reactions up to that seq sent has been handed to the producer."""
    monkeypatch.setattr(runtime, "OFFSET_SECONDS", 0.0)
    worker = _worker(tmp_path, [_events(1, 50)], lambda m, b: None)
    behind: list[tuple[int, int]] = []
    real = runtime.write_offset

    def write(path: Path, seq: int, journal_id: str | None) -> None:
        if len(_sent(worker.bus)) < seq:
            behind.append((seq, len(_sent(worker.bus))))
        real(path, seq, journal_id)

    monkeypatch.setattr(runtime, "write_offset", write)

    worker.reactions = {SymbolsRemembered: _echo_until(worker, "S30")}
    worker.serve()
    assert behind == []
    assert read_offset(worker.offset_path, "checks")[0] == 30 and len(_sent(worker.bus)) == 30


def test_a_command_s_messages_follow_what_the_reactions_before_it_sent(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """Reactions, a command, reactions in one batch: the command's run sends at once (nothing held while it runs),
    after the messages of the reactions before it; the reactions after it are held again for the batch's end."""
    monkeypatch.setattr(runtime, "OFFSET_SECONDS", 3600.0)

    def run(bus: runtime.SocketBus, message: Message, handler: object, name: str) -> None:
        assert bus.held is None
        bus.send([SymbolsRemembered(symbols=["RUN"])])

    monkeypatch.setattr(runtime, "execute", run)
    batch: list[tuple[int, Message]] = [*_events(1, 3), (4, RunChecks()), *_events(5, 3)]
    worker = _worker(tmp_path, [batch], lambda m, b: None, handlers={RunChecks: lambda c, r: None})
    worker._offset_due = float("inf")  # no write on time within the batch (the command's own still releases)

    worker.reactions = {SymbolsRemembered: _echo_until(worker, "S7")}
    worker.serve()
    frames = worker.bus.producer.frames  # type: ignore[attr-defined]
    assert [[m.symbols[0] for m in frame] for frame in frames] == [["R1", "R2", "R3"], ["RUN"], ["R5", "R6", "R7"]]


def test_a_worker_keeping_up_writes_on_time_and_when_the_events_stop(tmp_path: Path, monkeypatch) -> None:  # type: ignore[no-untyped-def]
    """50 batches of one event (a worker keeping up), then a poll with none: the offset is written for the first
    (its time was due) and at the empty poll, not 50 times; the file then names the last event."""
    written = _counting_writes(monkeypatch)
    monkeypatch.setattr(runtime, "OFFSET_SECONDS", 3600.0)
    worker = _worker(tmp_path, [_events(seq, 1) for seq in range(1, 51)], lambda m, b: None)
    polls = worker.subscriber.poll

    def poll(timeout_ms: int = 100) -> list[tuple[int, Message]]:
        batch = polls(timeout_ms)
        if not batch:
            worker.bus.stop_requested = True  # after this empty poll's write
        return batch

    worker.subscriber.poll = poll  # type: ignore[method-assign]
    worker.serve()
    assert written == [1, 50], written
    assert read_offset(worker.offset_path, "checks") == (50, JOURNAL_ID)
