"""`oh replay`: rebuild the warehouse from the journal, or recompute a date range from journaled events."""

from __future__ import annotations

import time
from datetime import date

import typer

from bus.home import Home
from oh.cli.common import console, fail
from oh.domain.units import plural

CATCH_UP_PAGE = 2000


def replay(
    rebuild: bool = typer.Option(False, "--rebuild", help="Rebuild every DuckDB table from the journal."),
    since: str | None = typer.Option(None, help="First session to recompute, YYYY-MM-DD (with --until)."),
    until: str | None = typer.Option(None, help="Last session to recompute, YYYY-MM-DD (inclusive)."),
    event_type: str = typer.Option("ChainSnapshotted", "--type",
                                   help="Replay from: ChainSnapshotted (flow on), FlowComputed (derived on), "
                                        "DerivedComputed (briefings)."),
    symbols: str | None = typer.Option(None, help="Only these underlyings (comma-separated)."),
    wait: bool = typer.Option(False, "--wait", help="Wait until every recomputed chain has finished."),
    timeout: float = typer.Option(7200.0, help="With --wait, give up on a step after this many seconds."),
) -> None:
    """Rebuild the warehouse from the journal (--rebuild), or recompute flow, derived metrics and briefings
    for past sessions from the journaled events (--since/--until), without refetching anything."""
    if rebuild and (since or until):
        fail("give either --rebuild or --since/--until, not both", 2)
    if rebuild:
        _rebuild()
        return
    if not (since and until):
        fail("give --rebuild, or a range with --since and --until", 2)
    from oh.domain.replay import REPLAYABLE

    if event_type not in REPLAYABLE:
        fail(f"--type {event_type!r} cannot be replayed: choose one of {', '.join(REPLAYABLE)}", 2)
    try:
        first, last = date.fromisoformat(since), date.fromisoformat(until)
    except ValueError:
        fail(f"--since {since!r} and --until {until!r} must be dates in YYYY-MM-DD form", 2)
    if first > last:
        fail(f"--since {first} is after --until {last}", 2)
    chosen = None
    if symbols:
        from oh.domain.symbols import BadSymbol, parse_symbols

        try:
            chosen = set(parse_symbols(symbols))
        except BadSymbol as exc:
            fail(str(exc), 2)
    _recompute(Home.from_env(), event_type, first, last, chosen, wait, timeout)


def _recompute(home: Home, event_type: str, first: date, last: date, symbols: set[str] | None, wait: bool,
               timeout: float) -> None:
    from bus.control_client import ControlClient, LedgerUnavailable
    from bus.producer import Producer
    from oh.domain.replay import replay_commands, sessions_covered

    client = ControlClient(home)
    try:
        if not client.answers():
            fail("the ledger is not running: a ranged replay goes through it (`oh up`)")
        payloads: list[bytes] = []
        seq = 1
        while True:
            header, frames = client.catch_up(seq, types=[event_type], max_frames=CATCH_UP_PAGE)
            payloads += [payload for _, _, payload in frames]
            if header.last_seq >= header.head_seq or header.last_seq < seq:
                break
            seq = header.last_seq + 1
        covered = sessions_covered(payloads, first, last, symbols)
        if not covered:
            fail(f"no journaled {event_type} between {first} and {last}"
                 f"{' for ' + ', '.join(sorted(symbols)) if symbols else ''}: nothing to recompute", 1)
        commands = replay_commands(event_type, covered)
        producer = Producer(home)
        try:
            producer.send_many(commands)
            producer.flush(timeout=30.0)
        except TimeoutError:
            fail("the ledger did not acknowledge the replay commands within 30s (`oh status`)")
        finally:
            producer.close()
        symbol_count = len({s for v in covered.values() for s in v})
        console.print(f"replaying {len(payloads):,} journaled {event_type} {'event' if len(payloads) == 1 else 'events'}: "
                      f"{plural(len(covered), 'session')} from {min(covered)} to {max(covered)}, "
                      f"{plural(symbol_count, 'symbol')}, in {plural(len(commands), 'command')}", soft_wrap=True)
        if wait:
            try:
                _wait_all(client, commands, len(covered), timeout)
            except LedgerUnavailable:
                fail("lost the ledger while waiting; the replay goes on when it is back (`oh db health`)")
    finally:
        client.close()


def _wait_all(client: object, commands: list, sessions: int, timeout: float) -> None:
    """Follow each command's chain to its end and say how each step finished; exit 1 if any failed."""
    from services.pipeline import follow_chain, step_of

    failed = []
    started = time.monotonic()
    with console.status("recomputing ..."):
        for command in commands:
            outcomes = follow_chain(client.query, step_of(command), timeout, timeout)  # type: ignore[attr-defined]
            failed += [f"{step.job} {status}" for step, status in outcomes.items() if status != "success"]
    if failed:
        fail(f"{plural(len(failed), 'recomputed step')} did not succeed: {', '.join(failed[:5])}")
    console.print(f"[green]replay done[/]: {plural(sessions, 'session')} recomputed in {time.monotonic() - started:.1f}s")


def _rebuild() -> None:
    """Through the running ledger, else offline under the journal's writer lock (never beside a writing ledger).

    Either way the warehouse is never rebuilt from a damaged journal, or one shorter than what it committed."""
    from bus.control_client import ControlClient, QueryError

    home = Home.from_env()
    client = ControlClient(home)
    try:
        if client.answers():
            try:
                reply = client.rebuild()
            except QueryError as exc:
                fail(f"not rebuilt: {exc}")
            console.print(f"rebuilt by the running ledger: {plural(reply.events, 'event')} in {reply.seconds:.2f}s")
            return
    finally:
        client.close()
    from services.ledger.offline import OfflineError, rebuild

    try:
        events, seconds = rebuild(home)
    except OfflineError as exc:
        fail(str(exc))
    console.print(f"rebuilt {home.warehouse} from {plural(events, 'event')} in {seconds:.2f}s")
