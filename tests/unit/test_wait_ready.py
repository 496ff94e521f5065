"""`oh up` is ready only when `oh status` would say every service runs: the ledger answers, every worker has sent
a heartbeat AND supervisord (when it runs them) says RUNNING. A forked service heartbeats well within supervisord's
`startsecs`, while it is still STARTING; `oh up` returning then made an `oh status` right after it report
"not running" (exit 3: a full `.ci/run` failed so in test_candles_end_to_end).

supervisord and the ledger are stood in for here (their answers scripted poll by poll, both real adapters'
shapes: `supervisor.Program`, `StatusReply`), so the order of their answers is exact; the real processes' race is
test_candles_end_to_end's `oh up` then `oh status`."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from bus.home import Home
from contracts.control import StatusReply
from oh.adapters import supervisor
from oh.cli import services


def _reply(beating: list[str]) -> StatusReply:
    return StatusReply(head_seq=0, applied_seq=0, started_at=0.0, counters={}, fsync="batch",
                       heartbeats={name: {"last_seen": 0.0, "pid": 1} for name in beating})


def _programs(state_of: dict[str, str]) -> dict[str, supervisor.Program]:
    return {name: supervisor.Program(name, state, 100 + n, "") for n, (name, state) in enumerate(state_of.items())}


@pytest.fixture
def script(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[tuple[dict[str, str], list[str]]]]:
    """Polls scripted as (supervisord's state per program, the workers that have heartbeated); the last repeats."""
    polls: list[tuple[dict[str, str], list[str]]] = []
    seen = {"n": 0}

    def current() -> tuple[dict[str, str], list[str]]:
        return polls[min(seen["n"], len(polls) - 1)]

    def programs(_home: Home) -> dict[str, supervisor.Program]:
        return _programs(current()[0])

    def status(_home: Home, timeout: float = 1.0) -> StatusReply:
        reply = _reply(current()[1])
        seen["n"] += 1  # one poll: programs, then the ledger's status
        return reply

    monkeypatch.setattr(supervisor, "program_names", lambda: ["ledger", "ingest", "ui"])
    monkeypatch.setattr(supervisor, "programs", programs)
    monkeypatch.setattr(services, "_ledger_status", status)
    monkeypatch.setattr(services.time, "sleep", lambda _s: None)
    yield polls


def test_heartbeats_while_supervisord_still_says_starting_are_not_ready_yet(
        script: list[tuple[dict[str, str], list[str]]], tmp_path: Path) -> None:
    everyone = ["ingest", "ui"]
    script.extend([
        ({"ledger": "RUNNING", "ingest": "STARTING", "ui": "STARTING"}, everyone),
        ({"ledger": "RUNNING", "ingest": "RUNNING", "ui": "STARTING"}, everyone),
        ({"ledger": "RUNNING", "ingest": "RUNNING", "ui": "RUNNING"}, everyone),
    ])
    assert services.wait_ready(Home(tmp_path), timeout=30) == []
    # and it waited for the third poll: with only two scripted, the last (ui STARTING) repeats until the timeout
    del script[2]
    assert services.wait_ready(Home(tmp_path), timeout=0.5) == ["ui (STARTING)"]


def test_without_supervisord_heartbeats_alone_say_ready(
        script: list[tuple[dict[str, str], list[str]]], tmp_path: Path) -> None:
    """Under honcho (or by hand) supervisord answers nothing: heartbeats are all there is."""
    script.append(({}, ["ingest", "ui"]))
    assert services.wait_ready(Home(tmp_path), timeout=30) == []


def test_a_missing_heartbeat_is_named_before_a_supervisord_state(
        script: list[tuple[dict[str, str], list[str]]], tmp_path: Path) -> None:
    script.append(({"ledger": "RUNNING", "ingest": "RUNNING", "ui": "STARTING"}, ["ui"]))
    assert services.wait_ready(Home(tmp_path), timeout=0.3) == ["ingest", "ui (STARTING)"]


def test_only_waits_for_the_named_workers_and_the_ledger(
        script: list[tuple[dict[str, str], list[str]]], tmp_path: Path) -> None:
    """`oh demo` waits for the ledger and ingest first: a dashboard still starting does not hold that up."""
    script.append(({"ledger": "RUNNING", "ingest": "RUNNING", "ui": "STARTING"}, ["ingest"]))
    assert services.wait_ready(Home(tmp_path), timeout=30, only=["ingest"]) == []
    script[0] = ({"ledger": "STARTING", "ingest": "RUNNING", "ui": "RUNNING"}, ["ingest", "ui"])
    assert services.wait_ready(Home(tmp_path), timeout=0.3, only=["ingest"]) == ["ledger (STARTING)"]
