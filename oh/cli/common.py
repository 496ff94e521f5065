"""Helpers every CLI module shares: one-line errors with exit codes, the console, the choices of --provider."""

from __future__ import annotations

from enum import StrEnum
from typing import NoReturn

import typer
from rich.console import Console
from rich.markup import escape

from oh.adapters.registry import PROVIDERS
from oh.domain.live_plan import PROVIDERS as LIVE_PROVIDERS

console = Console()
err_console = Console(stderr=True)


def say_error(message: str) -> None:
    """Print `error: message` on stderr, literally: user text such as `[x]` or `:x:` is neither markup nor emoji."""
    err_console.print(f"[bold red]error:[/] {escape(message)}", highlight=False, soft_wrap=True, emoji=False)


def fail(message: str, code: int = 1) -> NoReturn:
    """Print `error: message` on stderr and exit with `code` (2 for bad arguments)."""
    say_error(message)
    raise typer.Exit(code)


# `--provider` (and `--fallback`) are choices, like `--format`: a typo is a usage error (exit 2) before anything runs.
Provider = StrEnum("Provider", {name: name for name in PROVIDERS})  # type: ignore[misc]
LiveProvider = StrEnum("LiveProvider", {name: name for name in LIVE_PROVIDERS})  # type: ignore[misc]
