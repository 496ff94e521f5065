"""The alpaca provider: alpaca-py's stock, option and trading clients behind MarketDataProvider.

- daily candles: StockHistoricalDataClient.get_stock_bars (/v2/stocks/bars), 1Day bars, split-
  adjusted (as Yahoo's close is), on the configured stock feed (sip or iex);
- option chain: OptionHistoricalDataClient.get_option_chain (/v1beta1/options/snapshots/{symbol}) on
  the configured option feed (indicative or opra) for quotes, last trade, day volume, IV and Greeks;
  open interest from the trading API's contract list; spot from the session's daily stock bar;
- contract lists: TradingClient.get_option_contracts (/v2/options/contracts), active and expired;
- option bars: OptionHistoricalDataClient.get_option_bars (/v1beta1/options/bars), 100 contracts a call.

Every client answers raw JSON (raw_data=True) that alpaca_rows converts; alpaca-py follows
next_page_token for market data, this module for the contract list. Keys come from
oh.adapters.settings; a missing pair fails when the provider is built, before any request.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from datetime import date, datetime, timedelta
from typing import Any, TypeVar

import pyarrow as pa

from oh.adapters import tables
from oh.adapters.alpaca import rows as alpaca_rows
from oh.adapters.alpaca.http import harden, translate
from oh.adapters.base import ProviderError
from oh.adapters.errors import MissingCredentials, SnapshotNotAvailable
from oh.adapters.settings import DATA_URL, ProviderSettings, load_settings

log = logging.getLogger(__name__)
T = TypeVar("T")
BARS_PER_CALL = 100  # contracts per /v1beta1/options/bars request (Alpaca's limit on `symbols`)
CONTRACTS_PAGE = 10_000  # contracts per /v2/options/contracts page (Alpaca's maximum)
MAX_CONTRACT_PAGES = 1_000  # a guard against a server that never stops paging


def _ny_midnight(day: date) -> datetime:
    """Midnight in New York on `day`: the timestamp Alpaca stamps that session's daily bar with."""
    return datetime(day.year, day.month, day.day, tzinfo=tables.NEW_YORK)


class AlpacaProvider:
    """Market data from Alpaca through alpaca-py (see the module docstring for the endpoints)."""

    name = "alpaca"

    def __init__(self, settings: ProviderSettings | None = None) -> None:
        from alpaca.data.historical.option import OptionHistoricalDataClient
        from alpaca.data.historical.stock import StockHistoricalDataClient
        from alpaca.trading.client import TradingClient

        self.settings = settings or load_settings()
        alpaca = self.settings.alpaca
        if not alpaca.has_credentials:
            raise MissingCredentials(
                "alpaca: no credentials: set APCA_API_KEY_ID and APCA_API_SECRET_KEY or write "
                f"{alpaca.env_file} (see docs/providers.md)"
            )
        keys = {"api_key": alpaca.key_id, "secret_key": alpaca.secret_key, "raw_data": True}
        data_url = None if alpaca.data_url == DATA_URL else alpaca.data_url
        custom = alpaca.environment == "custom"
        policy = self.settings.retry
        self._stocks = harden(StockHistoricalDataClient(url_override=data_url, **keys), policy)
        self._options = harden(OptionHistoricalDataClient(url_override=data_url, **keys), policy)
        self._trading = harden(TradingClient(paper=alpaca.environment != "live",
                                             url_override=alpaca.trading_url if custom else None, **keys), policy)

    @contextmanager
    def _vendor(self, what: str, symbol: str, feed: tuple[str, str] | None = None) -> Iterator[None]:
        """Run alpaca-py calls, turning its failures into ProviderErrors with redacted messages."""
        try:
            yield
        except Exception as exc:
            error = translate(exc, self.settings, what, symbol, feed)
            if error is None or error is exc:
                raise
            raise error from None  # the SDK's exception text is not shown: it is summarised, redacted

    def _call(self, what: str, symbol: str, fetch: Callable[[], T], feed: tuple[str, str] | None = None) -> T:
        with self._vendor(what, symbol, feed):
            return fetch()

    def _require_asset(self, symbol: str) -> None:
        """Raise UnknownSymbol unless Alpaca lists `symbol` as an asset (asked only when data came back empty)."""
        self._call("the asset lookup", symbol, lambda: self._trading.get_asset(symbol))

    def _stock_bars(self, symbol: str, start: date, end: date) -> Mapping[str, Any]:
        from alpaca.data.enums import Adjustment, DataFeed
        from alpaca.data.requests import StockBarsRequest
        from alpaca.data.timeframe import TimeFrame

        feed = self.settings.alpaca.stock_feed
        request = StockBarsRequest(symbol_or_symbols=symbol, timeframe=TimeFrame.Day, start=_ny_midnight(start),
                                   end=_ny_midnight(end), adjustment=Adjustment.SPLIT, feed=DataFeed(feed))
        return self._call("daily stock bars", symbol, lambda: self._stocks.get_stock_bars(request) or {},
                          ("stock", feed))

    def daily_candles(self, symbol: str, start: date, end: date) -> pa.Table:
        """Split-adjusted daily candles of `symbol` on each closed session in [start, end] (rows.CANDLES)."""
        tables.require_closed(self.name, symbol, start, end)
        bars = self._stock_bars(symbol, start, end)
        if not bars.get(symbol):
            self._require_asset(symbol)
        return alpaca_rows.candles(symbol, bars, start, end)

    def _contracts(self, symbol: str, after: date, until: date | None, statuses: tuple[str, ...]) -> list[dict]:
        """The trading API's contract list for `symbol` expiring in (after, until], every page."""
        from alpaca.trading.enums import AssetStatus
        from alpaca.trading.requests import GetOptionContractsRequest

        found: list[dict] = []
        for status in statuses:
            token: str | None = None
            for _ in range(MAX_CONTRACT_PAGES):
                request = GetOptionContractsRequest(
                    underlying_symbols=[symbol], status=AssetStatus(status), limit=CONTRACTS_PAGE, page_token=token,
                    expiration_date_gte=after + timedelta(days=1), expiration_date_lte=until,
                )
                page = self._call("the option contract list", symbol,
                                  lambda r=request: self._trading.get_option_contracts(r)) or {}
                found.extend(page.get("option_contracts") or [])
                token = page.get("next_page_token")
                if not token:
                    break
            else:
                raise ProviderError(f"alpaca: the contract list of {symbol} did not end after {MAX_CONTRACT_PAGES} pages")
        return found

    def option_contracts(self, symbol: str, day: date, max_dte: int) -> list[str]:
        """Contracts of `symbol` that were listed on `day` and expire within `max_dte` days of it,
        expired ones included (so past sessions can be backfilled)."""
        tables.require_closed(self.name, symbol, day, day)
        until = day + timedelta(days=max_dte)
        contracts = self._contracts(symbol, day, until, ("active", "inactive"))
        if not contracts:
            self._require_asset(symbol)
        return alpaca_rows.contract_symbols(contracts, day, until)

    def option_bars(self, symbol: str, contracts: list[str], start: date, end: date) -> pa.Table:
        """Daily bars of `contracts` on each closed session in [start, end], 100 contracts per request
        (rows.OPTION_BARS)."""
        from alpaca.data.requests import OptionBarsRequest
        from alpaca.data.timeframe import TimeFrame

        tables.require_closed(self.name, symbol, start, end)
        merged: dict[str, list] = {}
        for offset in range(0, len(contracts) if start <= end else 0, BARS_PER_CALL):
            chunk = contracts[offset : offset + BARS_PER_CALL]
            request = OptionBarsRequest(symbol_or_symbols=chunk, timeframe=TimeFrame.Day,
                                        start=_ny_midnight(start), end=_ny_midnight(end))
            bars = self._call("daily option bars", symbol, lambda r=request: self._options.get_option_bars(r) or {})
            for contract, series in bars.items():
                merged.setdefault(contract, []).extend(series or [])
        return alpaca_rows.option_bars(symbol, merged, start, end)

    def option_chain(self, symbol: str, day: date) -> pa.Table:
        """The chain of `symbol` on `day` (rows.CHAIN). Alpaca's snapshots are live, so `day` must be the
        session of the newest quote in the chain (the last session, until the next one opens)."""
        tables.require_closed(self.name, symbol, day, day)
        from alpaca.data.enums import OptionsFeed
        from alpaca.data.requests import OptionChainRequest

        feed = self.settings.alpaca.option_feed
        request = OptionChainRequest(underlying_symbol=symbol, feed=OptionsFeed(feed),
                                     expiration_date_gte=day + timedelta(days=1))
        snapshots = self._call("the option chain", symbol, lambda: self._options.get_option_chain(request) or {},
                               ("option", feed))
        if not snapshots:
            self._require_asset(symbol)
            raise ProviderError(f"alpaca lists no options for {symbol}")
        as_of = alpaca_rows.newest_quote_day(snapshots)
        if as_of != day:
            raise SnapshotNotAvailable(
                f"alpaca: option chain snapshots are live; the newest quote of {symbol} is from {as_of}, so they "
                f"cannot stand for {day}; chains can only be taken for the latest session (run the snapshot daily)"
            )
        spot_bars = alpaca_rows.candles(symbol, self._stock_bars(symbol, day, day), day, day)
        if spot_bars.num_rows == 0:
            raise ProviderError(f"alpaca has no {day} stock bar for {symbol} to price its chain against")
        spot = spot_bars.column("close")[0].as_py()
        contracts = self._contracts(symbol, day, None, ("active",))
        table, skipped = alpaca_rows.chain(symbol, day, spot, snapshots, contracts, self.settings.rate,
                                           self.settings.dividend_yield)
        if skipped:
            log.warning("alpaca chain %s %s: %d snapshot keys were not option symbols; skipped", symbol, day, skipped)
        return table
