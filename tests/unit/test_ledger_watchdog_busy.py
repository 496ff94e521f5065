"""A ledger busy longer than the abandon timeout does not take a live worker's unread heartbeats for silence.

The run watchdog closes a run as `abandoned` when its service sent no heartbeat for `timeout` seconds. The
ledger reads heartbeats between commits, so during one long commit (a wide day's rows on a loaded box) the
beats a live worker sends wait unread on the socket. The watchdog must judge silence as of the last time
the ledger had read everything sent to it, not as of now: otherwise the head tick right after the long
commit abandons a run whose worker beat all along. A dead worker is still abandoned once the ledger has
caught up. The real `Ledger` runs its loop in a thread on a temp home; a thread beats as service
`ingest` over a real ZeroMQ socket; one commit is made slower than the timeout.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator

import pytest
import zmq

from bus.codec import encode
from bus.home import Home
from bus.producer import Producer
from contracts import Heartbeat
from services.ledger.app import Ledger
from tests.unit.factories import run_started

TIMEOUT = 1.0  # the watchdog's, in seconds (30 in production)
SLOW_COMMIT = 2.5  # one commit this long: longer than TIMEOUT, so the beats sent during it wait unread


class Beater(threading.Thread):
    """Beats as `ingest`, executing `run_id`, every 50 ms until stopped."""

    def __init__(self, home: Home, run_id: str) -> None:
        super().__init__(daemon=True)
        self.home, self.run_id = home, run_id
        self.stopped = threading.Event()

    def run(self) -> None:
        sock = zmq.Context.instance().socket(zmq.DEALER)
        sock.setsockopt(zmq.LINGER, 0)
        self.home.connect(sock, "ingress")
        try:
            while not self.stopped.is_set():
                sock.send(encode(Heartbeat(service="ingest", pid=os.getpid(), state="running", run_id=self.run_id)))
                self.stopped.wait(0.05)
        finally:
            sock.close()


@pytest.fixture
def ledger(home: Home) -> Iterator[Ledger]:
    ledger = Ledger(home)
    ledger.watchdog.timeout = TIMEOUT
    loop = threading.Thread(target=ledger.run, daemon=True)
    loop.start()
    yield ledger
    ledger.stop()
    loop.join(30)


def _status(ledger: Ledger, run_id: str) -> str | None:
    with ledger.warehouse.reader() as cursor:
        rows = cursor.execute("SELECT status FROM meta.ingestion_runs WHERE run_id = ?", [run_id]).fetchall()
    return rows[0][0] if rows else None


def _wait(condition: object, what: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    while not condition():  # type: ignore[operator]
        assert time.monotonic() < deadline, what
        time.sleep(0.02)


def _start_run(home: Home, ledger: Ledger, run_id: str) -> Producer:
    producer = Producer(home)
    producer.send(run_started(run_id, service="ingest"))
    producer.flush(10)
    _wait(lambda: _status(ledger, run_id) == "started", "the run did not start")
    return producer


def test_a_commit_longer_than_the_timeout_abandons_no_run_whose_worker_beats(
        home: Home, ledger: Ledger, monkeypatch: pytest.MonkeyPatch) -> None:
    """The worker beats every 50 ms throughout; one commit takes 2.5 s (timeout 1 s): the run stays `started`
    through the head ticks after it, while the ledger reads the queued beats."""
    beater = Beater(home, "r-live")
    beater.start()
    producer = _start_run(home, ledger, "r-live")
    slow_once = threading.Event()
    commit = ledger._commit

    def slow_commit(*args: object, **kwargs: object) -> None:
        if not slow_once.is_set():
            slow_once.set()
            time.sleep(SLOW_COMMIT)
        commit(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(ledger, "_commit", slow_commit)
    try:
        producer.send(run_started("r-other", 1.0, service="snapshot"))  # any event: its commit is the slow one
        producer.flush(30)
        _wait(slow_once.is_set, "the slow commit did not run")
        ticks_after = time.monotonic() + 3 * TIMEOUT  # head ticks (one a second) with the beats read meanwhile
        while time.monotonic() < ticks_after:
            assert _status(ledger, "r-live") == "started", "a live worker's run was abandoned during a slow commit"
            time.sleep(0.05)
    finally:
        beater.stopped.set()
        beater.join(5)
        producer.close()


def test_a_worker_that_stops_beating_is_still_abandoned(home: Home, ledger: Ledger) -> None:
    """The rule still holds: once the beats stop, the run is closed `abandoned` (WorkerLost) after the timeout."""
    beater = Beater(home, "r-dead")
    beater.start()
    producer = _start_run(home, ledger, "r-dead")
    try:
        beater.stopped.set()
        beater.join(5)
        _wait(lambda: _status(ledger, "r-dead") == "abandoned", "a silent worker's run was never abandoned")
    finally:
        producer.close()
