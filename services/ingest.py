"""The ingest worker: job `ingest_candles` (asset `candles_daily`); option bars have a worker of their own
(services/options_bars.py), so a daily's bars run beside its candles from the start.

One run per command; per symbol, the provider's candles go out as one CandlesIngested event per
chunk of at most CHUNK_ROWS rows. A symbol that fails is recorded as a failed asset and the
others still land; the run then finishes `failed`, naming the symbols.

An `incremental` command (the `daily` job's) reads what is stored of every symbol in [start, end] in one
query through the run, then asks the provider per symbol only for the sessions from OVERLAP_SESSIONS before
the newest stored one up to `end`; the whole window when the symbol has nothing stored there, a hole in it,
or when the provider's overlap differs from the stored rows (a split, a dividend adjustment, a revision:
oh.domain.candle_window says what differs). What goes out is what was fetched (the overlap is re-written,
unchanged): each symbol is still one asset of the run, its rows counted as emitted. Without `incremental`
(`oh emit ingest-candles`, Dagster) every symbol's whole range is fetched, as before.
"""

from __future__ import annotations

import logging
from collections import Counter

import pyarrow as pa

from bus.arrow_ipc import to_ipc
from contracts import CandlesIngested, IngestCandles, utc_now
from contracts.catalog import job_of
from oh.adapters.base import MarketDataProvider
from oh.adapters.registry import get_provider, served_by
from oh.domain import calendar, candle_window
from oh.domain.candle_window import Stored
from oh.domain.checks import GAP_WINDOW
from services.runs import RunContext, raise_if_partitions_failed
from services.runtime import main

log = logging.getLogger(__name__)

CHUNK_ROWS = 5000
ASSET = job_of(IngestCandles).asset_key
# An incremental fetch re-reads this many stored sessions: the gap check's window (oh/domain/checks.py), so
# each delivery holds every session that check looks at and it answers from the delivery without reading the
# table (with 5 sessions it read the table twice per symbol: 10,000 queries on the ledger for 5,000 symbols, which
# made the leg 4x the CPU of a full fetch: bench/README.md, candles_incremental).
OVERLAP_SESSIONS = GAP_WINDOW
# Per symbol, its number of stored sessions in [start, end] and its newest OVERLAP_SESSIONS rows there (params:
# start, end, symbols, the calendar days those rows can span, OVERLAP_SESSIONS). Only the rows near each symbol's
# newest are numbered: a quarter of the ledger's CPU of numbering the whole window (0.3 s against 1.4M rows).
STORED_SQL = f"""
WITH held AS (
  SELECT symbol, count(*) AS sessions, max(date) AS newest FROM candles_daily
  WHERE date BETWEEN ? AND ? AND symbol IN (SELECT unnest(?::VARCHAR[])) GROUP BY symbol)
SELECT {", ".join("c." + name for name in candle_window.STORED_COLUMNS)}, held.sessions
FROM candles_daily c JOIN held ON c.symbol = held.symbol AND c.date BETWEEN held.newest - ?::INTEGER AND held.newest
QUALIFY row_number() OVER (PARTITION BY c.symbol ORDER BY c.date DESC) <= ?
ORDER BY c.symbol, c.date"""


# Symbols per bulk read: 300,000 rows at most, well inside the ledger's answer limits (OH_QUERY_MAX_ROWS, 1M).
READ_SYMBOLS = 10_000


def _stored(run: RunContext, command: IngestCandles) -> dict[str, Stored]:
    """What is stored of each of the command's symbols in its window: one read for every READ_SYMBOLS symbols."""
    span = candle_window.span_days(OVERLAP_SESSIONS)
    stored: dict[str, Stored] = {}
    for at in range(0, len(command.symbols), READ_SYMBOLS):
        symbols = command.symbols[at : at + READ_SYMBOLS]
        stored.update(candle_window.stored_by_symbol(
            run.query(STORED_SQL, [command.start, command.end, symbols, span, OVERLAP_SESSIONS])))
    return stored


def _fetch(provider: MarketDataProvider, symbol: str, command: IngestCandles, stored: Stored | None) -> tuple[pa.Table, str]:
    """The candles to emit for `symbol`, and which fetch gave them: `full` (not incremental), `tail`, or why
    the whole window was fetched (`new`, `hole`, `differs`)."""
    if not command.incremental:
        return provider.daily_candles(symbol, command.start, command.end), "full"
    first, whole = candle_window.fetch_from(stored, command.start, command.end, OVERLAP_SESSIONS)
    if whole is None:
        assert stored is not None
        table = provider.daily_candles(symbol, first, command.end)
        why = candle_window.overlap_difference(table, served_by(table, provider), stored)
        if why is None:
            return table, "tail"
        log.info("candles of %s: the provider's overlap differs from the stored rows (%s): fetching [%s, %s]",
                 symbol, why, command.start, command.end)
        whole = "differs"
    return provider.daily_candles(symbol, command.start, command.end), whole


def ingest_candles(command: IngestCandles, run: RunContext) -> None:
    """Fetch and emit candles for every symbol of the command; fail the run if any symbol failed."""
    provider = get_provider(command.provider, command.fallback)
    stored = _stored(run, command) if command.incremental else {}
    fetches: Counter[str] = Counter()
    failures: list[tuple[str, BaseException]] = []
    for symbol in command.symbols:
        run.check_stop()
        started = utc_now()
        try:
            table, fetch = _fetch(provider, symbol, command, stored.get(symbol))
        except Exception as exc:  # one symbol's failure never stops the others
            run.asset_failed(ASSET, symbol, exc, started)
            failures.append((symbol, exc))
            continue
        fetches[fetch] += 1
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
    if command.incremental:
        log.info("ingest_candles run %s: %s", run.run_id, ", ".join(f"{n} {kind}" for kind, n in sorted(fetches.items())))
    raise_if_partitions_failed(failures, len(command.symbols), "symbols")


HANDLERS = {IngestCandles: ingest_candles}

if __name__ == "__main__":
    calendar.all_sessions()  # load the exchange calendar before the first command, not during it
    main("ingest", HANDLERS)
