"""Fixtures for provider tests: the recorded-response server and settings that point the SDKs at it."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest

from oh.adapters.retry import RetryPolicy
from oh.adapters.settings import AlpacaSettings, ProviderSettings, YahooSettings
from tests.http_replay import ReplayServer, replay_server

KEY_ID = "PKUNITTEST0123456789"
SECRET = "unit-secret-Zx9Qv2Lm7Pq4Rs8Tu1Vw"


@pytest.fixture
def server() -> Iterator[ReplayServer]:
    """A fresh recorded-response server (hit counters at zero) that checks Alpaca's auth headers."""
    with replay_server(alpaca_keys=(KEY_ID, SECRET)) as state:
        yield state


@pytest.fixture
def waits() -> list[float]:
    """The waits the retry policy asked for, recorded instead of slept."""
    return []


@pytest.fixture
def settings(server: ReplayServer, waits: list[float], tmp_path: Path) -> ProviderSettings:
    """Settings for both providers against `server`: iex/indicative feeds, 2 retries, no real sleeping."""
    return ProviderSettings(
        alpaca=AlpacaSettings(key_id=KEY_ID, secret_key=SECRET, trading_url=server.service_url("alpaca-trading"),
                              data_url=server.service_url("alpaca-data"), stock_feed="iex", option_feed="indicative",
                              env_file=tmp_path / "alpaca.env"),
        yahoo=YahooSettings(base_url=server.service_url("yahoo")),
        retry=RetryPolicy(attempts=2, base_delay=0.25, max_delay=30.0, timeout=5.0, sleep=waits.append),
        cache_dir=tmp_path / "yfinance",
    )


@pytest.fixture(autouse=True)
def fresh_yfinance() -> Iterator[None]:
    """yfinance memoises past-dated responses per process (keyed by Yahoo's URL, not the server's);
    clear that memo so each test hears its own server."""
    yield
    try:
        from yfinance.data import YfData
    except ImportError:
        return
    YfData.cache_get.cache_clear()


def with_alpaca(settings: ProviderSettings, **changes: object) -> ProviderSettings:
    """`settings` with some Alpaca fields changed."""
    return replace(settings, alpaca=replace(settings.alpaca, **changes))
