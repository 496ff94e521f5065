"""Logging for long-lived processes: each writes its own `OH_HOME/logs/<name>.log`, rotated by size.

supervisord captures stdout/stderr too (`<name>.out.log`), but it stops every program at once on
shutdown and may exit before draining their pipes, so the last lines (the clean-shutdown line
among them) would be lost. A process's own file handler is written before it exits.

Rotation is the standard library's RotatingFileHandler: when `<name>.log` would pass
OH_LOG_MAX_BYTES (default 10 MiB) it becomes `<name>.log.1` (older ones shift up) and at most
OH_LOG_BACKUPS (default 5) old files are kept, so one process keeps at most (1 + backups) x max bytes.
supervisord rotates its own files the same way (`*_maxbytes`, `*_backups` in supervisord.conf). Each
`<name>.log` has one writer (a name is one process), which the handler requires.
"""

from __future__ import annotations

import logging
import sys
from logging.handlers import RotatingFileHandler

from bus.home import Home
from services.settings import env_int

FORMAT = "%(asctime)s %(name)s %(levelname)s %(message)s"
DEFAULT_MAX_BYTES = 10 * 1024 * 1024
DEFAULT_BACKUPS = 5


def rotation() -> tuple[int, int]:
    """(max bytes per file, backups kept) from OH_LOG_MAX_BYTES and OH_LOG_BACKUPS; SystemExit if malformed."""
    return env_int("OH_LOG_MAX_BYTES", DEFAULT_MAX_BYTES, 1), env_int("OH_LOG_BACKUPS", DEFAULT_BACKUPS, 1)


def configure(name: str, home: Home) -> None:
    """Log INFO and up to the service's own rotating file, and warnings and errors to stderr as well."""
    max_bytes, backups = rotation()
    home.logs.mkdir(parents=True, exist_ok=True)
    to_file = RotatingFileHandler(home.logs / f"{name}.log", maxBytes=max_bytes, backupCount=backups)
    to_file.setFormatter(logging.Formatter(FORMAT))
    to_stderr = logging.StreamHandler(sys.stderr)
    to_stderr.setLevel(logging.WARNING)
    to_stderr.setFormatter(logging.Formatter(FORMAT))
    logging.basicConfig(level=logging.INFO, handlers=[to_file, to_stderr], force=True)
