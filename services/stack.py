"""Every worker's jobs and reactions in one process, on the in-process ledger (no processes, no sockets).

The in-process counterpart of the supervisord stack, for handler tests and for measuring compute
without transport: `send` journals messages on services/ledger/inprocess.py; each committed
message goes to the inbox of every worker that handles it (a command to the worker that runs its
job, an event to each worker that reacts to it), and `run_until_idle` works the inboxes. Like a
real worker, each handles its inbox in seq order, one message at a time, and runs commands
through `runs.execute` (the same lifecycle: claim, RunStarted, handler, RunFinished).

`flush()` works the inboxes too, except those of workers already busy further up the stack: so a
job that sends commands and waits for them (daily) finds them done, and a worker never runs two
of its messages at once, exactly as on the bus.
"""

from __future__ import annotations

import logging
from collections import defaultdict, deque
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import pyarrow as pa

from bus.home import Home
from contracts import Command, Message
from services import briefing, checks, derived, flow, ingest, options_bars, scheduler, snapshot
from services.ledger.inprocess import InProcessLedger
from services.runs import Handler, Reaction, execute

log = logging.getLogger(__name__)

# The worker of each job and reaction, as `python -m services.<name>` would serve them.
WORKERS: dict[str, tuple[dict[Any, Handler], dict[Any, Reaction]]] = {
    "ingest": (ingest.HANDLERS, {}),
    "options_bars": (options_bars.HANDLERS, {}),
    "snapshot": (snapshot.HANDLERS, {}),
    "flow": (flow.HANDLERS, flow.REACTIONS),
    "derived": (derived.HANDLERS, derived.REACTIONS),
    "briefing": (briefing.HANDLERS, briefing.REACTIONS),
    "checks": (checks.HANDLERS, checks.REACTIONS),
    "scheduler": (scheduler.HANDLERS, {}),
}


class InProcessStack:
    """The workers named in `workers` (default: every one) on one in-process ledger; it is their Bus."""

    def __init__(self, home: Home, workers: Iterable[str] = tuple(WORKERS), warehouse: Path | None = None) -> None:
        self.home = home.ensure()
        self.ledger = InProcessLedger(warehouse)
        self.rejected = self.ledger.rejected
        self.inboxes: dict[str, deque[Message]] = defaultdict(deque)
        self.routes: dict[type[Message], list[str]] = defaultdict(list)
        self.handlers: dict[str, dict[Any, Handler]] = {}
        self.reactions: dict[str, dict[Any, Reaction]] = {}
        for name in workers:
            handlers, reactions = WORKERS[name]
            self.handlers[name], self.reactions[name] = handlers, reactions
            for kind in (*handlers, *reactions):
                self.routes[kind].append(name)
        self.busy: set[str] = set()
        self.stop_requested = False

    # -- the Bus ---------------------------------------------------------------------------------
    def send(self, messages: Sequence[Message]) -> None:
        for message in self.ledger.append(messages):
            for name in self.routes.get(type(message), ()):
                self.inboxes[name].append(message)

    def flush(self) -> None:
        self.run_until_idle()

    def query(self, sql: str, params: list[Any] | None = None) -> pa.Table:
        return self.ledger.query(sql, params)

    def stopping(self) -> bool:
        return self.stop_requested

    # -- running ---------------------------------------------------------------------------------
    def run_until_idle(self) -> None:
        """Work every inbox (of workers not busy) until all are empty."""
        while True:
            ready = next((name for name, inbox in self.inboxes.items() if inbox and name not in self.busy), None)
            if ready is None:
                return
            self._handle(ready, self.inboxes[ready].popleft())

    def _handle(self, name: str, message: Message) -> None:
        self.busy.add(name)
        try:
            react = self.reactions[name].get(type(message))
            if react is not None:
                try:
                    react(message, self)
                except Exception:  # as on the bus: a reaction that fails is logged and skipped
                    log.exception("%s could not react to %s %s", name, type(message).__name__, message.id)
                return
            handler = self.handlers[name].get(type(message))
            if handler is not None:
                execute(self, message, handler, name)  # type: ignore[arg-type]
        finally:
            self.busy.discard(name)

    def run(self, command: Command) -> None:
        """Send one command and run it, with everything it chains, to the end."""
        self.send([command])
        self.run_until_idle()

    def close(self) -> None:
        self.ledger.close()
