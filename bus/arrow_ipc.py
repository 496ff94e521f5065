"""Arrow IPC stream bytes: how bulk rows (candles, chains, flow) and query results travel."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.ipc as ipc


def to_ipc(table: pa.Table) -> bytes:
    """Serialize a table to Arrow IPC stream bytes."""
    sink = pa.BufferOutputStream()
    with ipc.new_stream(sink, table.schema) as writer:
        writer.write_table(table)
    return sink.getvalue().to_pybytes()


def from_ipc(data: bytes) -> pa.Table:
    """Read Arrow IPC stream bytes back into a table (zero-copy over `data`)."""
    return ipc.open_stream(pa.py_buffer(data)).read_all()
