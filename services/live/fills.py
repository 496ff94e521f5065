"""Fills never lost: reconcile Alpaca's fills over REST whenever the trade-updates stream (re)connects.

A fill seen on the trade-updates stream is handed to the FillJournal and is journaled once the
ledger acknowledges it. If live_stream dies in between, or the stream was down when the fill
happened, the fill exists only at Alpaca. So at the start of an alpaca session and each time the
stream is listening (the first connect and every reconnect), this thread fetches the account's fills
(REST account activities, oh.adapters.alpaca.activities) since its watermark and hands them to the
FillJournal. Their ids are the stream's ids for the same fills (activities.fill_id), so the ledger
drops what it already has: each fill is journaled once, whichever way it came first.

The watermark, `OH_HOME/state/live_stream.fills.json` (`{"after": ISO time}`), promises that every
fill before it is journaled. It moves only when a reconciliation's fills are all acknowledged by the
ledger, and only up to the moment the stream was listening before that fetch (later fills come on
the stream; one still unacknowledged at a crash is fetched again, as REST is asked from the watermark
minus MARGIN). The first alpaca session of a home records its start: older fills are not imported.
MARGIN covers the skew between this machine's clock and Alpaca's times; fetching more only costs
duplicates the ledger drops. A failed fetch is logged and retried with backoff until it works, the
session stops, or the stream reconnects again (which restarts it at once).
"""

from __future__ import annotations

import json
import logging
import os
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from bus.home import Home
from contracts import TradeUpdated
from oh.adapters.streams import Backoff
from services.live.publisher import FillJournal

log = logging.getLogger(__name__)

MARGIN = timedelta(minutes=5)
STATE_FILE = "live_stream.fills.json"

Fetch = Callable[[datetime], list[TradeUpdated]]


class FillReconciler(threading.Thread):
    """Fetches fills since the watermark and journals them; one reconciliation at a time (see module doc)."""

    def __init__(self, home: Home, fetch: Fetch, journal: FillJournal, backoff: Backoff | None = None) -> None:
        super().__init__(name="live-fills-reconcile", daemon=True)
        self.path: Path = home.state / STATE_FILE
        self.fetch = fetch
        self.journal = journal
        self.backoff = backoff or Backoff(base=1.0, cap=60.0)
        self.error: str | None = None  # the last failed fetch, until one succeeds
        self.reconciled = 0  # reconciliations completed (fills fetched and all journaled)
        self.stopped = threading.Event()
        self._wake = threading.Event()
        self._lock = threading.Lock()
        self._listening_at: float | None = None

    # -- the watermark ----------------------------------------------------------------------------
    def watermark(self) -> datetime | None:
        """Every fill before this time is journaled; None before the first alpaca session of this home."""
        try:
            return datetime.fromisoformat(json.loads(self.path.read_text())["after"])
        except FileNotFoundError:
            return None
        except (ValueError, KeyError, TypeError) as exc:
            log.warning("ignoring an unreadable %s (%s): reconciling the last day instead", self.path, exc)
            return datetime.now(UTC) - timedelta(days=1)

    def _store(self, when: datetime) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        temporary = self.path.with_suffix(".tmp")
        temporary.write_text(json.dumps({"after": when.astimezone(UTC).isoformat()}))
        os.replace(temporary, self.path)

    def prepare(self) -> None:
        """Before anything streams: the first alpaca session of a home records its start as the watermark."""
        if not self.path.exists():
            self._store(datetime.now(UTC))

    # -- requests (any thread, never blocking) -----------------------------------------------------
    def request(self, listening: bool = False) -> None:
        """Reconcile soon; `listening`: the stream is listening now (the watermark may then move up to now)."""
        with self._lock:
            if listening:
                self._listening_at = time.time()
        self._wake.set()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the current step; fills already handed over stay with the FillJournal."""
        self.stopped.set()
        self._wake.set()
        if self.is_alive():
            self.join(timeout)

    # -- the thread ---------------------------------------------------------------------------------
    def _take_request(self) -> float | None:
        self._wake.clear()
        with self._lock:
            listening_at, self._listening_at = self._listening_at, None
        return listening_at

    def run(self) -> None:
        while not self.stopped.is_set():
            self._wake.wait()
            if self.stopped.is_set():
                return
            self._reconcile(self._take_request())

    def _reconcile(self, listening_at: float | None) -> None:
        attempt = 0
        while not self.stopped.is_set():
            after = (self.watermark() or datetime.now(UTC)) - MARGIN
            try:
                fills = self.fetch(after)
            except Exception as exc:  # ProviderError in words; anything else is a bug, logged in full
                attempt += 1
                wait = self.backoff.delay(attempt)
                self.error = f"cannot reconcile fills with Alpaca: {exc}"
                log.warning("%s; retrying in %.0fs", self.error, wait, exc_info=not _is_provider_error(exc))
                if self._wake.wait(wait):  # the stream reconnected meanwhile: go now, to the newer moment
                    listening_at = self._take_request() or listening_at
                    attempt = 0
                continue
            self.error = None
            done = self.journal.put_batch(fills)
            while not done.wait(0.5):  # the ledger may be down: the FillJournal keeps trying
                if self.stopped.is_set():
                    return
            moved = ""
            if listening_at is not None:
                until = datetime.fromtimestamp(listening_at, UTC)
                current = self.watermark()
                if current is None or until > current:
                    self._store(until)
                    moved = f"; watermark now {until.isoformat(timespec='seconds')}"
            self.reconciled += 1
            log.info("reconciled %d fill(s) from Alpaca's account activities after %s, all journaled%s",
                     len(fills), after.isoformat(timespec="seconds"), moved)
            return


def _is_provider_error(exc: Exception) -> bool:
    from oh.adapters.base import ProviderError

    return isinstance(exc, ProviderError)
