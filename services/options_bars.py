"""Job `ingest_options_bars` (asset `options_bars`), run by the ingest worker.

For each symbol and each NYSE session in the range, the provider lists the contracts trading that
day that expire within `max_dte` days and returns their daily bars; they go out as one
OptionBarsIngested event per symbol and session (partition `SYMBOL|DATE`). A symbol that fails is
recorded as a failed asset and the others still land.
"""

from __future__ import annotations

from bus.arrow_ipc import to_ipc
from contracts import IngestOptionsBars, OptionBarsIngested, utc_now
from oh import calendar
from oh.providers import get_provider, served_by
from services.runtime import RunContext, raise_if_partitions_failed

JOB = "ingest_options_bars"
ASSET = "options_bars"


def ingest_options_bars(command: IngestOptionsBars, run: RunContext) -> None:
    """Emit one day of bars per symbol and session; fail the run (naming them) if any partition failed."""
    provider = get_provider(command.provider, command.fallback)
    days = [day.astype(object) for day in calendar.sessions(command.start, command.end)]
    if not days:
        raise ValueError(f"no NYSE session between {command.start} and {command.end}")
    failures: list[tuple[str, BaseException]] = []
    for symbol in command.symbols:
        for day in days:
            run.check_stop()
            started = utc_now()
            partition = f"{symbol}|{day}"
            try:
                contracts = provider.option_contracts(symbol, day, command.max_dte)
                bars = provider.option_bars(symbol, contracts, day, day)
            except Exception as exc:  # one partition's failure never stops the others
                run.asset_failed(ASSET, partition, exc, started)
                failures.append((partition, exc))
                continue
            run.emit(
                OptionBarsIngested(
                    run_id=run.run_id, symbol=symbol, provider=served_by(bars, provider), bar_date=day,
                    row_count=bars.num_rows, rows=to_ipc(bars), started_at=started, ended_at=utc_now(),
                )
            )
    raise_if_partitions_failed(failures, len(command.symbols) * len(days), "bar days")


HANDLERS = {IngestOptionsBars: (JOB, ingest_options_bars)}
