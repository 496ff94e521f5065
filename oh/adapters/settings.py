"""Provider settings: Alpaca credentials and feeds, Yahoo's address, retries, the default fallback.

Where each setting comes from, first match wins:

- the environment: APCA_API_KEY_ID, APCA_API_SECRET_KEY, APCA_API_BASE_URL (the trading API; paper
  or live is read from it), APCA_API_DATA_URL, OH_ALPACA_STOCK_FEED, OH_ALPACA_OPTION_FEED,
  OH_YAHOO_BASE_URL, OH_PROVIDER_FALLBACK;
- `$OH_HOME/config/alpaca.env`: the same APCA_* names as KEY=VALUE lines (the file Alpaca's own
  tools read);
- `$OH_HOME/config/providers.toml`: feeds, fallback, rates, retries (see docs/providers.md);
- the defaults below.

Both files are decoded into typed msgspec structs (`ProvidersFile`, `AlpacaEnvFile`, through
oh.adapters.config_files) that refuse unknown keys and wrong types: a misspelt `stok_feed` or
`base_dealy` is a ConfigError naming the file and the key, never a silently ignored setting.

Secrets never leave this module as plain text in anything printable: `ProviderSettings.redact`
removes them from any message, and their fields are left out of every repr.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import msgspec

from bus.home import Home
from oh.adapters.base import ProviderError
from oh.adapters.config_files import ConfigFileError, convert, decode_toml
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


NonNegative = Annotated[float, msgspec.Meta(ge=0)]
Rate = Annotated[float, msgspec.Meta(ge=-1)]


class AlpacaTable(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`[alpaca]` of providers.toml (each key also settable by its environment variable, which wins)."""

    trading_url: str | None = None
    data_url: str | None = None
    stock_feed: str | None = None
    option_feed: str | None = None


class YahooTable(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`[yahoo]` of providers.toml."""

    base_url: str | None = None


class RetryTable(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`[retry]` of providers.toml: the per-request retry policy (oh.adapters.retry)."""

    attempts: Annotated[int, msgspec.Meta(ge=0)] = RetryPolicy().attempts
    base_delay: NonNegative = RetryPolicy().base_delay
    max_delay: NonNegative = RetryPolicy().max_delay
    timeout: Annotated[float, msgspec.Meta(ge=0.001)] = RetryPolicy().timeout


class ProvidersFile(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`$OH_HOME/config/providers.toml`, every key it may hold (docs/providers.md)."""

    default_fallback: str | None = None
    rate: Rate = 0.04
    dividend_yield: Rate = 0.0
    alpaca: AlpacaTable = msgspec.field(default_factory=AlpacaTable)
    yahoo: YahooTable = msgspec.field(default_factory=YahooTable)
    retry: RetryTable = msgspec.field(default_factory=RetryTable)


class AlpacaEnvFile(msgspec.Struct, forbid_unknown_fields=True, kw_only=True):
    """`$OH_HOME/config/alpaca.env`: the keys oh reads from it (the same names as the environment's)."""

    APCA_API_KEY_ID: str | None = None
    APCA_API_SECRET_KEY: str | None = None
    APCA_API_BASE_URL: str | None = None
    APCA_API_DATA_URL: str | None = None
    OH_ALPACA_STOCK_FEED: str | None = None
    OH_ALPACA_OPTION_FEED: str | None = None
    OH_YAHOO_BASE_URL: str | None = None
    OH_PROVIDER_FALLBACK: str | None = None


ENV_KEYS = tuple(f.name for f in msgspec.structs.fields(AlpacaEnvFile))


def read_providers_file(path: Path) -> ProvidersFile:
    """providers.toml as a ProvidersFile (the defaults when there is none); ConfigError naming the file and key."""
    try:
        return decode_toml(path, ProvidersFile)
    except ConfigFileError as exc:
        raise ConfigError(str(exc)) from None


def read_alpaca_env(path: Path) -> dict[str, str]:
    """alpaca.env's KEY=VALUE lines, refused (ConfigError naming the file and key, never a value) if a key is not
    one oh reads: a misspelt `APCA_API_KEY` would otherwise leave the keys unset with no word why."""
    values = read_env_file(path)
    unknown = [key for key in values if key not in ENV_KEYS]
    if unknown:
        key = unknown[0]
        shown = (f"{key}: unknown key" if key.startswith(("APCA_", "OH_"))
                 else "a key oh does not read (not shown: it may be a pasted secret)")
        raise ConfigError(f"{path}: {shown}; this file holds {', '.join(ENV_KEYS)}")
    convert(values, AlpacaEnvFile, str(path))  # every value is a string; the struct states the contract
    return values


def _choice(value: Any, allowed: tuple[str, ...], where: str) -> str:
    text = str(value).strip().lower()
    if text not in allowed:
        raise ConfigError(f"{where} must be one of {', '.join(allowed)}, not {value!r}")
    return text


def load_settings(home: Home | None = None, environ: Mapping[str, str] | None = None) -> ProviderSettings:
    """Read the provider settings for `home` (default: OH_HOME) from the environment and its config files.

    Raises ConfigError naming the file and setting when one is malformed. Missing keys are not an
    error here: the Alpaca provider says so when it is built, with what to set.
    """
    home = home or Home.from_env()
    env = dict(os.environ if environ is None else environ)
    env_file = home.config / ALPACA_ENV_FILE
    from_file = read_alpaca_env(env_file)
    toml_path = home.config / PROVIDERS_FILE
    toml = read_providers_file(toml_path)
    alpaca_table, retry = toml.alpaca, toml.retry

    def pick(name: str, table_value: Any = None, default: Any = None) -> Any:
        for source in (env.get(name), from_file.get(name), table_value):
            if source not in (None, ""):
                return source
        return default

    alpaca = AlpacaSettings(
        key_id=pick("APCA_API_KEY_ID"),
        secret_key=pick("APCA_API_SECRET_KEY"),
        trading_url=str(pick("APCA_API_BASE_URL", alpaca_table.trading_url, PAPER_TRADING_URL)).rstrip("/"),
        data_url=str(pick("APCA_API_DATA_URL", alpaca_table.data_url, DATA_URL)).rstrip("/"),
        stock_feed=_choice(pick("OH_ALPACA_STOCK_FEED", alpaca_table.stock_feed, "sip"), STOCK_FEEDS,
                           "the alpaca stock feed (OH_ALPACA_STOCK_FEED or [alpaca] stock_feed)"),
        option_feed=_choice(pick("OH_ALPACA_OPTION_FEED", alpaca_table.option_feed, "indicative"),
                            OPTION_FEEDS, "the alpaca option feed (OH_ALPACA_OPTION_FEED or [alpaca] option_feed)"),
        env_file=env_file,
    )
    fallback = pick("OH_PROVIDER_FALLBACK", toml.default_fallback)
    if fallback is not None:
        fallback = _choice(fallback, FALLBACKS, "the default fallback (OH_PROVIDER_FALLBACK or default_fallback)")
    base_url = pick("OH_YAHOO_BASE_URL", toml.yahoo.base_url)
    return ProviderSettings(
        alpaca=alpaca,
        yahoo=YahooSettings(base_url=str(base_url).rstrip("/") if base_url else None),
        retry=RetryPolicy(attempts=retry.attempts, base_delay=float(retry.base_delay), max_delay=float(retry.max_delay),
                          timeout=float(retry.timeout)),
        default_fallback=fallback,
        rate=float(toml.rate),
        dividend_yield=float(toml.dividend_yield),
        cache_dir=home.state / "yfinance",
    )
