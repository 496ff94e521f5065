"""`oh ui` that cannot start says why in one line: the address only when the address is the trouble.

Protects: every OSError at start was reported as "cannot serve the dashboard on HOST:PORT ... (another `oh ui`
running?)", a missing file of the dashboard's too (an installed wheel without panel_app/static/oh_layout.js
said so on every restart, naming a port that was free).
"""

from __future__ import annotations

import errno
from typing import Any

import pytest
from typer.testing import CliRunner

from bus.home import Home
from oh.cli.main import app


@pytest.mark.parametrize(("raised", "said", "blamed"), [
    (OSError(errno.EADDRINUSE, "Address already in use"), "Address already in use", True),
    (FileNotFoundError(errno.ENOENT, "No such file or directory", "/x/panel_app/static/oh_layout.js"),
     "oh_layout.js", False),
])
def test_a_start_error_names_what_failed(home: Home, monkeypatch: pytest.MonkeyPatch, raised: OSError, said: str,
                                         blamed: bool) -> None:
    from panel_app import server  # here, not at the top: only the worker that runs it pays for Panel

    def refuse(*_: Any, **__: Any) -> None:
        raise raised

    monkeypatch.setattr(server, "serve", refuse)
    result = CliRunner().invoke(app, ["ui", "--port", "5999"])
    assert result.exit_code == 1
    line = result.output.strip()
    assert "\n" not in line and said in line and "cannot serve the dashboard" in line, line
    assert ("another `oh ui` running?" in line) is blamed and ("127.0.0.1:5999" in line) is blamed, line
