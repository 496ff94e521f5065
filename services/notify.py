"""The notify worker: runs the user's notification hook on a failed run or a failed check, and journals it.

It reacts to committed RunFinished (status `failed` or `abandoned`, for the jobs notify.toml names:
by default the daily run) and AssetChecked (a result `fail` of a severity notify.toml names: by
default `error`), runs the hook (oh/adapters/notify.py) and sends NotificationSent with its
outcome, which the ledger projects into `meta.notifications`. It is a process of its own, so a slow
or hanging hook (killed after `timeout_seconds`) never holds up a worker of the pipeline, and a hook
that fails is recorded (`failed`, `timeout`), never fatal. A malformed notify.toml is recorded as
`config_error` once per trigger, so the trader sees why no notification came.

Once per trigger: the event's id derives from the trigger (the failed run, or the run whose data
failed a check: one notification per run however many partitions fail), so a redelivered trigger
is dropped by the ledger, and a trigger this process already notified, or recorded in
`meta.notifications`, is not run again (a crash between the hook and the record can run it twice:
at least once). A trigger older than
`max_age_hours` when first seen (a notify worker started late over an old journal) is skipped.
notify.toml is read at each trigger, so an edit needs no restart.
"""

from __future__ import annotations

import logging
import uuid
from datetime import timedelta

from contracts import AssetChecked, Event, NotificationSent, RunFinished, utc_now
from contracts.events import RUN_FAILED
from oh.adapters.notify import HookOutcome, Notice, NotifyConfigError, NotifySettings, load_settings, run_hook
from oh.domain.units import plural
from services.runs import Bus
from services.runtime import main

log = logging.getLogger(__name__)

_ID_NAMESPACE = uuid.UUID("6f3b8e2a-94c1-4d7e-b5a0-2c8d1e9f4a76")
_notified: set[str] = set()  # ids sent by this process: its NotificationSent may not be in the warehouse yet


def notification_id(trigger: str, key: str) -> str:
    """The NotificationSent id of one trigger: the same trigger always gives the same id."""
    return uuid.uuid5(_ID_NAMESPACE, f"{trigger}:{key}").hex


def _settings(bus: Bus) -> NotifySettings | NotifyConfigError:
    try:
        return load_settings(bus.home.config)
    except NotifyConfigError as exc:
        return exc


def _recorded(bus: Bus, event_id: str) -> bool:
    return bool(bus.query("SELECT count(*) FROM meta.notifications WHERE notification_id = ?", [event_id])
                .column(0)[0].as_py())


def _send(bus: Bus, trigger: Event, kind: str, key: str, subject: str, notice: Notice,
          settings: NotifySettings | NotifyConfigError) -> None:
    """Run the hook for `notice` once per (kind, key), and journal what happened."""
    age = utc_now() - trigger.ts
    limit = settings.max_age_hours if isinstance(settings, NotifySettings) else 24.0
    if age > timedelta(hours=limit):
        log.info("not notifying %s %s: it happened %s ago (max_age_hours %g)", kind, key, age, limit)
        return
    event_id = notification_id(kind, key)
    if event_id in _notified or _recorded(bus, event_id):
        return
    if isinstance(settings, NotifyConfigError):
        now = utc_now()
        outcome = HookOutcome("config_error", None, None, str(settings)[:300], now, now)  # type: ignore[arg-type]
    else:
        outcome = run_hook(settings, notice)
    log.info("notification %s for %s %s: %s%s", outcome.status, kind, key, outcome.program or "",
             f" ({outcome.error})" if outcome.error else "")
    bus.send([NotificationSent(
        id=event_id, trigger=kind, trigger_key=key, run_id=notice.run_id or None, subject=subject,
        partition_key=notice.partition or None, title=notice.title, message=notice.message, program=outcome.program,
        status=outcome.status, exit_code=outcome.exit_code, error=outcome.error, started_at=outcome.started_at,
        ended_at=outcome.ended_at,
    )])
    bus.flush()
    _notified.add(event_id)


def _job_of(event: RunFinished, bus: Bus) -> str | None:
    if event.job_name is not None:
        return event.job_name
    rows = bus.query("SELECT job_name FROM meta.ingestion_runs WHERE run_id = ?", [event.run_id]).column(0).to_pylist()
    return rows[0] if rows else None  # a RunFinished journaled before it carried its job


def on_run_finished(event: RunFinished, bus: Bus) -> None:
    """A failed or abandoned run of a job notify.toml names: one notification."""
    if event.status not in RUN_FAILED:
        return
    settings = _settings(bus)
    if isinstance(settings, NotifySettings) and not settings.enabled:
        return
    job = _job_of(event, bus)
    if isinstance(settings, NotifySettings) and not settings.notifies_run(job):
        return
    reason = f"{event.error_type}: {event.error_message}" if event.error_type else (event.error_message or "no reason given")
    notice = Notice("run_failed", f"oh: {job or 'a'} run {event.status}", reason, job=job or "", run_id=event.run_id)
    _send(bus, event, "run_failed", event.run_id, job or "unknown job", notice, settings)


def on_checked(event: AssetChecked, bus: Bus) -> None:
    """Failed checks (of the severities notify.toml names) in the data of a run: one notification per run."""
    failed = [r for r in event.results if r.status == "fail"]
    if not failed:
        return
    settings = _settings(bus)
    if isinstance(settings, NotifySettings):
        failed = [r for r in failed if settings.notifies_check(r.severity)]
        if not failed:
            return
    names = sorted({r.check_name for r in failed})
    where = f"{event.asset_key} {event.partition_key}" if event.partition_key else event.asset_key
    message = f"{where}: " + "; ".join(f"{r.check_name} ({r.severity}): {r.message}" for r in failed[:3])
    if len(failed) > 3:
        message += f"; and {len(failed) - 3} more"
    notice = Notice("check_failed", f"oh: {plural(len(names), 'check')} failed on {event.asset_key}", message,
                    run_id=event.run_id or "", partition=event.partition_key or "")
    _send(bus, event, "check_failed", event.run_id or event.id, ", ".join(names), notice, settings)


HANDLERS: dict = {}  # type: ignore[type-arg]
REACTIONS = {RunFinished: on_run_finished, AssetChecked: on_checked}

if __name__ == "__main__":
    main("notify", HANDLERS, REACTIONS)
