"""Provider settings: where keys, feeds and retries come from, and that secrets never print."""

from __future__ import annotations

from pathlib import Path

import pytest

from bus.home import Home
from oh.adapters.retry import RetryPolicy
from oh.adapters.settings import (
    ConfigError,
    ProviderSettings,
    load_settings,
    read_env_file,
    redact,
)


@pytest.fixture
def cfg(tmp_path: Path) -> Home:
    return Home(tmp_path / "home").ensure()


def test_keys_and_urls_from_alpaca_env_and_paper_or_live_from_the_url(cfg: Home) -> None:
    """alpaca.env is read like Alpaca's own tools read it (export, quotes, comments); the trading URL says
    paper or live; without one it is paper; any other URL is a custom endpoint."""
    (cfg.config / "alpaca.env").write_text(
        "# my keys\nexport APCA_API_KEY_ID=PKFILE\nAPCA_API_SECRET_KEY='s3cr3t with spaces'\n"
        "APCA_API_BASE_URL=https://api.alpaca.markets  # live\n"
    )
    settings = load_settings(cfg, environ={})
    assert (settings.alpaca.key_id, settings.alpaca.secret_key) == ("PKFILE", "s3cr3t with spaces")
    assert settings.alpaca.environment == "live"
    (cfg.config / "alpaca.env").write_text("APCA_API_KEY_ID=PKFILE\nAPCA_API_SECRET_KEY=x\n")
    assert load_settings(cfg, environ={}).alpaca.environment == "paper"
    custom = load_settings(cfg, environ={"APCA_API_BASE_URL": "http://127.0.0.1:9/alpaca-trading/"})
    assert custom.alpaca.environment == "custom" and custom.alpaca.trading_url == "http://127.0.0.1:9/alpaca-trading"


def test_the_environment_wins_over_the_files(cfg: Home) -> None:
    """A variable set in the environment overrides alpaca.env and providers.toml."""
    (cfg.config / "alpaca.env").write_text("APCA_API_KEY_ID=PKFILE\nAPCA_API_SECRET_KEY=filesecret\n")
    (cfg.config / "providers.toml").write_text('default_fallback = "yahoo"\n[alpaca]\nstock_feed = "sip"\n')
    settings = load_settings(cfg, environ={"APCA_API_KEY_ID": "PKENV", "OH_ALPACA_STOCK_FEED": "IEX",
                                           "OH_PROVIDER_FALLBACK": "alpaca"})
    assert settings.alpaca.key_id == "PKENV" and settings.alpaca.secret_key == "filesecret"
    assert settings.alpaca.stock_feed == "iex"
    assert settings.default_fallback == "alpaca"


def test_defaults_without_any_file(cfg: Home) -> None:
    """No keys (the provider will say so), sip and indicative feeds, paper trading, no default fallback."""
    settings = load_settings(cfg, environ={})
    assert not settings.alpaca.has_credentials
    assert (settings.alpaca.stock_feed, settings.alpaca.option_feed) == ("sip", "indicative")
    assert settings.alpaca.environment == "paper" and settings.default_fallback is None
    assert settings.retry == RetryPolicy()
    assert settings.cache_dir == cfg.state / "yfinance"


def test_retry_and_pricing_settings_from_providers_toml(cfg: Home) -> None:
    """[retry] sets the policy; rate and dividend_yield feed the IV/Greeks the sources lack."""
    (cfg.config / "providers.toml").write_text(
        "rate = 0.05\ndividend_yield = 0.01\n[retry]\nattempts = 2\nbase_delay = 0.1\nmax_delay = 3\ntimeout = 4.5\n"
        '[yahoo]\nbase_url = "http://127.0.0.1:1/yahoo/"\n'
    )
    settings = load_settings(cfg, environ={})
    assert settings.retry == RetryPolicy(attempts=2, base_delay=0.1, max_delay=3.0, timeout=4.5)
    assert (settings.rate, settings.dividend_yield) == (0.05, 0.01)
    assert settings.yahoo.base_url == "http://127.0.0.1:1/yahoo"


@pytest.mark.parametrize(
    ("toml", "environ", "named"),
    [
        ('[alpaca]\nstock_feed = "nasdaq"\n', {}, "stock_feed"),
        ("", {"OH_ALPACA_OPTION_FEED": "cboe"}, "OH_ALPACA_OPTION_FEED"),
        ('default_fallback = "bloomberg"\n', {}, "default_fallback"),
        ("[retry]\nattempts = -1\n", {}, "attempts"),
        ("[retry]\ntimeout = 0\n", {}, "timeout"),
        ("rate = 'high'\n", {}, "rate"),
        ("[alpaca\n", {}, "providers.toml"),
    ],
)
def test_a_malformed_setting_is_named(cfg: Home, toml: str, environ: dict[str, str], named: str) -> None:
    """Every malformed setting fails with a message naming it (or the file), never silently defaulted."""
    (cfg.config / "providers.toml").write_text(toml)
    with pytest.raises(ConfigError, match=named):
        load_settings(cfg, environ=environ)


def test_a_bad_env_line_is_reported_without_echoing_it(tmp_path: Path) -> None:
    """A line that is not KEY=VALUE names the file and line number but never repeats the line: it may
    be a pasted secret."""
    path = tmp_path / "alpaca.env"
    path.write_text("APCA_API_KEY_ID=PK1\nsk-live-THISISTHESECRET\n")
    with pytest.raises(ConfigError) as raised:
        read_env_file(path)
    assert f"{path}:2" in str(raised.value)
    assert "THISISTHESECRET" not in str(raised.value)


def test_secrets_are_redacted_and_never_in_a_repr() -> None:
    """redact() removes every configured secret (a longer one containing a shorter one goes whole), and the
    settings' repr (what a log line or traceback would show) has neither key."""
    from oh.adapters.settings import AlpacaSettings

    settings = ProviderSettings(alpaca=AlpacaSettings(key_id="PKABC123", secret_key="PKABC123-and-more"))
    text = "sent PKABC123-and-more and PKABC123 to the server"
    assert settings.redact(text) == "sent *** and *** to the server"
    assert redact("nothing to hide", []) == "nothing to hide"
    assert "PKABC123" not in repr(settings)


@pytest.mark.parametrize(
    ("toml", "named"),
    [
        ('[alpaca]\nstok_feed = "iex"\n', "alpaca.stok_feed: unknown key (allowed: data_url, option_feed, stock_feed"),
        ("[retry]\nbase_dealy = 1.0\n", "retry.base_dealy: unknown key (allowed: attempts, base_delay, max_delay"),
        ('defualt_fallback = "yahoo"\n', "defualt_fallback: unknown key"),
        ('[yahooo]\nbase_url = "http://x"\n', "yahooo: unknown key"),
        ("[retry]\nattempts = true\n", "retry.attempts: expected `int`, got `bool`"),
        ("[retry]\nmax_delay = \"10\"\n", "retry.max_delay: expected `float`, got `str`"),
        ("alpaca = 3\n", "alpaca: expected `object`, got `int`"),
    ],
    ids=["stok_feed", "base_dealy", "top-level", "table", "bool", "string-number", "not-a-table"],
)
def test_a_misspelt_or_mistyped_key_is_named_with_its_file(cfg: Home, toml: str, named: str) -> None:
    """providers.toml decodes into a struct that refuses unknown keys and wrong types: the error names the file
    and the key (and what the table allows), instead of silently using the default."""
    path = cfg.config / "providers.toml"
    path.write_text(toml)
    with pytest.raises(ConfigError) as raised:
        load_settings(cfg, environ={})
    assert str(raised.value).startswith(f"{path}: ") and named in str(raised.value)
    assert "\n" not in str(raised.value)


def test_an_unknown_alpaca_env_key_is_named_and_a_secret_looking_one_is_not_echoed(cfg: Home) -> None:
    """alpaca.env may hold only the keys oh reads: `APCA_API_KEY` (the _ID forgotten) is named; a key that is not
    an APCA_/OH_ name may be a pasted secret, so it is refused without being repeated."""
    path = cfg.config / "alpaca.env"
    path.write_text("APCA_API_KEY=PKFILE\nAPCA_API_SECRET_KEY=s3cret\n")
    with pytest.raises(ConfigError, match=r"alpaca.env: APCA_API_KEY: unknown key; this file holds APCA_API_KEY_ID"):
        load_settings(cfg, environ={})
    path.write_text("PKSECRETLOOKINGTHING=1\n")
    with pytest.raises(ConfigError) as raised:
        load_settings(cfg, environ={})
    assert "PKSECRETLOOKINGTHING" not in str(raised.value) and str(path) in str(raised.value)


def test_oh_emit_with_a_real_provider_refuses_a_config_typo_with_exit_2(cfg: Home, monkeypatch: pytest.MonkeyPatch) -> None:
    """`oh emit ... --provider alpaca` reads the settings before sending: a typo is bad input (exit 2, one line
    naming file and key), before anything is sent."""
    from typer.testing import CliRunner

    from oh.cli.main import app

    monkeypatch.setenv("OH_HOME", str(cfg.root))
    (cfg.config / "providers.toml").write_text("[retry]\nbase_dealy = 1\n")
    result = CliRunner().invoke(app, ["emit", "ingest-candles", "--symbols", "AAPL", "--as-of", "2025-06-06",
                                      "--provider", "alpaca"])
    assert result.exit_code == 2 and "providers.toml: retry.base_dealy: unknown key" in result.output
