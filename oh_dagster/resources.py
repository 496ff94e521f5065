"""The one Dagster resource, `oh`: which installation a step works on, how it runs its commands, and with what.

The installation is the CLI's: `OH_HOME` (default `./data`), so Dagster reads and writes exactly
what `oh` does. Defaults come from the environment the code location starts in (`OH_DAGSTER_MODE`,
`OH_DAGSTER_PROVIDER`); any of them can be changed per run in the launchpad's run config:

    resources:
      oh:
        config: {mode: inline, provider: sim}
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg
from pydantic import Field

from bus.home import Home
from contracts import RunDaily
from oh_dagster.commands import Settings, default_of
from oh_dagster.modes import MODES, Timeouts

RESOURCE_KEY = "oh"


class OhResource(dg.ConfigurableResource):  # type: ignore[type-arg]
    """The oh installation and how Dagster's steps reach it."""

    home: str | None = Field(default=None, description="OH_HOME to work on (default: the environment's, as `oh`).")
    mode: str = Field(default="bus", description=f"How a step runs its job: {' | '.join(MODES)}.")
    provider: str = Field(default="sim", description="sim | alpaca | yahoo (for candles, option bars, chains).")
    fallback: str | None = Field(default=None, description="A second provider tried per symbol when the first fails.")
    candle_days: int = Field(default=default_of(RunDaily, "candle_days"),
                             description="Calendar days of candles before the first session, as `daily` ingests.")
    start_timeout: float = Field(default=600.0, description="Seconds for a worker to start a sent command (bus).")
    run_timeout: float = Field(default=7200.0, description="Seconds a run may take.")
    checks_timeout: float = Field(default=120.0, description="Seconds an asset check waits for the checks worker.")

    def oh_home(self) -> Home:
        """The installation: `home`, else OH_HOME, else ./data (as the CLI)."""
        return Home.from_env() if self.home is None else Home(Path(self.home).expanduser().resolve())

    def settings(self) -> Settings:
        return Settings(provider=self.provider, fallback=self.fallback, candle_days=self.candle_days)

    def timeouts(self) -> Timeouts:
        return Timeouts(start=self.start_timeout, run=self.run_timeout)


def default_resource() -> OhResource:
    """The resource as the code location starts: mode and provider from the environment."""
    return OhResource(mode=os.environ.get("OH_DAGSTER_MODE", "bus"), provider=os.environ.get("OH_DAGSTER_PROVIDER", "sim"))
