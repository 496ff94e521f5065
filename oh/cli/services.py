"""`oh up | down | status`: the processes under supervisord (over its XML-RPC interface), and the ledger's health.

`oh status` knows a service is up from supervisord when it runs them (`oh up`), and from the
ledger's heartbeats otherwise (`honcho start`, or a process started by hand): a service whose
last heartbeat is recent and whose pid is alive is running. Exit 0 when every service is up and
the ledger stores events, 3 otherwise; `--json` prints the same facts as one JSON object.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

import typer
from rich.markup import escape
from rich.table import Table

from bus.home import Home
from oh.adapters import supervisor
from oh.cli.common import console, fail
from oh.domain.units import plural

if TYPE_CHECKING:
    from contracts.control import StatusReply

BEATING_SECONDS = 10.0  # a heartbeat younger than this (they come every 2 s) means the process is alive
NOT_RUNNING = 3  # `oh status` exit code when a service is down or the ledger does not store events


def _ledger_status(home: Home, timeout: float = 1.0) -> StatusReply | None:
    from bus.control_client import ControlClient, LedgerUnavailable

    client = ControlClient(home, timeout=timeout)
    try:
        return client.status() if client.answers(timeout=timeout) else None
    except LedgerUnavailable:
        return None
    finally:
        client.close()


@dataclass(frozen=True)
class ServiceState:
    """One service as `oh status` reports it."""

    service: str
    running: bool
    state: str  # supervisord's state (RUNNING, STARTING, FATAL, ...), or `running`/`not running` from heartbeats
    managed_by: str | None  # `supervisord`, `heartbeat` (honcho or by hand), or None when down
    pid: int | None
    heartbeat_age_seconds: float | None
    heartbeat_state: str | None  # idle, running, serving, ... as the process says


def _alive(pid: int | None) -> bool:
    return bool(pid) and supervisor.pid_alive(int(pid))  # type: ignore[arg-type]


def service_states(programs: dict[str, supervisor.Program], ledger: StatusReply | None, now: float) -> list[ServiceState]:
    """Every program of supervisord.conf (and any other process that heartbeats), running or not, and why."""
    beats = ledger.heartbeats if ledger else {}
    names = list(dict.fromkeys([*supervisor.program_names(), *programs, *sorted(beats)]))
    states = []
    listed = {*supervisor.program_names(), *programs}
    for name in names:
        beat = beats.get(name)
        age = now - float(beat["last_seen"]) if beat else None
        program = programs.get(name)
        if name == supervisor.LEDGER:
            beating = ledger is not None
        else:
            beating = beat is not None and age is not None and age < BEATING_SECONDS and _alive(beat.get("pid"))
        if name not in listed and not beating:
            continue  # a process of no program that stopped beating (a test harness, a one-off): not a service
        if program is not None:
            running = program.running and (beating or name != supervisor.LEDGER)
            state, managed, pid = program.state, "supervisord", program.pid or None
        else:
            running = beating
            state = "running" if beating else "not running"
            managed = "heartbeat" if beating else None
            pid = int(beat["pid"]) if beat and beating else None
        states.append(ServiceState(name, running, state, managed, pid, None if age is None else round(age, 1),
                                   beat.get("state") if beat else None))
    return states


def wait_ready(home: Home, timeout: float, only: Sequence[str] | None = None) -> list[str]:
    """Wait until the ledger answers, every worker (or those in `only`) has sent a heartbeat and supervisord, when
    it runs them, says RUNNING for each (its `startsecs` passed: what `oh status` counts as running; a forked
    service can heartbeat before that); return who is missing.

    A program supervisord gave up on (FATAL: it exits as soon as it starts) ends the wait at once.
    """
    workers = [name for name in supervisor.program_names() if name != supervisor.LEDGER and (only is None or name in only)]
    deadline = time.monotonic() + timeout
    missing = [supervisor.LEDGER, *workers]
    while time.monotonic() < deadline:
        programs = supervisor.programs(home)
        fatal = [p.name for p in programs.values() if p.state == "FATAL"]
        if fatal:
            return [f"{name} (FATAL: it exits as soon as it starts)" for name in fatal]
        status = _ledger_status(home, timeout=0.5)
        if status is not None:
            missing = [name for name in workers if name not in status.heartbeats]
            missing += [f"{name} ({program.state})" for name, program in programs.items()
                        if name in (supervisor.LEDGER, *workers) and name not in missing and not program.running]
            if not missing:
                return []
        time.sleep(0.2)
    return missing


def start_supervisord(home: Home) -> None:
    """Start supervisord (which starts every program, ledger first) unless it runs already; exit 1 if it cannot."""
    if not supervisor.is_running(home):
        result = supervisor.start(home)
        if result.returncode != 0:
            fail(f"supervisord did not start: {(result.stderr or result.stdout).strip()}")


def require_ready(home: Home, timeout: float, only: Sequence[str] | None = None) -> None:
    """`wait_ready`, ending the command (exit 1, one line naming who is missing) if some are not ready in time."""
    missing = wait_ready(home, timeout, only)
    if missing:
        fail(f"not ready after {timeout:g}s: {', '.join(missing)}; see the logs in {home.logs}")


def up(timeout: float = typer.Option(60.0, help="Seconds to wait for every service to be ready.")) -> None:
    """Start every service under supervisord (ledger first) and wait until all are ready."""
    home = Home.from_env().ensure()
    start_supervisord(home)
    require_ready(home, timeout)
    ledger = _ledger_status(home)
    if ledger is not None and (ledger.fault or ledger.stalled):
        fail(f"the services are up but the ledger is not storing events: {ledger.fault or ledger.stalled}")
    console.print(f"[green]oh is up[/] (home {home.root}); `oh status` shows each service", soft_wrap=True)


def down(timeout: float = typer.Option(60.0, help="Seconds to wait for a clean shutdown.")) -> None:
    """Stop every service cleanly (the workers at once, then the ledger) and supervisord itself."""
    home = Home.from_env()
    if not supervisor.is_running(home):
        console.print("oh is not running")
        return
    try:
        supervisor.stop_all(home, timeout)
    except supervisor.SupervisorError as exc:
        fail(str(exc))
    console.print("oh is down")


def status(as_json: bool = typer.Option(False, "--json", help="One JSON object instead of the table.")) -> None:
    """Each service's state (supervisord's, or its heartbeats under honcho), and the ledger's journal and warehouse."""
    home = Home.from_env()
    programs = supervisor.programs(home)
    ledger = _ledger_status(home)
    now = time.time()
    services = service_states(programs, ledger, now)
    problem = (ledger.fault or ledger.stalled) if ledger else None
    all_up = ledger is not None and all(s.running for s in services) and not problem
    if as_json:
        _print_json(home, programs, ledger, services, all_up, now)
    else:
        _print_table(home, programs, ledger, services, now)
    if not all_up:
        raise typer.Exit(NOT_RUNNING)


def _print_json(home: Home, programs: dict[str, supervisor.Program], ledger: StatusReply | None,
                services: list[ServiceState], all_up: bool, now: float) -> None:
    import msgspec

    report: dict[str, Any] = {
        "home": str(home.root),
        "all_up": all_up,
        "supervisord": {"running": bool(programs), "pid": supervisor.supervisord_pid(home) if programs else None},
        "services": [asdict(s) for s in services],
        "ledger": {"answering": False} if ledger is None else {
            "answering": True, "head_seq": ledger.head_seq, "applied_seq": ledger.applied_seq, "fsync": ledger.fsync,
            "uptime_seconds": round(now - ledger.started_at, 1), "counters": dict(sorted(ledger.counters.items())),
            "fault": ledger.fault, "stalled": ledger.stalled,
        },
    }
    sys.stdout.write(msgspec.json.format(msgspec.json.encode(report), indent=2).decode() + "\n")


def _print_table(home: Home, programs: dict[str, supervisor.Program], ledger: StatusReply | None,
                 services: list[ServiceState], now: float) -> None:
    table = Table(title=f"oh services ({home.root})")
    for column in ("service", "state", "managed by", "pid", "last heartbeat"):
        table.add_column(column, no_wrap=True)
    for s in services:
        if s.service == supervisor.LEDGER:
            heard = "answering" if ledger else "not answering"
        elif s.heartbeat_age_seconds is None:
            heard = "never"
        else:
            heard = f"{s.heartbeat_age_seconds:.1f}s ago" + (f" ({s.heartbeat_state})" if s.heartbeat_state else "")
        state = s.state if s.running else f"[red]{escape(s.state)}[/]"
        table.add_row(s.service, state, s.managed_by or "", str(s.pid or ""), heard)
    console.print(table)
    if not programs and any(s.running for s in services):
        console.print("supervisord is not running these: they were started another way (honcho, by hand); "
                      "their state comes from their heartbeats", soft_wrap=True)
    if ledger:
        counters = ", ".join(f"{k}={v}" for k, v in sorted(ledger.counters.items())) or "none"
        console.print(
            f"journal head seq {ledger.head_seq:,}, warehouse applied seq {ledger.applied_seq:,}, "
            f"fsync {ledger.fsync}, up {now - ledger.started_at:.0f}s; counters: {counters}", soft_wrap=True,
        )
        if ledger.tcp:
            c = ledger.counters
            refused = c.get("tcp_refused_key", 0) + c.get("tcp_refused_handshake", 0)
            console.print(
                f"bus also on {ledger.tcp} (CURVE): {c.get('tcp_authenticated', 0)} connections authenticated, "
                f"{refused} refused ({c.get('tcp_refused_key', 0)} unknown key, "
                f"{c.get('tcp_refused_handshake', 0)} not a CURVE client of this ledger)",
                soft_wrap=True, highlight=False,
            )
        for problem, style in ((ledger.fault, "bold red"), (ledger.stalled, "bold yellow")):
            if problem:
                console.print(f"[{style}]ledger not storing events:[/] {escape(problem)}", soft_wrap=True, highlight=False)
    down = [s.service for s in services if not s.running]
    if down:
        console.print(f"{plural(len(down), 'service')} not running ({', '.join(down)}): start them with `oh up`",
                      soft_wrap=True)
