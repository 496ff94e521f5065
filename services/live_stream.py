"""The live_stream worker: live quotes and fills for the portfolio, idle until a StartLive.

`python -m services.live_stream` binds the tick channel (contracts.live; an ipc socket, no network)
and waits. StartLive and StopLive are journaled commands (sent by `oh live start|stop` and the
dashboard) that this worker handles as event handlers, not job runs: streaming lasts until the
next command. Quotes go out on the tick channel, conflated; trade updates are journaled through the
ledger (services.live.publisher.FillJournal).

After a restart (supervisord after a crash, or `oh up`), the worker resumes streaming only if the
last live command it had handled is a StartLive with `keep_running`; otherwise it stays idle until
the next start. How it tells: the runtime's offset file marks what it handled; before serving, it
reads every StartLive/StopLive from the journal (the ledger's event index finds the first, then
catch-up with a types filter) and splits them at that offset. Commands past the offset were
never handled (sent while the worker was down): the runtime delivers them, and all but the last
are skipped as superseded, so a backlog never starts and stops streams in a burst. A StartLive
without keep_running older than OH_COMMAND_TTL is skipped like a stale job command.
"""

from __future__ import annotations

import logging
import signal
import time

from bus.codec import decode_message
from bus.control_client import ControlClient, LedgerUnavailable, QueryError
from bus.home import Home
from contracts import Message, StartLive, StopLive, utc_now
from services import logs
from services.live.manager import LiveManager
from services.runs import Bus, command_ttl_seconds
from services.runtime import Worker

log = logging.getLogger(__name__)

NAME = "live_stream"
LIVE_TYPES = ["StartLive", "StopLive"]


def live_commands(control: ControlClient) -> list[tuple[int, Message]]:
    """Every committed StartLive/StopLive, in seq order (raises LedgerUnavailable while the ledger is down)."""
    first = 1
    try:
        table = control.query("SELECT min(seq) FROM ledger.events WHERE type IN ('StartLive', 'StopLive')")
        value = table.column(0)[0].as_py() if table.num_rows else None
        if value is None:
            return []
        first = int(value)
    except QueryError:
        pass  # no index to ask: scan the journal from the start
    out: list[tuple[int, Message]] = []
    seq = first
    while True:
        header, frames = control.catch_up(seq, 0, LIVE_TYPES)
        out += [(s, decode_message(payload)) for s, _, payload in frames]
        if header.last_seq >= header.head_seq or header.last_seq < seq:
            return out
        seq = header.last_seq + 1


def resume_plan(commands: list[tuple[int, Message]], offset: int) -> tuple[StartLive | None, set[str]]:
    """(the StartLive to resume now, ids of undelivered commands superseded by a later one).

    `offset` is the last seq this worker handled. Resume only when nothing newer waits and the last
    handled command is a StartLive with keep_running.
    """
    handled = [m for s, m in commands if s <= offset]
    pending = [m for s, m in commands if s > offset]
    superseded = {m.id for m in pending[:-1]}
    if not pending and handled and isinstance(handled[-1], StartLive) and handled[-1].keep_running:
        return handled[-1], superseded
    return None, superseded


class LiveWorker:
    """Wires the runtime Worker's reactions to a LiveManager."""

    def __init__(self, home: Home) -> None:
        self.home = home
        self.manager = LiveManager(home)
        self.superseded: set[str] = set()
        self.worker = Worker(NAME, home, {}, {StartLive: self.on_start, StopLive: self.on_stop})

    def on_start(self, command: StartLive, bus: Bus) -> None:
        """Start (or restart with new settings) streaming, unless superseded or stale."""
        if command.id in self.superseded:
            log.info("skip StartLive %s: a later live command was sent while this worker was down", command.id)
            return
        age = (utc_now() - command.ts).total_seconds()
        ttl = command_ttl_seconds()
        if not command.keep_running and age > ttl:
            log.warning("skip StartLive %s: %.0fs old, past the %.0fs TTL", command.id, age, ttl)
            return
        self.manager.start(command)
        self.worker.state("running" if self.manager.session else "idle")

    def on_stop(self, command: StopLive, bus: Bus) -> None:
        """Stop every stream; idle until the next StartLive."""
        if command.id in self.superseded:
            return
        self.manager.stop()
        self.worker.state("idle")

    def _resume(self) -> None:
        control = ControlClient(self.home, timeout=10.0)
        try:
            while True:
                try:
                    commands = live_commands(control)
                    journal_id = control.status().journal_id
                    break
                except LedgerUnavailable:
                    if self.worker.stopping:
                        return
                    log.warning("ledger not answering; waiting to read the last live command")
                    time.sleep(0.5)
        finally:
            control.close()
        handled, handled_in = self.worker.started_after
        if handled_in and journal_id and handled_in != journal_id:
            handled = 0  # its offset counts in another journal (the data was started over): nothing here was handled
        resume, self.superseded = resume_plan(commands, handled)
        if resume is not None:
            self.manager.start(resume, resumed=True)
            self.worker.state("running" if self.manager.session else "idle")
        else:
            log.info("idle until a start command (`oh live start`)")

    def serve(self) -> None:
        """Bind the tick channel, resume if asked to, then handle commands until SIGTERM."""
        signal.signal(signal.SIGTERM, self.worker.stop)
        signal.signal(signal.SIGINT, self.worker.stop)
        self.manager.open()
        try:
            self._resume()
            if not self.worker.stopping:
                self.worker.serve()
        finally:
            self.manager.close()
            log.info("%s stopped", NAME)


def main() -> None:
    """Entry point: `python -m services.live_stream`."""
    home = Home.from_env().ensure()
    logs.configure(NAME, home)
    LiveWorker(home).serve()


if __name__ == "__main__":
    main()
