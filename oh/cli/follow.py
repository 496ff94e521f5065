"""Sending a command through the ledger and following its run (and the runs it chains) to the end.

When the ledger cannot store events (its disk is full, or it is halted on a damaged journal), the
command is refused with the ledger's reason and `oh emit` says so at once (exit 1) instead of
waiting; while following a run, the ledger's status is checked every few seconds: a full disk is
reported once (the run goes on when space returns), a halted ledger ends the wait (exit 1).
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from rich.markup import escape

from bus.home import Home
from oh.cli.common import console, err_console, fail

if TYPE_CHECKING:
    from contracts import Command

NO_WORKER_WARNING_SECONDS = 15.0
LEDGER_CHECK_SECONDS = 2.0


def emit_and_wait(command: Command, total: int, wait: bool, timeout: float) -> None:
    """Send the command; with `wait`, show progress until the run finishes and exit 1 if it failed."""
    from bus.producer import LedgerRefused, Producer
    from contracts import run_id_for
    from contracts.catalog import job_of

    home = Home.from_env()
    job = job_of(command).name
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
    run_id = run_id_for(command.id, job)
    if not wait:
        console.print(f"sent {job}; run id {run_id}", soft_wrap=True)
        return
    _follow(home, run_id, job, total, producer.last_acked_seq + 1, timeout)


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


def _follow(home: Home, run_id: str, job: str, total: int, from_seq: int, timeout: float) -> None:
    """Show progress of the run and of every run it starts (a `daily` run chains the others) until it ends."""
    from rich.progress import (
        BarColumn,
        MofNCompleteColumn,
        Progress,
        TextColumn,
        TimeElapsedColumn,
    )

    from bus.subscriber import Subscriber
    from contracts import RunFinished, RunStarted

    subscriber = Subscriber(home, types=["RunStarted", "RunFinished", *_DATA_EVENTS], from_seq=from_seq)
    ledger = _LedgerWatch(home)
    runs = {run_id: job}  # this run and its descendants
    running: dict[str, str] = {}
    partitions: set[tuple[str, str]] = set()
    rows = 0
    started = time.monotonic()
    warned = False
    finished: RunFinished | None = None
    with Progress(
        TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
        console=err_console, transient=False,
    ) as progress:
        task = progress.add_task(f"{job}: waiting for a worker", total=total or None)
        while finished is None:
            if time.monotonic() - started > timeout:
                fail(f"the run {run_id} did not finish within {timeout:g}s; it may still be running (`oh status`)")
            ledger.check(run_id)
            for _, event in subscriber.poll(200):
                if isinstance(event, RunStarted) and event.parent_run_id in runs:
                    runs[event.run_id] = event.job_name
                event_run = getattr(event, "run_id", None)
                if event_run not in runs:
                    continue
                if isinstance(event, RunStarted):
                    running[event.run_id] = event.job_name
                elif isinstance(event, RunFinished):
                    running.pop(event.run_id, None)
                    if event.run_id == run_id:
                        finished = event
                else:
                    rows += getattr(event, "row_count", 0)
                    partitions.add((runs[event_run], _partition(event)))
                now = ", ".join(sorted(set(running.values()) - {job})) or ("running" if running else "")
                progress.update(task, completed=len(partitions), description=f"{job}: {now}" if now else job)
            if not warned and len(running) == 0 and not partitions and time.monotonic() - started > NO_WORKER_WARNING_SECONDS:
                warned = True
                err_console.print("no worker has picked the command up yet: is the worker running? (`oh status`)")
    subscriber.close()
    ledger.client.close()
    if finished.status != "success":
        fail(f"{job} run {run_id} {finished.status} after {finished.duration_ms} ms: {finished.error_message}")
    detail = f"{rows} rows in {len(partitions)} partitions" if rows else f"{len(partitions)} partitions"
    steps = f" over {len(runs)} runs" if len(runs) > 1 else ""
    console.print(f"[green]{job} succeeded[/]: {detail}{steps} in {finished.duration_ms} ms (run {run_id})", soft_wrap=True)


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
