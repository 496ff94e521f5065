"""Arrow schemas of the bulk rows that travel inside events as Arrow IPC bytes.

Kept apart from the message types so that importing `contracts` does not import pyarrow.
"""

from __future__ import annotations

import pyarrow as pa

CANDLES = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("date", pa.date32(), nullable=False),
        pa.field("open", pa.float64(), nullable=False),
        pa.field("high", pa.float64(), nullable=False),
        pa.field("low", pa.float64(), nullable=False),
        pa.field("close", pa.float64(), nullable=False),
        pa.field("volume", pa.int64(), nullable=False),
    ]
)

# One option-chain snapshot (one underlying, one session), as providers deliver it. Greeks follow
# oh/domain/pricing.py: gamma per 1 of spot, vega per 0.01 vol, theta per calendar day, rho per 0.01 rate.
CHAIN = pa.schema(
    [
        pa.field("contract_symbol", pa.string(), nullable=False),  # OCC compact (oh.domain.osi)
        pa.field("underlying", pa.string(), nullable=False),
        pa.field("snapshot_date", pa.date32(), nullable=False),
        pa.field("expiry", pa.date32(), nullable=False),
        pa.field("right", pa.string(), nullable=False),  # 'C' or 'P'
        pa.field("strike", pa.float64(), nullable=False),
        pa.field("spot", pa.float64(), nullable=False),
        pa.field("bid", pa.float64(), nullable=False),  # 0 = no bid
        pa.field("ask", pa.float64(), nullable=False),
        pa.field("last", pa.float64(), nullable=False),
        pa.field("mark", pa.float64(), nullable=False),  # oh.domain.pricing.mark_price(bid, ask, last)
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

# Flow rows of one symbol and window, every grouping (see oh/domain/flow.py and docs/flow.md).
FLOW = pa.schema(
    [
        pa.field("symbol", pa.string()),
        pa.field("from_date", pa.date32()),
        pa.field("to_date", pa.date32()),
        pa.field("window", pa.int32()),
        pa.field("group_by", pa.string()),
        pa.field("row_key", pa.string()),
        pa.field("right", pa.string()),
        pa.field("expiry", pa.date32()),
        pa.field("strike", pa.float64()),
        pa.field("oi_before", pa.int64()),
        pa.field("oi_today", pa.int64()),
        pa.field("d_oi", pa.int64()),
        pa.field("d_oi_notional", pa.float64()),
        pa.field("volume", pa.int64()),
        pa.field("volume_notional", pa.float64()),
        pa.field("volume_oi_ratio", pa.float64()),
        pa.field("delta_notional", pa.float64()),
        pa.field("rows", pa.int64()),
        pa.field("label", pa.string()),
    ]
)

# One derived-metrics row per symbol and session (see oh/domain/derived.py and docs/derived.md).
DERIVED = pa.schema(
    [
        pa.field("symbol", pa.string(), nullable=False),
        pa.field("session_date", pa.date32(), nullable=False),
        pa.field("formula_version", pa.int32(), nullable=False),
        pa.field("spot", pa.float64()),  # currency
        pa.field("pcr_oi", pa.float64()),  # put OI / call OI
        pa.field("pcr_volume", pa.float64()),  # put volume / call volume
        pa.field("call_wall", pa.float64()),  # strike
        pa.field("put_wall", pa.float64()),  # strike
        pa.field("gamma_peak_strike", pa.float64()),  # strike
        pa.field("front_expiry", pa.date32()),
        pa.field("second_expiry", pa.date32()),
        pa.field("atm_strike", pa.float64()),  # strike (front expiry)
        pa.field("atm_iv", pa.float64()),  # annual decimal
        pa.field("expected_move_pct", pa.float64()),  # percent of spot
        pa.field("skew_25d_pts", pa.float64()),  # vol points
        pa.field("term_slope_pts", pa.float64()),  # vol points
        pa.field("atm_iv_30d", pa.float64()),  # annual decimal
        pa.field("max_pain", pa.float64()),  # strike
        pa.field("net_gex", pa.float64()),  # currency per 1% move of spot
        pa.field("rv_20", pa.float64()),  # annual decimal
        pa.field("rv_60", pa.float64()),  # annual decimal
        pa.field("iv_rv_20", pa.float64()),  # ratio
        pa.field("iv_rv_60", pa.float64()),  # ratio
        pa.field("iv_percentile", pa.float64()),  # 0..100
        pa.field("iv_rank", pa.float64()),  # 0..100
        pa.field("iv_history_count", pa.int32(), nullable=False),  # prior values used
    ]
)

# Daily bars of option contracts (one underlying, one session), as providers deliver them.
OPTION_BARS = pa.schema(
    [
        pa.field("contract_symbol", pa.string(), nullable=False),  # OCC compact (oh.domain.osi)
        pa.field("underlying", pa.string(), nullable=False),
        pa.field("date", pa.date32(), nullable=False),
        pa.field("open", pa.float64(), nullable=False),
        pa.field("high", pa.float64(), nullable=False),
        pa.field("low", pa.float64(), nullable=False),
        pa.field("close", pa.float64(), nullable=False),
        pa.field("volume", pa.int64(), nullable=False),
        pa.field("trade_count", pa.int64(), nullable=False),
        pa.field("vwap", pa.float64(), nullable=False),
    ]
)
