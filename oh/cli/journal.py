"""`oh journal check | repair`: find what is wrong with the journal, and fix it without losing committed data.

`check` makes the ledger's own checks on start (every sealed segment against its seal, the newest
walked frame by frame, the journal's end against the warehouse's committed offset), read-only, so
it also works while oh runs.

`repair` needs the journal to itself: it takes the journal's writer lock, so it refuses while a
ledger (even a halted one) holds it: stop oh first (`oh down`). It never touches the warehouse (it
opens it read-only, for the committed offset and `ledger.events`, which checks each corrected frame
and labels lost ones). See `bus/journal_repair.py` for what it can restore: a damaged byte exactly,
the frames after a damaged range (resync, also from a `.cut-*` file an older version left), and,
with `--mark-lost` only, what neither can restore is marked lost so the journal is whole again.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import typer

from bus.home import Home
from oh.cli.common import console, fail
from oh.domain.units import plural

if TYPE_CHECKING:
    from bus.journal_format import Frame
    from services.ledger.offline import CommittedRecord

journal_app = typer.Typer(help="The journal (the source of truth): check it, repair it.", no_args_is_help=True)


def _record(home: Home) -> CommittedRecord:
    """What the warehouse committed, read-only (exit 1 if a running ledger holds it)."""
    from services.ledger.offline import OfflineError, committed_record

    try:
        return committed_record(home)
    except OfflineError as exc:
        fail(f"{exc}: stop oh first (`oh down`)")


def _accept(lookup: Callable[[int], dict[str, Any] | None]) -> Callable[[Frame], bool]:
    """A corrected frame must decode as a message of its type, and match what the warehouse recorded of its seq."""
    from bus.codec import FrameError, decode_message

    def accept(frame: Frame) -> bool:
        try:
            message = decode_message(frame.payload)
        except FrameError:
            return False
        if type(message).__name__ != frame.type:
            return False
        known = lookup(frame.seq)
        return known is None or (known["id"] == message.id and known["type"] == frame.type
                                 and known["bytes"] == len(frame.payload))

    return accept


def _ranges(seqs: list[int]) -> str:
    """`3, 7..9` for [3, 7, 8, 9]."""
    parts: list[str] = []
    for seq in seqs:
        if parts and seq == int(parts[-1].split("..")[-1]) + 1:
            parts[-1] = f"{parts[-1].split('..')[0]}..{seq}"
        else:
            parts.append(str(seq))
    return ", ".join(parts)


@journal_app.command("check")
def check() -> None:
    """Check every journal segment as the ledger does on start (read-only; exit 1 if anything is wrong)."""
    from bus.journal import Journal
    from contracts import MESSAGE_TYPES

    home = Home.from_env()
    committed = _ledger_applied(home)
    if committed is None:  # no ledger: read the offset from the file
        record = _record(home)
        committed = record.seq
        record.close()
    journal = Journal(home.journal, read_only=True, committed_seq=committed, type_names=MESSAGE_TYPES)
    segments = journal.segments()
    size = sum(path.stat().st_size for _, path in segments)
    console.print(f"journal {home.journal}: {plural(len(segments), 'segment')}, {size / 1e6:.1f} MB, head seq {journal.head_seq:,}; "
                  f"warehouse committed through seq {committed}", soft_wrap=True, highlight=False)
    problems = [fault.describe() for fault in journal.faults]
    if journal.head_seq < committed and not journal.faults:
        problems.append(f"the journal ends at seq {journal.head_seq} but the warehouse committed through seq {committed}")
    for cut in journal.cut_files():
        console.print(f"bytes cut from a torn tail are kept in {cut.name} ({plural(cut.stat().st_size, 'byte')})", highlight=False)
    if problems:
        for problem in problems:
            console.print(f"[bold red]damaged:[/] {problem}", soft_wrap=True, highlight=False)
        fail("the journal needs a repair: stop oh (`oh down`), run `oh journal repair`, then `oh up`")
    console.print("[green]journal OK[/]: every segment checks out")


def _ledger_applied(home: Home) -> int | None:
    """The warehouse offset as a running ledger reports it (None if no ledger answers)."""
    from bus.control_client import ControlClient, LedgerUnavailable

    client = ControlClient(home, timeout=2.0)
    try:
        return client.status().applied_seq if client.answers(timeout=1.0) else None
    except LedgerUnavailable:
        return None
    finally:
        client.close()


@journal_app.command("repair")
def repair(
    mark_lost: bool = typer.Option(
        False, "--mark-lost",
        help="Mark what cannot be restored from the journal's bytes as lost (the warehouse keeps its rows, but a rebuild "
             "from the journal will not reproduce them), so the ledger can start again.",
    ),
    dry_run: bool = typer.Option(False, "--dry-run", help="Say what the repair would do; write nothing."),
) -> None:
    """Repair a damaged journal (oh must be stopped): correct damaged bytes, resync past what cannot be corrected."""
    from bus.journal import Journal
    from bus.journal_lock import JournalLock, JournalLocked
    from bus.journal_repair import apply_repair, plan_repair
    from contracts import MESSAGE_TYPES

    home = Home.from_env()
    lock = JournalLock(home.journal, "oh journal repair")
    try:
        lock.acquire()
    except JournalLocked as exc:
        fail(f"{exc}: stop oh first (`oh down`), then run `oh journal repair` again")
    try:
        record = _record(home)
        committed, lookup = record.seq, record.event
        plan = plan_repair(home.journal, committed, MESSAGE_TYPES, _accept(lookup))
        if not plan.segments:
            console.print(f"nothing to repair: the journal reaches the warehouse's committed seq {committed}")
        for segment in plan.segments:
            said = [f"{segment.path.name}:"]
            if segment.corrected:
                said.append(f"restored exactly (one damaged byte corrected) seqs {_ranges(segment.corrected)}")
            if segment.missing:
                said.append(f"cannot restore seqs {_ranges(segment.missing)}")
            if segment.spliced_cut is not None:
                said.append(f"frames put back from {segment.spliced_cut.name}")
            if segment.dropped_bytes:
                said.append(f"{segment.dropped_bytes} damaged bytes dropped")
            console.print(" ".join(said), soft_wrap=True, highlight=False)
        if plan.missing and not mark_lost:
            applied = [seq for seq in plan.missing if lookup(seq) is not None]
            fail(f"{plural(len(plan.missing), 'seq')} ({_ranges(plan.missing)}) cannot be restored from the journal's bytes, and the "
                 f"warehouse holds no copy of an event (only its rows: {len(applied)} of them were applied). Nothing was "
                 "written. To go on without them run `oh journal repair --mark-lost`: the warehouse keeps its rows, but "
                 "a later `oh replay --rebuild` will not reproduce them")
        if dry_run or not plan.segments:
            if dry_run:
                console.print("dry run: nothing written")
            return
        kept = apply_repair(plan, describe_lost=lookup)
        record.close()
        journal = Journal(home.journal, committed_seq=committed, lock=lock, type_names=MESSAGE_TYPES)
        faults, head = [f.describe() for f in journal.faults], journal.head_seq
        journal.close()
    finally:
        lock.release()
    if faults or head < committed:
        fail(f"the journal still does not check out after the repair: {'; '.join(faults) or f'it ends at seq {head}'}")
    lost = f"; {plural(len(plan.missing), 'seq')} marked lost" if plan.missing else ""
    console.print(f"[green]journal repaired[/]: head seq {head}, {plural(len(plan.corrected), 'frame')} restored exactly{lost}; "
                  f"the damaged originals are kept: {', '.join(p.name for p in kept) or 'none'}. Start oh with `oh up`.",
                  soft_wrap=True, highlight=False)
