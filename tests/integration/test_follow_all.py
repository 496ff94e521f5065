"""`oh.cli.follow.follow_all` (what `oh demo` follows its commands with): several sent commands, one subscription.

Protects: every run is followed to its end and said (rows, partitions) even when they finish in another order than
they were sent or before the follow starts (read back from the journal); a failed run among them ends the wait
with exit 1 naming it, while the run sent before it is still reported. Real ledger and ingest worker, sim data.
"""

from __future__ import annotations

from datetime import date

import pytest
import typer

from contracts import IngestCandles
from oh.cli.follow import follow_all, send
from tests.integration.conftest import Stack

pytestmark = pytest.mark.integration

START, END = date(2026, 10, 1), date(2026, 10, 30)


def test_follows_every_run_to_its_end_once_all_sent(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    """Two candle commands sent, then followed together (the first may be over already): both are said to have
    succeeded with their own rows and partitions, in one call that returns once both ended."""
    first = IngestCandles(symbols=["SPY", "AAPL"], start=START, end=END, provider="sim")
    second = IngestCandles(symbols=["MSFT"], start=START, end=END, provider="sim")
    sent = [(first, send(first), 2), (second, send(second), 1)]
    follow_all(sent, timeout=120.0)
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if "ingest_candles succeeded" in line]
    assert len(lines) == 2, out
    assert any("in 2 partitions" in line and sent[0][1][0] in line for line in lines), out
    assert any("in 1 partition " in line and sent[1][1][0] in line for line in lines), out
    assert stack.scalar("SELECT count(DISTINCT symbol) FROM candles_daily") == 3


def test_a_failed_run_among_them_is_exit_1_naming_it(stack: Stack, capsys: pytest.CaptureFixture[str]) -> None:
    """A good command, then one for a symbol the sim market does not list: exit 1 with the failed run's id and
    error; the good run sent before it was said to succeed first."""
    good = IngestCandles(symbols=["SPY"], start=START, end=END, provider="sim")
    bad = IngestCandles(symbols=["QQQQQ"], start=START, end=END, provider="sim")
    sent = [(good, send(good), 1), (bad, send(bad), 1)]
    with pytest.raises(typer.Exit) as exited:
        follow_all(sent, timeout=120.0)
    assert exited.value.exit_code == 1
    captured = capsys.readouterr()
    assert "ingest_candles succeeded: " in captured.out and sent[0][1][0] in captured.out
    assert sent[1][1][0] in captured.err and "failed" in captured.err and "QQQQQ" in captured.err
