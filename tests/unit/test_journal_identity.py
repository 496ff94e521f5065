"""A journal's identity (bus/journal_identity.py): written once by the first writer, kept by every reopen,
never written by a reader; and the worker offset file that records it (services/runtime.py)."""

from __future__ import annotations

from pathlib import Path

import pytest

from bus.errors import HomeError
from bus.journal import Journal
from bus.journal_identity import IDENTITY_FILE, read_identity
from services.runtime import read_offset, write_offset


def test_the_first_writer_names_the_journal_and_reopening_keeps_the_name(tmp_path: Path) -> None:
    """A new journal gets a 32-hex id, written before any segment; a reopen, by a writer or a reader, sees the same."""
    directory = tmp_path / "journal"
    first = Journal(directory)
    identity = first.identity
    first.close()
    assert len(identity) == 32 and int(identity, 16) >= 0
    assert read_identity(directory) == identity
    again = Journal(directory)
    assert again.identity == identity
    again.close()
    assert Journal(directory, read_only=True).identity == identity


def test_a_reader_never_writes_one_and_a_journal_from_before_ids_gets_one_from_its_writer(tmp_path: Path) -> None:
    """read_only opens change no byte: a journal without an id reads as "" until a writer opens it."""
    directory = tmp_path / "journal"
    Journal(directory).close()
    (directory / IDENTITY_FILE).unlink()  # a journal written before ids
    assert Journal(directory, read_only=True).identity == ""
    assert not (directory / IDENTITY_FILE).exists()
    writer = Journal(directory)
    assert writer.identity and read_identity(directory) == writer.identity
    writer.close()


@pytest.mark.parametrize("content", ["", "x", "12 " + "0" * 31, "zz" * 16, "0" * 32 + "0"])
def test_an_unreadable_identity_file_reads_as_none(tmp_path: Path, content: str) -> None:
    """Anything but 32 hex digits is no id (the writer then writes a fresh one): never a crash, never garbage."""
    (tmp_path / IDENTITY_FILE).write_text(content)
    assert read_identity(tmp_path) == ""


@pytest.mark.parametrize(("content", "expected"), [("", (0, None)), ("17", (17, None)), ("17\n", (17, None)),
                                                   ("17 " + "a" * 32, (17, "a" * 32))])
def test_a_worker_reads_its_offset_with_or_without_the_journal_id(tmp_path: Path, content: str,
                                                                  expected: tuple[int, str | None]) -> None:
    """The offset file holds "<seq> <journal id>"; a bare seq (written before ids) is that seq in any journal."""
    (tmp_path / "ingest.offset").write_text(content)
    assert read_offset(tmp_path / "ingest.offset", "ingest") == expected


def test_an_offset_is_written_with_its_journal_and_read_back(tmp_path: Path) -> None:
    """What a worker writes after each message is what it reads on restart; no file is a first start."""
    path = tmp_path / "ingest.offset"
    assert read_offset(path, "ingest") == (0, None)
    write_offset(path, 42, "b" * 32)
    assert read_offset(path, "ingest") == (42, "b" * 32)
    write_offset(path, 43, None)  # a ledger from before ids
    assert read_offset(path, "ingest") == (43, None)


def test_a_garbled_offset_file_is_a_one_line_error_naming_the_fix(tmp_path: Path) -> None:
    """Not a traceback: which file, what it holds, and that deleting it is safe."""
    (tmp_path / "ingest.offset").write_text("seventeen")
    with pytest.raises(HomeError, match=r"ingest\.offset does not hold a seq \('seventeen'\): delete it"):
        read_offset(tmp_path / "ingest.offset", "ingest")
