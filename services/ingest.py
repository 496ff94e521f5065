"""The ingest worker: job `ingest_candles` (asset `candles_daily`); option bars have a worker of their own
(services/options_bars.py), so a daily's bars run beside its candles from the start.

One run per command; per symbol, the provider's candles go out as one CandlesIngested event per
chunk of at most CHUNK_ROWS rows. A symbol that fails is recorded as a failed asset and the
others still land; the run then finishes `failed`, naming the symbols.
"""

from __future__ import annotations

from bus.arrow_ipc import to_ipc
from contracts import CandlesIngested, IngestCandles, utc_now
from contracts.catalog import job_of
from oh.adapters.registry import get_provider, served_by
from services.runs import RunContext, raise_if_partitions_failed
from services.runtime import main

CHUNK_ROWS = 5000
ASSET = job_of(IngestCandles).asset_key


def ingest_candles(command: IngestCandles, run: RunContext) -> None:
    """Fetch and emit candles for every symbol of the command; fail the run if any symbol failed."""
    provider = get_provider(command.provider, command.fallback)
    failures: list[tuple[str, BaseException]] = []
    for symbol in command.symbols:
        run.check_stop()
        started = utc_now()
        try:
            table = provider.daily_candles(symbol, command.start, command.end)
        except Exception as exc:  # one symbol's failure never stops the others
            run.asset_failed(ASSET, symbol, exc, started)
            failures.append((symbol, exc))
            continue
        offsets = range(0, max(table.num_rows, 1), CHUNK_ROWS)
        for offset in offsets:
            chunk = table.slice(offset, CHUNK_ROWS)
            dates = chunk.column("date")
            run.emit(
                CandlesIngested(
                    run_id=run.run_id, symbol=symbol, provider=served_by(table, provider),
                    first_date=dates[0].as_py() if chunk.num_rows else command.start,
                    last_date=dates[-1].as_py() if chunk.num_rows else command.end,
                    row_count=chunk.num_rows, rows=to_ipc(chunk), started_at=started, ended_at=utc_now(),
                )
            )
    raise_if_partitions_failed(failures, len(command.symbols), "symbols")


HANDLERS = {IngestCandles: ingest_candles}

if __name__ == "__main__":
    from oh.domain import calendar

    calendar.all_sessions()  # load the exchange calendar before the first command, not during it
    main("ingest", HANDLERS)
