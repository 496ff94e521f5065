"""Arrow schemas of the bulk rows that travel inside events as Arrow IPC bytes.

Kept apart from the message types so that importing `contracts` does not import pyarrow.
"""

from __future__ import annotations

import pyarrow as pa

CANDLES = pa.schema(
    [
        ("symbol", pa.string()),
        ("date", pa.date32()),
        ("open", pa.float64()),
        ("high", pa.float64()),
        ("low", pa.float64()),
        ("close", pa.float64()),
        ("volume", pa.int64()),
    ]
)
