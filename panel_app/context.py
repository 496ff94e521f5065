"""The server process's shared state: its OH_HOME, the query cache and the live hub (one each)."""

from __future__ import annotations

from dataclasses import dataclass

from bus.home import Home
from panel_app.data import Queries
from panel_app.live import LiveHub


@dataclass
class AppContext:
    """Everything a page needs from the process: where the data is, how to read it, what is happening."""

    home: Home
    queries: Queries
    hub: LiveHub

    def close(self) -> None:
        """Stop the live thread and close the query socket."""
        self.hub.stop()
        self.queries.close()


_current: AppContext | None = None


def start(home: Home, feed_size: int = 256) -> AppContext:
    """Create the process's context and start its live thread (once per server)."""
    global _current
    if _current is None:
        queries = Queries(home)
        _current = AppContext(home, queries, LiveHub(home, queries, maxlen=feed_size).start())
    return _current


def get() -> AppContext:
    """The running context (start() must have been called by the server)."""
    if _current is None:
        raise RuntimeError("the dashboard context is not started: run `oh ui`")
    return _current


def stop() -> None:
    """Stop and forget the context."""
    global _current
    if _current is not None:
        _current.close()
        _current = None
