"""The portfolio file: `$OH_HOME/config/portfolio.json`, read and validated, written atomically.

The model and its validation are pure (oh.domain.portfolio); this module is the only one that
touches the file. The `oh portfolio` commands are its only writers.
"""

from __future__ import annotations

from pathlib import Path

from bus.home import Home
from oh.adapters.files import write_atomically
from oh.domain.portfolio import Portfolio, PortfolioError, dumps, loads, validate


def load(path: Path) -> Portfolio:
    """Read and validate the portfolio at `path`; raise PortfolioError (one line, starting with the path)."""
    try:
        raw = Path(path).read_bytes()
    except FileNotFoundError:
        raise PortfolioError(f"{path}: no portfolio file (create one with `oh portfolio init`)") from None
    except OSError as exc:
        raise PortfolioError(f"{path}: cannot read: {exc.strerror or exc}") from None
    try:
        return loads(raw)
    except PortfolioError as exc:
        raise PortfolioError(f"{path}: {exc}") from None


def save(path: Path, portfolio: Portfolio) -> None:
    """Validate, then write atomically: a temp file in the same directory, fsync, os.replace."""
    portfolio = validate(portfolio)
    path = Path(path)
    write_atomically(path, dumps(portfolio))


def default_path() -> Path:
    """`$OH_HOME/config/portfolio.json`."""
    return Home.from_env().config / "portfolio.json"
