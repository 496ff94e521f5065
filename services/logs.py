"""Logging for long-lived processes: each writes its own `OH_HOME/logs/<name>.log`.

supervisord captures stdout/stderr too (`<name>.out.log`), but it stops every program at once on
shutdown and may exit before draining their pipes, so the last lines (the clean-shutdown line
among them) would be lost. A process's own file handler is written before it exits.
"""

from __future__ import annotations

import logging
import sys

from bus.home import Home

FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"


def configure(name: str, home: Home) -> None:
    """Log INFO and up to the service's own file, and warnings and errors to stderr as well."""
    home.logs.mkdir(parents=True, exist_ok=True)
    to_file = logging.FileHandler(home.logs / f"{name}.log")
    to_file.setFormatter(logging.Formatter(FORMAT))
    to_stderr = logging.StreamHandler(sys.stderr)
    to_stderr.setLevel(logging.WARNING)
    to_stderr.setFormatter(logging.Formatter(FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[to_file, to_stderr], force=True)
