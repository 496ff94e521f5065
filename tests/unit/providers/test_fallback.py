"""Fallback between providers, and get_provider building real providers (with a configured default)."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pyarrow as pa
import pytest

from contracts import rows
from oh.adapters.base import ProviderError, UnknownSymbol
from oh.adapters.errors import MissingCredentials, NotEntitled
from oh.adapters.fallback import FallbackProvider
from oh.adapters.registry import get_provider, served_by, unavailable_reason

DAY = date(2025, 6, 6)


class Stub:
    """A provider that serves a one-row candle table or raises what it was given (ours, not the SDKs')."""

    def __init__(self, name: str, error: Exception | None = None) -> None:
        self.name = name
        self.error = error
        self.calls = 0

    def _answer(self) -> pa.Table:
        self.calls += 1
        if self.error is not None:
            raise self.error
        return pa.table([["AAPL"], [DAY], [1.0], [1.0], [1.0], [1.0], [1]], schema=rows.CANDLES)

    def daily_candles(self, symbol: str, start: date, end: date) -> pa.Table:
        return self._answer()

    def option_chain(self, symbol: str, day: date) -> pa.Table:
        return self._answer()

    def option_contracts(self, symbol: str, day: date, max_dte: int) -> list[str]:
        self._answer()
        return [self.name]

    def option_bars(self, symbol: str, contracts: list[str], start: date, end: date) -> pa.Table:
        return self._answer()


def _pair(primary: Stub, fallback: Stub) -> FallbackProvider:
    return FallbackProvider(lambda: primary, primary.name, lambda: fallback, fallback.name)


def test_the_primary_serves_when_it_can_and_says_so() -> None:
    """A working primary serves; the fallback is never asked; served_by names the primary."""
    primary, fallback = Stub("alpaca"), Stub("yahoo")
    provider = _pair(primary, fallback)
    table = provider.daily_candles("AAPL", DAY, DAY)
    assert served_by(table, provider) == "alpaca" and fallback.calls == 0


def test_a_failing_primary_hands_over_and_the_table_says_who_served() -> None:
    """Each method falls back on failure; tables carry the fallback's name in their metadata, so the jobs'
    served_by() records it on the asset row; contract lists come from the fallback too."""
    provider = _pair(Stub("alpaca", NotEntitled("alpaca: not entitled to sip")), Stub("yahoo"))
    for table in (provider.daily_candles("AAPL", DAY, DAY), provider.option_chain("AAPL", DAY),
                  provider.option_bars("AAPL", ["c"], DAY, DAY)):
        assert served_by(table, provider) == "yahoo"
        assert table.schema.equals(rows.CANDLES)  # the marking keeps the schema's fields
    assert provider.option_contracts("AAPL", DAY, 30) == ["yahoo"]


def test_when_both_fail_the_error_names_both_reasons() -> None:
    """Both failing is one ProviderError with each provider's reason; UnknownSymbol only if neither knows it."""
    provider = _pair(Stub("alpaca", UnknownSymbol("alpaca does not know ZZ")), Stub("yahoo", ProviderError("down")))
    with pytest.raises(ProviderError) as raised:
        provider.daily_candles("ZZ", DAY, DAY)
    assert not isinstance(raised.value, UnknownSymbol)
    assert str(raised.value) == "alpaca: alpaca does not know ZZ; yahoo (fallback): down"
    neither = _pair(Stub("alpaca", UnknownSymbol("a")), Stub("yahoo", UnknownSymbol("b")))
    with pytest.raises(UnknownSymbol):
        neither.daily_candles("ZZ", DAY, DAY)


def test_a_primary_that_cannot_be_built_sends_everything_to_the_fallback() -> None:
    """Missing Alpaca keys with a Yahoo fallback: every request is served by yahoo; the primary's
    construction is tried once, not per request."""
    built = []

    def no_keys() -> Stub:
        built.append(1)
        raise MissingCredentials("alpaca: no credentials")

    fallback = Stub("yahoo")
    provider = FallbackProvider(no_keys, "alpaca", lambda: fallback, "yahoo")
    for _ in range(3):
        assert served_by(provider.daily_candles("AAPL", DAY, DAY), provider) == "yahoo"
    assert len(built) == 1 and fallback.calls == 3


@pytest.fixture
def empty_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """OH_HOME in a temp dir with no provider variables in the environment."""
    for name in ("APCA_API_KEY_ID", "APCA_API_SECRET_KEY", "APCA_API_BASE_URL", "APCA_API_DATA_URL",
                 "OH_PROVIDER_FALLBACK", "OH_ALPACA_STOCK_FEED", "OH_ALPACA_OPTION_FEED", "OH_YAHOO_BASE_URL"):
        monkeypatch.delenv(name, raising=False)
    home = tmp_path / "home"
    (home / "config").mkdir(parents=True)
    monkeypatch.setenv("OH_HOME", str(home))
    return home


def test_get_provider_builds_alpaca_and_yahoo_and_alpaca_needs_keys(empty_home: Path) -> None:
    """Both real providers are available; alpaca without keys fails at once with the fix, yahoo needs none."""
    assert unavailable_reason("alpaca") is None and unavailable_reason("yahoo") is None
    assert get_provider("yahoo").name == "yahoo"
    with pytest.raises(MissingCredentials, match="APCA_API_KEY_ID"):
        get_provider("alpaca")
    (empty_home / "config" / "alpaca.env").write_text("APCA_API_KEY_ID=PKX\nAPCA_API_SECRET_KEY=sx\n")
    assert get_provider("alpaca").name == "alpaca"


def test_get_provider_applies_the_configured_default_fallback(empty_home: Path) -> None:
    """default_fallback in providers.toml wraps a real provider when no --fallback is given, not itself and
    never the offline sim; an explicit fallback equal to the provider is refused."""
    (empty_home / "config" / "providers.toml").write_text('default_fallback = "yahoo"\n')
    wrapped = get_provider("alpaca")
    assert isinstance(wrapped, FallbackProvider) and (wrapped.name, wrapped.fallback_name) == ("alpaca", "yahoo")
    assert not isinstance(get_provider("yahoo"), FallbackProvider)
    assert get_provider("sim").name == "sim" and not isinstance(get_provider("sim"), FallbackProvider)
    assert isinstance(get_provider("sim", "yahoo"), FallbackProvider)
    with pytest.raises(ProviderError, match="same as the provider"):
        get_provider("yahoo", "yahoo")
    with pytest.raises(ProviderError, match="unknown provider"):
        get_provider("alpaca", "bloomberg")
