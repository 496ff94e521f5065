"""The options_bars worker: job `ingest_options_bars` (asset `options_bars`).

A worker of its own, not the ingest worker's second job: a daily sends candles and bars at once, and
the bars (the longer of the two at width) then run beside the candles and the snapshots instead of
after the candles, so they are in before flow needs the ledger.

For each symbol and each NYSE session in the range, the provider lists the contracts trading that
day that expire within `max_dte` days and returns their daily bars; they go out as one
OptionBarsIngested event per symbol and session (partition `SYMBOL|DATE`). A symbol that fails is
recorded as a failed asset and the others still land.
"""

from __future__ import annotations

from datetime import date, datetime

import pyarrow as pa

from bus.arrow_ipc import to_ipc
from contracts import IngestOptionsBars, OptionBarsIngested, utc_now
from contracts.catalog import job_of
from oh.adapters.registry import get_provider, served_by
from oh.domain import calendar
from services.runs import RunContext, each_symbol_session
from services.runtime import main

ASSET = job_of(IngestOptionsBars).asset_key


def ingest_options_bars(command: IngestOptionsBars, run: RunContext) -> None:
    """Emit one day of bars per symbol and session; fail the run (naming them) if any partition failed."""
    provider = get_provider(command.provider, command.fallback)
    days = [day.astype(object) for day in calendar.sessions(command.start, command.end)]
    if not days:
        raise ValueError(f"no NYSE session between {command.start} and {command.end}")

    def fetch(symbol: str, day: date) -> pa.Table:
        return provider.option_bars(symbol, provider.option_contracts(symbol, day, command.max_dte), day, day)

    def event(symbol: str, day: date, bars: pa.Table, started: datetime) -> OptionBarsIngested:
        return OptionBarsIngested(
            run_id=run.run_id, symbol=symbol, provider=served_by(bars, provider), bar_date=day,
            row_count=bars.num_rows, rows=to_ipc(bars), started_at=started, ended_at=utc_now(),
        )

    each_symbol_session(run, command.symbols, days, ASSET, fetch, event, "bar days")


HANDLERS = {IngestOptionsBars: ingest_options_bars}

if __name__ == "__main__":
    calendar.all_sessions()  # load the exchange calendar before the first command, not during it
    main("options_bars", HANDLERS)
