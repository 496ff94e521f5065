"""The yahoo provider: yfinance's history, expirations and option chains behind MarketDataProvider.

- daily candles: `Ticker.history(interval="1d", auto_adjust=False)` (Yahoo's v8 chart): the close is
  split-adjusted, not dividend-adjusted, as with the alpaca provider;
- option chain: `Ticker.options` then `Ticker.option_chain(expiry)` per expiry (Yahoo's v7 options),
  spot and the snapshot's session from the underlying quote Yahoo sends with it;
- contract lists: the chains of the expiries within `max_dte`; Yahoo lists only contracts still
  trading, so a past session's expired contracts are not there;
- option bars: `Ticker(contract).history()` per contract (the v8 chart of the OCC symbol).

yfinance runs on oh.adapters.yahoo.http.YahooSession (retries, timeout cap, optional base URL), with
`yf.config.debug.hide_exceptions = False` so that failures raise instead of printing and returning
an empty frame; its caches go under `$OH_HOME/state/yfinance`. Quirks: see yahoo_rows.
"""

from __future__ import annotations

import json
import logging
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from oh.adapters import tables
from oh.adapters.base import ProviderError, UnknownSymbol
from oh.adapters.errors import (
    ProviderTimeout,
    ProviderUnavailable,
    RateLimited,
    SnapshotNotAvailable,
)
from oh.adapters.settings import ProviderSettings, load_settings
from oh.adapters.yahoo import rows as yahoo_rows
from oh.adapters.yahoo.http import YahooSession

log = logging.getLogger(__name__)
_cache_dir: Path | None = None  # yfinance's caches are process-wide: pointed once per process


def yfinance() -> Any:
    """yfinance, imported on first use, with the deprecation warnings raised inside it (pandas') kept out of the
    workers' logs. Its import puts a filter showing them in front of every filter: ours goes back in front of it."""
    import yfinance as yf

    warnings.filterwarnings("ignore", module=r"yfinance(\..*)?")
    return yf


def yahoo_symbol(symbol: str) -> str:
    """Yahoo's spelling of a US ticker: class shares take a dash (BRK.B -> BRK-B)."""
    return symbol.replace(".", "-")


def _use_cache_dir(path: Path | None) -> None:
    global _cache_dir
    if path is None or _cache_dir is not None:
        return
    path.mkdir(parents=True, exist_ok=True)
    yfinance().set_tz_cache_location(str(path))
    _cache_dir = path


class YahooProvider:
    """Market data from Yahoo Finance through yfinance (see the module docstring)."""

    name = "yahoo"

    def __init__(self, settings: ProviderSettings | None = None) -> None:
        yf = yfinance()
        self.settings = settings or load_settings()
        yf.config.debug.hide_exceptions = False  # raise, do not log-and-return-empty
        _use_cache_dir(self.settings.cache_dir)
        self._yf = yf
        self._session = YahooSession(self.settings.retry, self.settings.yahoo.base_url)

    def _ticker(self, symbol: str) -> Any:
        return self._yf.Ticker(yahoo_symbol(symbol), session=self._session)

    @contextmanager
    def _vendor(self, what: str, symbol: str) -> Iterator[None]:
        """Run yfinance calls, turning its failures into ProviderErrors a trader can act on."""
        from curl_cffi.requests import exceptions as curl_errors
        from yfinance import exceptions as yf_errors

        try:
            yield
        except ProviderError:
            raise
        except yf_errors.YFRateLimitError:
            raise RateLimited(f"yahoo: rate limited on {what} of {symbol}; wait a few minutes before the next run") from None
        except yf_errors.YFPricesMissingError as exc:
            reason = f" ({exc.yahoo_reason})" if exc.yahoo_reason else ""
            raise UnknownSymbol(f"yahoo has no {what} for {symbol}{reason}") from None
        except yf_errors.YFTickerMissingError as exc:  # includes no timezone: Yahoo has no such ticker
            raise UnknownSymbol(f"yahoo does not know the symbol {symbol} ({exc.rationale})") from None
        except curl_errors.HTTPError as exc:
            status = getattr(getattr(exc, "response", None), "status_code", None)
            if status == 404:
                raise UnknownSymbol(f"yahoo does not know the symbol {symbol} (404 on {what})") from None
            raise ProviderError(f"yahoo refused {what} of {symbol} (HTTP {status}); try again later") from None
        except curl_errors.Timeout:
            raise ProviderTimeout(f"yahoo: no answer within {self.settings.retry.timeout:g}s on {what} of {symbol}") from None
        except curl_errors.ConnectionError:
            raise ProviderUnavailable(f"yahoo: cannot reach Yahoo Finance for {what} of {symbol}") from None
        except json.JSONDecodeError:
            raise ProviderError(f"yahoo: the answer for {what} of {symbol} was not JSON (Yahoo may be down)") from None
        except yf_errors.YFException as exc:
            raise ProviderError(f"yahoo: {what} of {symbol} failed: {' '.join(str(exc).split())[:200]}") from None

    def _history(self, symbol: str, start: date, end: date, what: str) -> Any:
        """yfinance daily history over [start, end] (its end is exclusive), actions kept apart, unadjusted
        for dividends; None when Yahoo knows the ticker but has no prices in the range."""
        from yfinance import exceptions as yf_errors

        with self._vendor(what, symbol):
            try:
                return self._ticker(symbol).history(
                    start=start.isoformat(), end=(end + timedelta(days=1)).isoformat(), interval="1d",
                    auto_adjust=False, actions=True, timeout=self.settings.retry.timeout,
                )
            except yf_errors.YFPricesMissingError as exc:
                if exc.yahoo_reason:
                    raise
                return None

    def daily_candles(self, symbol: str, start: date, end: date) -> pa.Table:
        """Split-adjusted daily candles of `symbol` on each closed session in [start, end] (rows.CANDLES)."""
        tables.require_closed(self.name, symbol, start, end)
        return yahoo_rows.candles(symbol, self._history(symbol, start, end, "daily candles"), start, end)

    def _expirations(self, symbol: str, after: date, until: date | None) -> tuple[Any, list[str]]:
        """The ticker and its listed expiries in (after, until]; UnknownSymbol if Yahoo does not know it."""
        ticker = self._ticker(symbol)
        with self._vendor("the option expirations", symbol):
            listed = list(ticker.options)
        if not listed:
            self._history(symbol, after - timedelta(days=7), after, "prices")  # raises UnknownSymbol if unknown
            raise ProviderError(f"yahoo lists no options for {symbol}")
        chosen = [e for e in listed if after < date.fromisoformat(e) and (until is None or date.fromisoformat(e) <= until)]
        return ticker, chosen

    def option_contracts(self, symbol: str, day: date, max_dte: int) -> list[str]:
        """Contracts of `symbol` expiring within `max_dte` days of `day` that Yahoo still lists."""
        tables.require_closed(self.name, symbol, day, day)
        ticker, expiries = self._expirations(symbol, day, day + timedelta(days=max_dte))
        found: list[str] = []
        for expiry in expiries:
            with self._vendor("the option chain", symbol):
                chain = ticker.option_chain(expiry)
            for frame in (chain.calls, chain.puts):
                if frame is not None and len(frame):
                    found += [str(s) for s in frame["contractSymbol"]]
        return sorted(set(found))

    def option_bars(self, symbol: str, contracts: list[str], start: date, end: date) -> pa.Table:
        """Daily bars of `contracts` over [start, end], one chart per contract; a contract Yahoo has no
        chart for (never traded) has no bars (rows.OPTION_BARS)."""
        tables.require_closed(self.name, symbol, start, end)
        frames: dict[str, Any] = {}
        missing = 0
        for contract in contracts if start <= end else []:
            try:
                frames[contract] = self._history(contract, start, end, "daily option bars")
            except UnknownSymbol:
                missing += 1
        if contracts and missing == len(contracts):
            raise ProviderError(f"yahoo has no chart for any of the {len(contracts)} contracts of {symbol} asked for")
        if missing:
            log.info("yahoo bars %s %s..%s: %d of %d contracts have no chart", symbol, start, end, missing, len(contracts))
        return yahoo_rows.option_bars(symbol, frames, start, end)

    def option_chain(self, symbol: str, day: date) -> pa.Table:
        """The chain of `symbol` on `day` (rows.CHAIN). Yahoo's chains are live, so `day` must be the session
        of the underlying's last regular-market price."""
        tables.require_closed(self.name, symbol, day, day)
        ticker, expiries = self._expirations(symbol, day, None)
        frames: list[Any] = []
        underlying: dict[str, Any] = {}
        for expiry in expiries:
            with self._vendor("the option chain", symbol):
                chain = ticker.option_chain(expiry)
            underlying = chain.underlying or underlying
            if not frames:
                self._check_session(symbol, day, underlying)
            frames += [chain.calls, chain.puts]
        spot = underlying.get("regularMarketPrice")
        if not isinstance(spot, (int, float)) or spot <= 0:
            raise ProviderError(f"yahoo sent no price for {symbol} with its option chain")
        table, skipped = yahoo_rows.chain(symbol, day, float(spot), frames, self.settings.rate,
                                          self.settings.dividend_yield)
        if skipped:
            log.info("yahoo chain %s %s: %d rows skipped (mini contracts or unreadable symbols)", symbol, day, skipped)
        return table

    @staticmethod
    def _check_session(symbol: str, day: date, underlying: dict[str, Any]) -> None:
        as_of = tables.ny_date(underlying.get("regularMarketTime"))
        if as_of != day:
            raise SnapshotNotAvailable(
                f"yahoo: option chains are live; {symbol}'s quote is from {as_of}, so its chain cannot stand for "
                f"{day}; chains can only be taken for the latest session (run the snapshot daily)"
            )
