"""One data directory (`OH_HOME`, default `./data`) holds everything an installation writes."""

from __future__ import annotations

import hashlib
import os
import tempfile
from dataclasses import dataclass
from pathlib import Path

IPC_PATH_LIMIT = 100  # the kernel allows 107 bytes for a unix socket path; keep a margin


@dataclass(frozen=True)
class Home:
    """The paths under one `OH_HOME`: journal, warehouse, logs, state, config and sockets."""

    root: Path

    @classmethod
    def from_env(cls) -> Home:
        """Resolve `OH_HOME` (default `./data`) to an absolute path; two homes never collide."""
        return cls(Path(os.environ.get("OH_HOME", "data")).expanduser().resolve())

    @property
    def journal(self) -> Path:
        return self.root / "journal"

    @property
    def warehouse(self) -> Path:
        return self.root / "warehouse" / "oh.duckdb"

    @property
    def logs(self) -> Path:
        return self.root / "logs"

    @property
    def state(self) -> Path:
        return self.root / "state"

    @property
    def config(self) -> Path:
        return self.root / "config"

    @property
    def sockets(self) -> Path:
        """The socket directory: `OH_HOME/run`, or a short per-home dir in /tmp when that is too long.

        `ipc://` paths are limited to 107 bytes, and test temp dirs are deep; the fallback name is a
        hash of the home so each home still gets its own sockets.
        """
        override = os.environ.get("OH_SOCKET_DIR")
        if override:
            return Path(override)
        preferred = self.root / "run"
        if len(str(preferred / "supervisor.sock")) <= IPC_PATH_LIMIT:
            return preferred
        digest = hashlib.sha1(str(self.root).encode()).hexdigest()[:12]
        fallback = Path(tempfile.gettempdir()) / f"oh-{digest}"
        if len(str(fallback / "supervisor.sock")) > IPC_PATH_LIMIT:
            raise ValueError(
                f"socket paths under {preferred} and {fallback} would pass the {IPC_PATH_LIMIT}-byte limit of "
                "unix sockets: set OH_SOCKET_DIR to a short directory"
            )
        return fallback

    def endpoint(self, name: str) -> str:
        """Return the `ipc://` endpoint for socket `name` (ingress, events, control)."""
        return f"ipc://{self.sockets / name}"

    def ensure(self) -> Home:
        """Create every directory this home needs; safe to call again."""
        for path in (self.journal, self.warehouse.parent, self.logs, self.state, self.config, self.sockets):
            path.mkdir(parents=True, exist_ok=True)
        return self
