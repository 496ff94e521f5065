"""The scheduler worker: runs job `daily` (services/daily.py) and emits it on a cron schedule.

A timer thread reads `$OH_HOME/config/scheduler.toml` (oh/adapters/schedule.py; re-read every loop, so an
edit needs no restart) and, at each fire time, sends a RunDaily command with
`triggered_by = scheduler` through the ledger. The command id derives from the fire time, so a
scheduler restarted right after firing sends a duplicate the ledger drops. A fire time missed
while the scheduler was down is not made up: the planner in `oh db health` shows the gap.

Its worker subscribes to its command's topic and the head tick only, as every worker that reacts to no stream of
events does (services/runtime.py): while it runs a daily its loop reads nothing, and subscribed to everything its
socket queued every payload published meanwhile (1.1 GB at 5,000 symbols).
"""

from __future__ import annotations

import logging
import threading
import uuid
from datetime import UTC, datetime

from bus.home import Home
from bus.producer import Producer
from contracts import RunDaily
from oh.adapters.schedule import DailySchedule, ScheduleError, load_schedule
from oh.domain import calendar
from services import daily, logs
from services.runtime import Worker

log = logging.getLogger(__name__)

_ID_NAMESPACE = uuid.UUID("c5a0e2f4-7d1b-4e39-8f62-1a9b3c4d5e6f")
RELOAD_SECONDS = 30.0


def daily_command(schedule: DailySchedule, fire: datetime) -> RunDaily:
    """The command the scheduler sends at `fire`: its id is a function of the fire time."""
    return RunDaily(
        id=uuid.uuid5(_ID_NAMESPACE, fire.astimezone(UTC).isoformat()).hex, triggered_by="scheduler",
        symbols=list(schedule.symbols), watchlist=schedule.watchlist, provider=schedule.provider,
        fallback=schedule.fallback,
    )


class DailyTimer(threading.Thread):
    """Sends RunDaily at each fire time of the configured schedule, from its own producer socket."""

    def __init__(self, home: Home) -> None:
        super().__init__(name="daily-timer", daemon=True)
        self.home = home
        self.path = home.config / "scheduler.toml"
        self.stopped = threading.Event()

    def _schedule(self) -> DailySchedule | None:
        try:
            return load_schedule(self.path)
        except ScheduleError as exc:
            log.error("%s; nothing is scheduled until it is fixed", exc)
            return None

    def run(self) -> None:
        producer = Producer(self.home)
        try:
            while not self.stopped.is_set():
                schedule = self._schedule()
                if schedule is None or not schedule.enabled:
                    self.stopped.wait(RELOAD_SECONDS)
                    continue
                now = datetime.now(UTC)
                fire = schedule.next_fire(now)
                wait = (fire - now).total_seconds()
                if wait > RELOAD_SECONDS:  # look at the file again before then
                    self.stopped.wait(RELOAD_SECONDS)
                    continue
                log.info("daily fires at %s", fire.isoformat())
                if self.stopped.wait(max(wait, 0.0)):
                    break
                producer.send(daily_command(schedule, fire))
                try:
                    producer.flush(timeout=30)
                except TimeoutError:
                    log.warning("the ledger has not acknowledged the scheduled daily yet; it is resent when it answers")
        finally:
            producer.close()


HANDLERS = {RunDaily: daily.daily}

if __name__ == "__main__":
    calendar.all_sessions()
    home = Home.from_env().ensure()
    logs.configure("scheduler", home)
    timer = DailyTimer(home)
    timer.start()
    try:
        Worker("scheduler", home, HANDLERS).serve()
    finally:
        timer.stopped.set()
