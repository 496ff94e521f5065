"""Sending a command through the ledger and following its run (and the runs it chains) to the end.

Before sending, one status request to the ledger (answered at once when its socket is missing):
with no ledger, `oh emit` says oh is not running and exits 1 at once, sending nothing; when the
worker of the job has no recent heartbeat it says so at once (the command is stored and runs when
the worker starts). A followed `run_checks` run ends with how many checks passed, failed (by
severity) and were skipped.

When the ledger cannot store events (its disk is full, or it is halted on a damaged journal), the
command is refused with the ledger's reason and `oh emit` says so at once (exit 1) instead of
waiting; while following a run, the ledger's status is checked every few seconds: a full disk is
reported once (the run goes on when space returns), a halted ledger ends the wait (exit 1).

`follow_all` follows several sent commands at once (what `oh demo` does): a progress line each, one subscription
from the first send, so each event is read once; it ends when every run has ended, and exits 1 as soon as one failed.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import TYPE_CHECKING

from rich.markup import escape

from bus.home import Home
from oh.cli.common import console, err_console, fail
from oh.domain.units import plural

if TYPE_CHECKING:
    from contracts import AssetChecked, Command, RunFinished
    from contracts.control import StatusReply

NO_WORKER_WARNING_SECONDS = 15.0
LEDGER_CHECK_SECONDS = 2.0
BEATING_SECONDS = 10.0  # a worker heard from within this is running (heartbeats come every 2 s)


def probe(home: Home, worker: str) -> StatusReply | None:
    """Ask the ledger once before sending: exit 1 at once if there is none; warn at once if `worker` is not
    beating. None when the ledger's socket is there but it did not answer in time (it may be starting: the
    send then waits for its acknowledgement as usual)."""
    from bus.control_client import ControlClient, LedgerUnavailable

    client = ControlClient(home, timeout=2.0)
    socket_file = Path(client.endpoint.removeprefix("ipc://")) if client.endpoint.startswith("ipc://") else None
    try:
        if socket_file is not None and not socket_file.exists():
            fail(f"oh is not running (no ledger for {home.root}): start it with `oh up`; nothing was sent")
        try:
            status = client.status(timeout=2.0)
        except LedgerUnavailable:
            return None
    finally:
        client.close()
    beat = status.heartbeats.get(worker)
    if beat is None or time.time() - float(beat["last_seen"]) > BEATING_SECONDS:
        err_console.print(f"[yellow]the {worker} worker is not running[/] (no recent heartbeat): the command is stored "
                          "and runs when it starts (`oh up`, `oh status`)", highlight=False, soft_wrap=True)
    return status


def send(command: Command) -> tuple[str, int]:
    """Send the command through the ledger (after `probe`); its run id and the seq to follow it from. Exit 1 if the
    ledger did not store it."""
    from bus.producer import LedgerRefused, Producer
    from contracts import run_id_for
    from contracts.catalog import job_of

    home = Home.from_env()
    job = job_of(command)
    probe(home, job.worker)
    producer = Producer(home)
    producer.send(command)
    try:
        producer.flush(timeout=10.0, give_up_on_refusal=True)
    except LedgerRefused as exc:
        producer.pending.clear()  # not stored, and this process is about to exit: nothing to resend
        fail(f"the ledger did not store the command: {exc}")
    except TimeoutError:
        fail("the ledger did not acknowledge the command within 10s: is oh running? (`oh up`, `oh status`)")
    finally:
        producer.close()
    if producer.rejected:
        fail(f"the ledger rejected the command: {producer.rejected[0][1]}")
    return run_id_for(command.id, job.name), producer.last_acked_seq + 1


def follow(command: Command, sent: tuple[str, int], total: int, timeout: float) -> None:
    """Show the progress of a sent command's run (and the runs it chains) until it ends; exit 1 if it failed."""
    follow_all([(command, sent, total)], timeout)


def follow_all(sent: list[tuple[Command, tuple[str, int], int]], timeout: float) -> None:
    """`follow` for several sent commands at once, a progress line each, with one subscription from the first send:
    it ends when every run has ended (exit 1 as soon as one failed). Each command's events are read once, not once
    per command (a later command's follow would replay every event since its send from the journal)."""
    from contracts.catalog import job_of

    roots = [_Root(run_id, job_of(command).name, total) for command, (run_id, _), total in sent]
    _follow(Home.from_env(), roots, min(from_seq for _, (_, from_seq), _ in sent), timeout)


def emit_and_wait(command: Command, total: int, wait: bool, timeout: float) -> None:
    """Send the command; with `wait`, show progress until the run finishes and exit 1 if it failed."""
    sent = send(command)
    if not wait:
        from contracts.catalog import job_of

        console.print(f"sent {job_of(command).name}; run id {sent[0]}", soft_wrap=True)
        return
    follow(command, sent, total, timeout)


_DATA_EVENTS = ("CandlesIngested", "OptionBarsIngested", "ChainSnapshotted", "FlowComputed", "DerivedComputed",
                "BriefingBuilt", "AssetFailed", "AssetChecked")


def _partition(event: object) -> str:
    """The partition a data event covers, as its asset row names it."""
    for day_field in ("bar_date", "snapshot_date", "as_of"):
        if hasattr(event, day_field) and hasattr(event, "symbol"):
            return f"{event.symbol}|{getattr(event, day_field)}"  # type: ignore[attr-defined]
    if hasattr(event, "partition_key"):
        return event.partition_key or ""  # type: ignore[attr-defined]
    if hasattr(event, "symbol"):
        return event.symbol  # type: ignore[attr-defined]
    return str(getattr(event, "as_of", ""))


class _Root:
    """A followed run: its job, the runs it started (by id, with their job), what it stored, how it ended."""

    def __init__(self, run_id: str, job: str, total: int) -> None:
        self.run_id, self.job, self.total = run_id, job, total
        self.runs = {run_id: job}  # this run and its descendants
        self.running: dict[str, str] = {}
        self.partitions: set[tuple[str, str]] = set()
        self.rows = 0
        self.checks = _CheckTally()
        self.finished: RunFinished | None = None

    def description(self) -> str:
        if not self.running and not self.partitions and self.finished is None:
            return f"{self.job}: waiting for a worker"
        now = ", ".join(sorted(set(self.running.values()) - {self.job})) or ("running" if self.running else "")
        return f"{self.job}: {now}" if now else self.job


class _Board:
    """The followed runs: which root each run id descends from, and the roots still running. `apply` takes one
    event and returns the root whose line it changed, or None. A root's line stays as its run ended: the runs it
    chained go on after it (a snapshot's flow, derived metrics and briefing), and counting their partitions on
    it would run its bar past its total (250/80); a `daily` root, which ends after its chain, counts them all."""

    def __init__(self, roots: list[_Root]) -> None:
        self.root_of = {root.run_id: root for root in roots}  # every followed run id -> the root it descends from
        self.waiting = list(roots)

    def apply(self, event: object) -> _Root | None:
        from contracts import RunFinished, RunStarted

        if isinstance(event, RunStarted) and event.parent_run_id in self.root_of:
            self.root_of[event.run_id] = self.root_of[event.parent_run_id]
            self.root_of[event.run_id].runs[event.run_id] = event.job_name
        root = self.root_of.get(getattr(event, "run_id", None))  # type: ignore[arg-type]
        if root is None or root not in self.waiting:
            return None
        if isinstance(event, RunStarted):
            root.running[event.run_id] = event.job_name
        elif isinstance(event, RunFinished):
            root.running.pop(event.run_id, None)
            if event.run_id == root.run_id:
                root.finished = event
                self.waiting.remove(root)
        else:
            root.rows += getattr(event, "row_count", 0)
            root.partitions.add((root.runs[event.run_id], _partition(event)))  # type: ignore[attr-defined]
            if type(event).__name__ == "AssetChecked":
                root.checks.add(event)  # type: ignore[arg-type]
        return root


def _follow(home: Home, roots: list[_Root], from_seq: int, timeout: float) -> None:
    """Show progress of each root run and of every run it starts (a `daily` run chains the others) until all end."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from bus.subscriber import Subscriber

    subscriber = Subscriber(home, types=["RunStarted", "RunFinished", *_DATA_EVENTS], from_seq=from_seq)
    ledger = _LedgerWatch(home)
    board = _Board(roots)
    started = time.monotonic()
    warned = False
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, transient=False,
    ) as progress:
        tasks = {root.run_id: progress.add_task(root.description(), total=root.total or None) for root in roots}
        while board.waiting:
            if time.monotonic() - started > timeout:
                fail(f"the run {board.waiting[0].run_id} did not finish within {timeout:g}s; it may still be running "
                     "(`oh status`)")
            ledger.check(board.waiting[0].run_id)
            for _, event in subscriber.poll(200):
                root = board.apply(event)
                if root is None:
                    continue
                progress.update(tasks[root.run_id], completed=len(root.partitions), description=root.description())
                if root.finished is not None:
                    _finished(root)  # exits 1 if it failed
            idle = all(not r.running and not r.partitions for r in board.waiting)
            if not warned and board.waiting and idle and time.monotonic() - started > NO_WORKER_WARNING_SECONDS:
                warned = True
                err_console.print("no worker has picked the command up yet: is the worker running? (`oh status`)")
    subscriber.close()
    ledger.client.close()


def _finished(root: _Root) -> None:
    """Say how a root run ended: its rows, partitions and runs (and a checks tally); exit 1 if it did not succeed."""
    finished = root.finished
    assert finished is not None
    if finished.status != "success":
        fail(f"{root.job} run {root.run_id} {finished.status} after {finished.duration_ms} ms: {finished.error_message}")
    detail = (f"{plural(root.rows, 'row')} in {plural(len(root.partitions), 'partition')}" if root.rows
              else plural(len(root.partitions), "partition"))
    steps = f" over {plural(len(root.runs), 'run')}" if len(root.runs) > 1 else ""
    console.print(f"[green]{root.job} succeeded[/]: {detail}{steps} in {finished.duration_ms:,} ms (run {root.run_id})",
                  soft_wrap=True)
    if root.job == "run_checks":
        console.print(root.checks.summary(), soft_wrap=True, highlight=False, style="red" if root.checks.failed else None)


class _CheckTally:
    """Check results of a followed run, by status (and failures by severity)."""

    def __init__(self) -> None:
        self.passed = self.skipped = 0
        self.failed: dict[str, int] = {}

    def add(self, event: AssetChecked) -> None:
        for result in event.results:
            if result.status == "pass":
                self.passed += 1
            elif result.status == "fail":
                self.failed[result.severity] = self.failed.get(result.severity, 0) + 1
            else:
                self.skipped += 1

    def summary(self) -> str:
        """`118 checks passed, 2 failed (1 error, 1 warn), 3 skipped`."""
        failed = sum(self.failed.values())
        text = f"{plural(self.passed, 'check')} passed, {failed:,} failed"
        if failed:
            text += " (" + ", ".join(f"{n:,} {severity}" for severity, n in sorted(self.failed.items())) + ")"
        if self.skipped:
            text += f", {self.skipped:,} skipped"
        return text + ("; `oh db health` lists the failures" if failed else "")


class _LedgerWatch:
    """Asks the ledger's status every LEDGER_CHECK_SECONDS while a run is followed, and says what stops it."""

    def __init__(self, home: Home) -> None:
        from bus.control_client import ControlClient

        self.client = ControlClient(home, timeout=2.0)
        self.next_check = time.monotonic() + LEDGER_CHECK_SECONDS
        self.stalled_said = False

    def check(self, run_id: str) -> None:
        """Fail on a halted ledger; print a full disk once (and once more when it is over)."""
        from bus.control_client import LedgerUnavailable

        if time.monotonic() < self.next_check:
            return
        self.next_check = time.monotonic() + LEDGER_CHECK_SECONDS
        try:
            status = self.client.status()
        except LedgerUnavailable:
            return  # a restarting ledger: the subscriber catches up when it is back
        if status.fault:
            self.client.close()
            fail(f"the ledger stopped storing events, so run {run_id} cannot finish: {status.fault}")
        if status.stalled and not self.stalled_said:
            err_console.print(f"[yellow]waiting:[/] {escape(status.stalled)}", highlight=False, soft_wrap=True)
            self.stalled_said = True
        elif self.stalled_said and not status.stalled:
            err_console.print("the ledger stores events again; the run goes on", highlight=False)
            self.stalled_said = False
