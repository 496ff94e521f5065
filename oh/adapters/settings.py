"""Provider settings: Alpaca credentials and feeds, Yahoo's address, retries, the default fallback.

Where each setting comes from, first match wins:

- the environment: APCA_API_KEY_ID, APCA_API_SECRET_KEY, APCA_API_BASE_URL (the trading API; paper
  or live is read from it), APCA_API_DATA_URL, OH_ALPACA_STOCK_FEED, OH_ALPACA_OPTION_FEED,
  OH_YAHOO_BASE_URL, OH_PROVIDER_FALLBACK;
- `$OH_HOME/config/alpaca.env`: the same APCA_* names as KEY=VALUE lines (the file Alpaca's own
  tools read);
- `$OH_HOME/config/providers.toml`: feeds, fallback, rates, retries (see docs/providers.md);
- the defaults below.

Secrets never leave this module as plain text in anything printable: `ProviderSettings.redact`
removes them from any message, and their fields are left out of every repr.
"""

from __future__ import annotations

import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from bus.home import Home
from oh.adapters.base import ProviderError
from oh.adapters.retry import RetryPolicy

ALPACA_ENV_FILE = "alpaca.env"
PROVIDERS_FILE = "providers.toml"
PAPER_TRADING_URL = "https://paper-api.alpaca.markets"
LIVE_TRADING_URL = "https://api.alpaca.markets"
DATA_URL = "https://data.alpaca.markets"
STOCK_FEEDS = ("iex", "sip")
OPTION_FEEDS = ("indicative", "opra")
FALLBACKS = ("alpaca", "yahoo")
REDACTED = "***"
_ENV_LINE = re.compile(r"^\s*(?:export\s+)?([A-Za-z_][A-Za-z0-9_]*)\s*=\s*(.*?)\s*$")


class ConfigError(ProviderError):
    """A provider setting is malformed; the message names the file or variable and the fix."""


@dataclass(frozen=True)
class AlpacaSettings:
    """Alpaca keys (never in a repr), endpoints and the feeds to ask for."""

    key_id: str | None = field(default=None, repr=False)
    secret_key: str | None = field(default=None, repr=False)
    trading_url: str = PAPER_TRADING_URL
    data_url: str = DATA_URL
    stock_feed: str = "sip"
    option_feed: str = "indicative"
    env_file: Path = Path(ALPACA_ENV_FILE)

    @property
    def environment(self) -> str:
        """'paper' or 'live' for Alpaca's own trading URLs, 'custom' for anything else (a proxy, a test server)."""
        url = self.trading_url.rstrip("/")
        if url == PAPER_TRADING_URL:
            return "paper"
        if url == LIVE_TRADING_URL:
            return "live"
        return "custom"

    @property
    def has_credentials(self) -> bool:
        """Both halves of a key pair are set."""
        return bool(self.key_id and self.secret_key)


@dataclass(frozen=True)
class YahooSettings:
    """Where yfinance's requests go: None for Yahoo itself, else a base URL (a proxy or a test server)."""

    base_url: str | None = None


@dataclass(frozen=True)
class ProviderSettings:
    """Everything a real provider needs, loaded once per provider instance by `load_settings`."""

    alpaca: AlpacaSettings = field(default_factory=AlpacaSettings)
    yahoo: YahooSettings = field(default_factory=YahooSettings)
    retry: RetryPolicy = field(default_factory=RetryPolicy)
    default_fallback: str | None = None
    rate: float = 0.04  # risk-free rate (annual, continuous) for IV and Greeks the source lacks
    dividend_yield: float = 0.0  # continuous dividend yield for the same
    cache_dir: Path | None = None  # where yfinance keeps its timezone/cookie caches

    def secrets(self) -> tuple[str, ...]:
        """Every credential value configured (what `redact` removes)."""
        return tuple(s for s in (self.alpaca.key_id, self.alpaca.secret_key) if s)

    def redact(self, text: str) -> str:
        """`text` with every configured credential replaced by ***."""
        return redact(text, self.secrets())


def redact(text: str, secrets: Iterable[str]) -> str:
    """Replace each secret (longest first, so one containing another goes whole) by ***."""
    for secret in sorted({s for s in secrets if s}, key=len, reverse=True):
        text = text.replace(secret, REDACTED)
    return text


def read_env_file(path: Path) -> dict[str, str]:
    """KEY=VALUE lines (optional `export`, quotes and # comments) of a dotenv-style file; {} if absent."""
    try:
        text = path.read_text()
    except FileNotFoundError:
        return {}
    except OSError as exc:
        raise ConfigError(f"cannot read {path}: {exc.strerror}") from None
    values: dict[str, str] = {}
    for number, line in enumerate(text.splitlines(), 1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        match = _ENV_LINE.match(line)
        if not match:
            raise ConfigError(f"{path}:{number}: expected KEY=VALUE")  # never echo the line: it may hold a key
        key, value = match.groups()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "'\"":
            value = value[1:-1]
        elif " #" in value:
            value = value.split(" #", 1)[0].rstrip()
        values[key] = value
    return values


def _read_toml(path: Path) -> dict[str, Any]:
    try:
        with path.open("rb") as handle:
            return tomllib.load(handle)
    except FileNotFoundError:
        return {}
    except tomllib.TOMLDecodeError as exc:
        raise ConfigError(f"{path}: {exc}") from None


def _choice(value: Any, allowed: tuple[str, ...], where: str) -> str:
    text = str(value).strip().lower()
    if text not in allowed:
        raise ConfigError(f"{where} must be one of {', '.join(allowed)}, not {value!r}")
    return text


def _number(table: Mapping[str, Any], key: str, default: float, where: str, minimum: float = 0.0) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, (int, float)) or value < minimum:
        raise ConfigError(f"{where}: {key} must be a number >= {minimum:g}, not {value!r}")
    return float(value)


def _retry(table: Mapping[str, Any], where: str) -> RetryPolicy:
    base = RetryPolicy()
    attempts = table.get("attempts", base.attempts)
    if isinstance(attempts, bool) or not isinstance(attempts, int) or attempts < 0:
        raise ConfigError(f"{where}: attempts must be a whole number >= 0, not {attempts!r}")
    return RetryPolicy(
        attempts=attempts,
        base_delay=_number(table, "base_delay", base.base_delay, where),
        max_delay=_number(table, "max_delay", base.max_delay, where),
        timeout=_number(table, "timeout", base.timeout, where, minimum=0.001),
    )


def load_settings(home: Home | None = None, environ: Mapping[str, str] | None = None) -> ProviderSettings:
    """Read the provider settings for `home` (default: OH_HOME) from the environment and its config files.

    Raises ConfigError naming the file and setting when one is malformed. Missing keys are not an
    error here: the Alpaca provider says so when it is built, with what to set.
    """
    home = home or Home.from_env()
    env = dict(os.environ if environ is None else environ)
    env_file = home.config / ALPACA_ENV_FILE
    from_file = read_env_file(env_file)
    toml_path = home.config / PROVIDERS_FILE
    toml = _read_toml(toml_path)
    alpaca_table = toml.get("alpaca", {})
    yahoo_table = toml.get("yahoo", {})
    retry_table = toml.get("retry", {})
    for name, table in (("alpaca", alpaca_table), ("yahoo", yahoo_table), ("retry", retry_table)):
        if not isinstance(table, dict):
            raise ConfigError(f"{toml_path}: [{name}] must be a table")

    def pick(name: str, table_value: Any = None, default: Any = None) -> Any:
        for source in (env.get(name), from_file.get(name), table_value):
            if source not in (None, ""):
                return source
        return default

    alpaca = AlpacaSettings(
        key_id=pick("APCA_API_KEY_ID"),
        secret_key=pick("APCA_API_SECRET_KEY"),
        trading_url=str(pick("APCA_API_BASE_URL", alpaca_table.get("trading_url"), PAPER_TRADING_URL)).rstrip("/"),
        data_url=str(pick("APCA_API_DATA_URL", alpaca_table.get("data_url"), DATA_URL)).rstrip("/"),
        stock_feed=_choice(pick("OH_ALPACA_STOCK_FEED", alpaca_table.get("stock_feed"), "sip"), STOCK_FEEDS,
                           "the alpaca stock feed (OH_ALPACA_STOCK_FEED or [alpaca] stock_feed)"),
        option_feed=_choice(pick("OH_ALPACA_OPTION_FEED", alpaca_table.get("option_feed"), "indicative"),
                            OPTION_FEEDS, "the alpaca option feed (OH_ALPACA_OPTION_FEED or [alpaca] option_feed)"),
        env_file=env_file,
    )
    fallback = pick("OH_PROVIDER_FALLBACK", toml.get("default_fallback"))
    if fallback is not None:
        fallback = _choice(fallback, FALLBACKS, "the default fallback (OH_PROVIDER_FALLBACK or default_fallback)")
    base_url = pick("OH_YAHOO_BASE_URL", yahoo_table.get("base_url"))
    return ProviderSettings(
        alpaca=alpaca,
        yahoo=YahooSettings(base_url=str(base_url).rstrip("/") if base_url else None),
        retry=_retry(retry_table, f"{toml_path} [retry]"),
        default_fallback=fallback,
        rate=_number(toml, "rate", 0.04, str(toml_path), minimum=-1.0),
        dividend_yield=_number(toml, "dividend_yield", 0.0, str(toml_path), minimum=-1.0),
        cache_dir=home.state / "yfinance",
    )
