"""The DuckDB file: opened read-write by the ledger alone, written one transaction per batch.

Each batch of events is applied together with the new offset in one transaction, so after a
crash the file holds either the whole batch or none of it, and recovery re-applies from the
journal exactly what is missing.

The warehouse is never rebuilt from a journal that holds less than it has committed: `catch_up`
raises WarehouseAhead and `rebuild` refuses (WarehouseAhead, or JournalCorrupt for a damaged
journal), because the tables would lose committed rows. A COMMIT that fails for want of disk
space, or because the journal's fsync failed, or for want of memory, is raised as it is (the batch
stays in the journal and is applied again later); only other errors are blamed on the events and isolated.

DuckDB's buffer pool is capped by `OH_DUCKDB_MEMORY_LIMIT` (default `1GB`; any size DuckDB's
`memory_limit` accepts: `512MB`, `2GB`, ...), set on every opening before the sandbox locks the
settings: without it DuckDB keeps up to 80% of the machine's RAM of what it touched, so the ledger's
resident size grew with the width of the market it stored. Past the cap DuckDB evicts or spills to its
temporary directory; what cannot be (a transaction's own working set) is an out-of-memory error, which
stalls the ledger (retried) and never rejects an event. The ledger's opening runs DuckDB on half the cores
(`LEDGER_THREADS`, `OH_DUCKDB_THREADS` overrides): one on a 2-core box, where its many small writes cost less
CPU so.
"""

from __future__ import annotations

import logging
import os
import shutil
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow as pa

from bus.codec import decode_message
from bus.journal import Frame, Journal, JournalCorrupt
from contracts import Message
from services.ledger import projections, schema
from services.ledger.stall import JournalNotDurable, is_disk_full
from services.settings import env_int

log = logging.getLogger(__name__)

REPLAY_CHUNK_FRAMES = 2000
REPLAY_CHUNK_BYTES = 64 * 1024 * 1024
MEMORY_LIMIT_ENV = "OH_DUCKDB_MEMORY_LIMIT"
DEFAULT_MEMORY_LIMIT = "1GB"
THREADS_ENV = "OH_DUCKDB_THREADS"


def ledger_threads(cpus: int | None) -> int:
    """DuckDB's threads in the ledger's warehouse on a machine of `cpus` cores (unless OH_DUCKDB_THREADS says
    otherwise, see `_set_threads`): half of them, at least one. The ledger shares the machine with a dozen
    processes, and most of its statements are small writes; on a 2-core box that is one thread."""
    return max(1, (cpus or 1) // 2)


LEDGER_THREADS = ledger_threads(os.cpu_count())


# Applied to every opening of the warehouse, in this order, after the ledger's own settings: from
# then on no connection of this database (the ledger's, its cursors, the query endpoint's) can read
# or write a file other than the database's own, reach the network, install or load an extension,
# read the environment (`getenv` is not even defined) or change any setting, this list included.
# DuckDB enforces it; the ledger's writes are unaffected (they `register` their Arrow tables: a
# replacement scan of a Python variable is external access and no longer works).
SANDBOX_SETTINGS = (
    "SET enable_external_access = false",
    "SET autoinstall_known_extensions = false",
    "SET autoload_known_extensions = false",
    "SET lock_configuration = true",
)


def warm_up() -> None:
    """Pay DuckDB's lazy imports now, on a scratch in-memory database: its first Arrow `register` imports
    pandas (DuckDB checks every Python object it is given against pandas' types), which cost the first
    batch of events 0.2-1 s. The ledger runs this in a thread once it is ready, while it waits for work."""
    con = duckdb.connect()
    try:
        con.register("_warm", pa.table({"x": [1]}))
        con.execute("SELECT count(*) FROM _warm").fetchall()
    finally:
        con.close()


class WarehouseAhead(RuntimeError):
    """The warehouse committed seqs the journal does not hold: rebuilding from it would lose them."""


def connect(path: Path, read_only: bool = False, threads: int | None = None) -> duckdb.DuckDBPyConnection:
    """Open the warehouse with UTC as its time zone, then lock it down (see SANDBOX_SETTINGS).

    `threads`: DuckDB's threads unless `OH_DUCKDB_THREADS` says otherwise (None: DuckDB's default)."""
    con = duckdb.connect(str(path), read_only=read_only)
    try:
        [(locked, external)] = con.execute(
            "SELECT current_setting('lock_configuration'), current_setting('enable_external_access')"
        ).fetchall()
        if locked and not external:
            return con  # this process has the file open already (DuckDB shares the instance): locked down
        con.execute("SET TimeZone = 'UTC'")
        _set_memory_limit(con)
        _set_threads(con, threads)
        for setting in SANDBOX_SETTINGS:
            con.execute(setting)
    except BaseException:
        con.close()
        raise
    return con


def _set_memory_limit(con: duckdb.DuckDBPyConnection) -> None:
    """Cap DuckDB's buffer pool at `OH_DUCKDB_MEMORY_LIMIT`; a value DuckDB refuses is a one-line error."""
    value = os.environ.get(MEMORY_LIMIT_ENV, "").strip() or DEFAULT_MEMORY_LIMIT
    try:
        con.execute(f"SET memory_limit = '{value.replace(chr(39), '')}'")
    except duckdb.Error as exc:
        raise SystemExit(f"{MEMORY_LIMIT_ENV}={value!r} is not a memory size DuckDB accepts (e.g. 512MB, 2GB): "
                         f"{str(exc).splitlines()[0]}") from None


def _set_threads(con: duckdb.DuckDBPyConnection, default: int | None) -> None:
    """DuckDB's worker threads: `OH_DUCKDB_THREADS` (a whole number of at least 1) if set, else `default` (None: DuckDB's own,
    one per core). The ledger opens its warehouse with LEDGER_THREADS.

    The ledger's writes are many small statements: on a busy 2-core box, handing their work to a second thread
    costs more in scheduling than it saves (inserting 840,000 chain rows in 20-chain transactions: 4.4 CPU-s with
    1 thread, 5.1-5.3 with 2; the full-market day: bench/README.md). The setting is the database's: the query
    endpoint's reads run on as many threads."""
    chosen = env_int(THREADS_ENV, 0, 1) or default  # 0: unset
    if chosen is not None:
        con.execute(f"SET threads = {chosen}")


def is_storage_failure(exc: BaseException) -> bool:
    """A failure that says nothing about the events: no disk space, no memory, the journal not durable, or a
    DuckDB FATAL error (the database is invalidated until reopened, e.g. a checkpoint that could not pin a
    block: every later statement fails, so blaming events would reject all of them; the ledger stalls instead,
    and a restart recovers from the journal)."""
    return (isinstance(exc, JournalNotDurable | duckdb.OutOfMemoryException | duckdb.FatalException)
            or is_disk_full(exc))


class Warehouse:
    """The ledger's read-write connection and the transactions that keep it in step with the journal."""

    def __init__(self, path: Path) -> None:
        self.path = path
        path.parent.mkdir(parents=True, exist_ok=True)
        self.generation = 0
        self.invalidated = False  # a DuckDB FATAL error ended a transaction: reopen before the next catch-up
        self._open()

    def _open(self) -> None:
        """Open the file, check its schema version (older: set aside, rebuilt by catch-up; newer: refused)."""
        self._connect()
        found = schema.stored_version(self.con)
        if found is not None and found > schema.SCHEMA_VERSION:
            self.con.close()
            raise SystemExit(f"ledger: {schema.too_new(self.path, found)}")
        if found is not None and found < schema.SCHEMA_VERSION:
            self.con.close()
            kept = self._set_aside(f"schema-v{found}")
            log.warning(
                "warehouse schema version %d is older than this oh's %d: moved it to %s and rebuilding the "
                "warehouse from the journal", found, schema.SCHEMA_VERSION, kept,
            )
            self._connect()
        schema.create_schema(self.con)
        self.applied_seq = schema.applied_seq(self.con)
        self.generation += 1

    def _connect(self) -> None:
        try:
            self.con = connect(self.path, threads=LEDGER_THREADS)
        except duckdb.IOException as exc:
            if is_disk_full(exc):
                raise  # the ledger waits for space instead of exiting into a restart loop
            raise SystemExit(f"ledger: cannot open {self.path} read-write (is another ledger running?): {exc}") from None

    def _set_aside(self, suffix: str) -> Path:
        """Move the closed file (and its WAL) to `<file>.<suffix>`, replacing an older copy; return where."""
        kept = Path(f"{self.path}.{suffix}")
        for source, target in ((self.path, kept), (Path(f"{self.path}.wal"), Path(f"{kept}.wal"))):
            if source.exists():
                os.replace(source, target)
            else:
                target.unlink(missing_ok=True)
        return kept

    def reopen(self) -> None:
        """Close the connection and open the file again: after a DuckDB FATAL error the database is invalidated
        (every statement fails) until it is reopened. What was committed is in the file and its WAL; the
        journal's events beyond `applied_seq` are applied by the next `catch_up`."""
        try:
            self.con.close()
        except duckdb.Error:
            pass  # an invalidated connection may refuse even to close
        self._open()
        self.invalidated = False

    def reader(self) -> duckdb.DuckDBPyConnection:
        """A cursor for another thread: reads run beside the writer without blocking it."""
        return self.con.cursor()

    def close(self) -> None:
        """Checkpoint and close the file."""
        self.con.close()

    # -- writing ---------------------------------------------------------------------------
    def commit(
        self,
        events: Sequence[tuple[int, Message]],
        sizes: Sequence[int],
        before_commit: Callable[[], object] | None = None,
    ) -> list[tuple[int, str]]:
        """Apply events and advance the offset in one transaction; return (seq, error) of any rejected.

        The first attempt takes every id as new (fills and check results by a plain INSERT:
        `projections.apply_events`); if it fails, the batch runs again checking each id against those stored. If that fails too, each event is
        retried alone so that one poisonous event is recorded in `ledger.rejected` (deterministically, replay
        gives the same result) instead of blocking the ledger. `before_commit` runs just before COMMIT (the
        ledger waits there for the journal's fsync, which overlaps the projection work).
        """
        if not events:
            return []
        try:
            self._transaction(events, sizes, before_commit, new_ids=True)
            return []
        except Exception as exc:
            if is_storage_failure(exc):
                raise  # the batch is applied again once the disk (or memory) allows
            if before_commit is not None:
                before_commit()  # the journal must be durable before any retry commits
        try:  # again, checking for ids stored before (a duplicate id failed `new_ids`), or to find a poisonous event
            self._transaction(events, sizes)
            return []
        except Exception as exc:  # a projection bug must not stop the ledger: isolate the event
            if is_storage_failure(exc):
                raise
            if len(events) == 1:
                seq, event = events[0]
                message = str(exc).splitlines()[0][:500]
                log.error("projection rejected seq %d (%s): %s", seq, type(event).__name__, message)
                self.con.execute("BEGIN")
                try:
                    self.con.execute("INSERT INTO ledger.rejected VALUES (?, ?, ?)", [seq, type(event).__name__, message])
                    projections.index_events(self.con, events, sizes)
                    self._set_offset(seq)
                    self.con.execute("COMMIT")
                except BaseException as exc:
                    self._rollback(exc)
                    raise
                self.applied_seq = seq
                return [(seq, message)]
        rejected: list[tuple[int, str]] = []
        for event, size in zip(events, sizes, strict=True):
            rejected += self.commit([event], [size])
        return rejected

    def _transaction(
        self,
        events: Sequence[tuple[int, Message]],
        sizes: Sequence[int],
        before_commit: Callable[[], object] | None = None,
        new_ids: bool = False,
    ) -> None:
        self.con.execute("BEGIN")
        try:
            projections.apply_events(self.con, events, new_ids=new_ids)
            projections.index_events(self.con, events, sizes)
            self._set_offset(events[-1][0])
            if before_commit is not None:
                try:
                    before_commit()
                except Exception as exc:
                    raise JournalNotDurable(f"the journal's fsync failed: {exc}") from exc
            self.con.execute("COMMIT")
        except BaseException as exc:
            self._rollback(exc)
            raise
        self.applied_seq = events[-1][0]

    def _rollback(self, failure: BaseException) -> None:
        """End the transaction `failure` broke; a FATAL one leaves the database invalidated until reopened."""
        if isinstance(failure, duckdb.FatalException):
            self.invalidated = True
        try:
            self.con.execute("ROLLBACK")
        except duckdb.Error:
            pass  # a COMMIT that failed (a full disk) has already ended the transaction

    def _set_offset(self, seq: int) -> None:
        """Write the offset inside the open transaction; `applied_seq` moves only after COMMIT."""
        self.con.execute("UPDATE ledger.offsets SET seq = ? WHERE projection = 'warehouse'", [seq])

    # -- recovery and rebuild --------------------------------------------------------------
    def catch_up(self, journal: Journal) -> int:
        """Apply whatever the journal holds beyond the committed offset; return how many events.

        Raises WarehouseAhead if the journal ends before the committed offset: the tables are kept. A warehouse
        a FATAL error invalidated is reopened first (the ledger's stall retries land here).
        """
        if self.invalidated:
            self.reopen()
        self._refuse_shorter(journal)
        return self._replay(journal.read(self.applied_seq + 1))

    def _refuse_shorter(self, journal: Journal) -> None:
        if self.applied_seq > journal.head_seq:
            cut = ", ".join(p.name for p in journal.cut_files())
            raise WarehouseAhead(
                f"the warehouse has committed through seq {self.applied_seq} but the journal ends at seq "
                f"{journal.head_seq}: seqs {journal.head_seq + 1}..{self.applied_seq} are missing from the journal"
                + (f" (bytes cut from it earlier are kept in {cut})" if cut else "")
                + "; the warehouse is kept as it is, never rebuilt from a shorter journal"
            )

    def _replay(self, frames: Iterator[Frame]) -> int:
        count = 0
        chunk: list[tuple[int, Message]] = []
        sizes: list[int] = []
        size = 0
        for frame in frames:
            chunk.append((frame.seq, decode_message(frame.payload)))
            sizes.append(len(frame.payload))
            size += len(frame.payload)
            if len(chunk) >= REPLAY_CHUNK_FRAMES or size >= REPLAY_CHUNK_BYTES:
                self.commit(chunk, sizes)
                count += len(chunk)
                chunk, sizes, size = [], [], 0
        self.commit(chunk, sizes)
        return count + len(chunk)

    def rebuild(self, journal: Journal) -> int:
        """Replace the file with one built from the whole journal; keep the old one if that fails.

        Refused (the file untouched) when the journal is damaged or holds less than the file has committed.
        """
        if journal.faults:
            raise JournalCorrupt(f"refusing to rebuild from a damaged journal: {journal.faults[0].describe()}")
        self._refuse_shorter(journal)
        started = time.perf_counter()
        self.con.close()
        backup = self.path.with_suffix(".rebuild-old")
        wal = Path(f"{self.path}.wal")
        moved = []
        for source in (self.path, wal):
            if source.exists():
                target = Path(f"{backup}{source.name.removeprefix(self.path.name)}")
                shutil.move(source, target)
                moved.append((target, source))
        try:
            self._open()
            count = self._replay(journal.read(1))
            self.con.execute("CHECKPOINT")
        except BaseException:
            log.exception("rebuild failed; restoring the previous warehouse")
            self.con.close()
            for target, source in moved:
                shutil.move(target, source)
            self._open()
            raise
        for target, _ in moved:
            target.unlink(missing_ok=True)
        log.info("rebuilt warehouse from %d events in %.2fs", count, time.perf_counter() - started)
        return count

    def open_runs(self) -> list[tuple[str, str, datetime]]:
        """(run_id, job_name, started_at) of every run still marked `started`."""
        return self.con.execute(
            "SELECT run_id, job_name, started_at FROM meta.ingestion_runs WHERE status = 'started'"
        ).fetchall()

    def recent_ids(self, limit: int) -> list[tuple[str, int]]:
        """The (id, seq) of the newest `limit` events, to seed the de-duplication window."""
        return self.con.execute(
            "SELECT id, seq FROM ledger.events ORDER BY seq DESC LIMIT ?", [limit]
        ).fetchall()
