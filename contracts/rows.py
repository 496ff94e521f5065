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

# One option-chain snapshot (one underlying, one session), as providers deliver it. Greeks follow
# oh/pricing.py: gamma per 1 of spot, vega per 0.01 vol, theta per calendar day, rho per 0.01 rate.
CHAIN = pa.schema(
    [
        pa.field("contract_symbol", pa.string(), nullable=False),  # OCC compact (oh.osi)
        pa.field("underlying", pa.string(), nullable=False),
        pa.field("snapshot_date", pa.date32(), nullable=False),
        pa.field("expiry", pa.date32(), nullable=False),
        pa.field("right", pa.string(), nullable=False),  # 'C' or 'P'
        pa.field("strike", pa.float64(), nullable=False),
        pa.field("spot", pa.float64(), nullable=False),
        pa.field("bid", pa.float64(), nullable=False),  # 0 = no bid
        pa.field("ask", pa.float64(), nullable=False),
        pa.field("last", pa.float64(), nullable=False),
        pa.field("mark", pa.float64(), nullable=False),  # oh.pricing.mark_price(bid, ask, last)
        pa.field("volume", pa.int64(), nullable=False),
        pa.field("open_interest", pa.int64(), nullable=False),
        pa.field("iv", pa.float64(), nullable=False),
        pa.field("delta", pa.float64(), nullable=False),
        pa.field("gamma", pa.float64(), nullable=False),
        pa.field("vega", pa.float64(), nullable=False),
        pa.field("theta", pa.float64(), nullable=False),
        pa.field("rho", pa.float64(), nullable=False),
    ]
)
