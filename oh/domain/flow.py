"""Open-interest / volume flow between option-chain snapshots (pure: Arrow in, Arrow out).

`contract_flow` joins two snapshot sessions per contract on its OCC symbol and computes the
change in open interest, its notional, the volume's notional, volume/OI and the delta notional,
then labels each contract building / unwinding / churn / unknown. `group_flow` sums contract
rows by contract, strike, expiry or expiry-strike (each split by call/put) over a window and
labels the sums with the same rule. `window_pairs` picks the consecutive session pairs of a
`--window N` ending at `--as-of D`, and `compute_flow` chains the three. See docs/flow.md.

Nothing here reads files or sockets; a missing value stays missing (null), never zero.
"""

from __future__ import annotations

import itertools
from datetime import date

import numpy as np
import numpy.typing as npt
import pyarrow as pa
import pyarrow.compute as pc

from contracts import rows
from oh.domain.osi import CONTRACT_MULTIPLIER

BUILD_MIN = 10  # |dOI| must reach max(BUILD_MIN, OI before / BUILD_DIV) to build or unwind
BUILD_DIV = 10  # ... i.e. 10% of OI before
CHURN_MIN = 50  # volume must reach max(CHURN_MIN, OI before / CHURN_DIV) to be churn
CHURN_DIV = 2  # ... i.e. 50% of OI before
GROUP_BYS = ("contract", "strike", "expiry", "expiry-strike")

BUILDING, UNWINDING, CHURN, UNKNOWN = "building", "unwinding", "churn", "unknown"

CONTRACT_FLOW_SCHEMA = pa.schema(
    [
        pa.field("symbol", pa.string()),
        pa.field("from_date", pa.date32()),
        pa.field("to_date", pa.date32()),
        pa.field("contract_symbol", pa.string()),
        pa.field("expiry", pa.date32()),
        pa.field("right", pa.string()),
        pa.field("strike", pa.float64()),
        pa.field("oi_before", pa.int64()),
        pa.field("oi_today", pa.int64()),
        pa.field("d_oi", pa.int64()),
        pa.field("d_oi_notional", pa.float64()),
        pa.field("volume", pa.int64()),
        pa.field("volume_notional", pa.float64()),
        pa.field("volume_oi_ratio", pa.float64()),
        pa.field("delta_notional", pa.float64()),
        pa.field("label", pa.string()),
    ]
)

# The columns of a stored chain (oh.read.quotes.CHAIN_COLUMNS) contract_flow reads: a job reads only these.
CHAIN_INPUTS = ("contract_symbol", "underlying", "snapshot_date", "expiry", "right", "strike", "spot", "mark", "volume",
                "open_interest", "delta")

_SUMMED = ("oi_before", "oi_today", "d_oi", "d_oi_notional", "volume", "volume_notional", "delta_notional")

GROUP_FLOW_SCHEMA = rows.FLOW  # the wire schema of flow rows (contracts/rows.py)

# The natural key a flow row is persisted (upserted) under.
PERSISTED_KEY = ("symbol", "from_date", "to_date", "window", "group_by", "row_key")


# ---------------------------------------------------------------- labels


def label(d_oi: pa.Array, oi_before: pa.Array, oi_today: pa.Array, volume: pa.Array) -> pa.Array:
    """Label each row from its dOI, OI before, OI today and volume (integers, nulls allowed).

    unknown when either OI is missing; building when dOI >= max(10, 10% of OI before);
    unwinding when dOI <= -max(10, 10% of OI before); churn when volume >= max(50, 50% of OI
    before); else unknown. The comparisons are done in integers (10 * dOI >= OI before rather
    than dOI >= 0.1 * OI before) so a boundary is never missed by a float rounding.
    """
    known = (pc.is_valid(oi_before).to_numpy(zero_copy_only=False)
             & pc.is_valid(oi_today).to_numpy(zero_copy_only=False)
             & pc.is_valid(d_oi).to_numpy(zero_copy_only=False))
    d = _ints(d_oi)
    base = _ints(oi_before)
    vol = _ints(volume)
    has_vol = pc.is_valid(volume).to_numpy(zero_copy_only=False)
    building = known & (d >= BUILD_MIN) & (BUILD_DIV * d >= base)
    unwinding = known & (d <= -BUILD_MIN) & (BUILD_DIV * d <= -base)
    churn = known & has_vol & (vol >= CHURN_MIN) & (CHURN_DIV * vol >= base)
    out = np.select([building, unwinding, churn], [BUILDING, UNWINDING, CHURN], default=UNKNOWN)
    return pa.array(out.astype(object), pa.string())


def _ints(a: pa.Array) -> npt.NDArray[np.int64]:
    return np.asarray(pc.fill_null(pc.cast(a, pa.int64()), 0).to_numpy(zero_copy_only=False), dtype=np.int64)


# ---------------------------------------------------------------- one pair of sessions


def _session_date(table: pa.Table, side: str) -> date:
    dates = pc.unique(table.column("snapshot_date")).drop_null()
    if len(dates) != 1:
        raise ValueError(f"the {side} chain must hold exactly one snapshot_date, found {len(dates)}")
    d: date = dates[0].as_py()
    return d


def _clean(a: pa.ChunkedArray) -> pa.ChunkedArray:
    """Float column with NaN (a price the model or the provider could not give) as null."""
    a = pc.cast(a, pa.float64())
    return pc.if_else(pc.is_nan(a), pa.scalar(None, pa.float64()), a)


def _side(table: pa.Table, suffix: str, columns: tuple[str, ...]) -> pa.Table:
    if pc.count_distinct(table.column("contract_symbol")).as_py() != table.num_rows:
        raise ValueError(f"a chain lists a contract_symbol twice (the {suffix[1:]} side)")
    out = {"contract_symbol": table.column("contract_symbol")}
    for name in columns:
        out[name + suffix] = table.column(name)
    out["present" + suffix] = pa.chunked_array([pa.array(np.ones(table.num_rows, dtype=bool))])
    return pa.table(out)


def contract_flow(before: pa.Table, today: pa.Table) -> pa.Table:
    """Flow of every contract in either chain, from the `before` session to the `today` session.

    Both tables have CHAIN_SCHEMA's columns (nulls allowed), one snapshot_date each, and are
    joined on contract_symbol (full outer join: a contract on one side only gets a row with
    that side's OI missing, label unknown). Mark, volume, delta and spot come from today's
    row; a contract missing today takes before's mark (which changes no metric: every metric
    that uses the mark also uses today's OI or volume, which are then missing). A NaN mark,
    delta or spot counts as missing. Rows come back sorted by contract_symbol
    (schema CONTRACT_FLOW_SCHEMA).
    """
    from_date, to_date = _session_date(before, "before"), _session_date(today, "today")
    if from_date >= to_date:
        raise ValueError(f"the before chain ({from_date}) must be from a session before today's ({to_date})")
    keys = ("underlying", "expiry", "right", "strike", "open_interest", "mark")
    b = _side(before, "_b", keys)
    t = _side(today, "_t", (*keys, "volume", "delta", "spot"))
    j = b.join(t, keys="contract_symbol", join_type="full outer", coalesce_keys=True)
    j = j.sort_by("contract_symbol")

    def both(name: str) -> pa.ChunkedArray:  # today's value, else before's
        return pc.coalesce(j.column(name + "_t"), j.column(name + "_b"))

    in_today = pc.fill_null(j.column("present_t"), False)
    oi_b = pc.cast(j.column("open_interest_b"), pa.int64())
    oi_t = pc.cast(j.column("open_interest_t"), pa.int64())
    d_oi = pc.subtract(oi_t, oi_b)
    mark = pc.if_else(in_today, _clean(j.column("mark_t")), _clean(j.column("mark_b")))
    volume = pc.cast(j.column("volume_t"), pa.int64())
    mult = float(CONTRACT_MULTIPLIER)
    d_oi_f = pc.cast(d_oi, pa.float64())
    vol_f = pc.cast(volume, pa.float64())
    denominator = pc.cast(pc.max_element_wise(oi_b, pa.scalar(1, pa.int64()), skip_nulls=False), pa.float64())
    n = j.num_rows
    columns = {
        "symbol": both("underlying"),
        "from_date": pa.array(np.full(n, np.datetime64(from_date, "D")), pa.date32()),
        "to_date": pa.array(np.full(n, np.datetime64(to_date, "D")), pa.date32()),
        "contract_symbol": j.column("contract_symbol"),
        "expiry": both("expiry"),
        "right": both("right"),
        "strike": pc.cast(both("strike"), pa.float64()),
        "oi_before": oi_b,
        "oi_today": oi_t,
        "d_oi": d_oi,
        "d_oi_notional": pc.multiply(pc.multiply(d_oi_f, mark), mult),
        "volume": volume,
        "volume_notional": pc.multiply(pc.multiply(vol_f, mark), mult),
        "volume_oi_ratio": pc.divide(vol_f, denominator),
        "delta_notional": pc.multiply(
            pc.multiply(pc.multiply(d_oi_f, _clean(j.column("delta_t"))), _clean(j.column("spot_t"))), mult
        ),
        "label": label(_flat(d_oi), _flat(oi_b), _flat(oi_t), _flat(volume)),
    }
    return pa.table(columns, schema=CONTRACT_FLOW_SCHEMA)


def _flat(a: pa.ChunkedArray | pa.Array) -> pa.Array:
    return a.combine_chunks() if isinstance(a, pa.ChunkedArray) else a


# ---------------------------------------------------------------- grouping


def _row_key(t: pa.Table, group_by: str) -> pa.ChunkedArray:
    if group_by == "contract":
        return t.column("contract_symbol")
    strike = pc.cast(t.column("strike"), pa.string())  # 150.0 -> "150", 152.5 -> "152.5"
    expiry = pc.cast(t.column("expiry"), pa.string())  # ISO date
    parts = {"strike": [t.column("right"), strike], "expiry": [t.column("right"), expiry],
             "expiry-strike": [t.column("right"), expiry, strike]}[group_by]
    return pc.binary_join_element_wise(*parts, "|")


def group_flow(contract_rows: pa.Table, group_by: str, window: int) -> pa.Table:
    """Sum contract flow rows into one row per (symbol, group), each group split by call/put.

    `contract_rows` is contract_flow output, possibly for several consecutive pairs: the result
    spans them, from the earliest from_date to the latest to_date (one row set per window).
    Flows (dOI, volume and the notionals) are summed over every row; levels are not summed over
    time: oi_before sums the OI at the window's first session (rows whose from_date is the
    earliest), oi_today the OI at its last session (rows whose to_date is the latest). A sum
    whose inputs are all missing stays missing (null), never 0. volume_oi_ratio is recomputed
    from the sums, volume / max(oi_before, 1), and the label applies the contract rule to the
    sums. `rows` counts the contract rows summed. Rows come back sorted by symbol, expiry, right,
    strike, row_key (schema GROUP_FLOW_SCHEMA).
    """
    if group_by not in GROUP_BYS:
        raise ValueError(f"group_by must be one of {', '.join(GROUP_BYS)}, not {group_by!r}")
    if window < 1:
        raise ValueError(f"window must be at least 1 session pair, not {window}")
    if contract_rows.num_rows == 0:
        return GROUP_FLOW_SCHEMA.empty_table()
    first = pc.min(contract_rows.column("from_date"))
    last = pc.max(contract_rows.column("to_date"))
    null_int = pa.scalar(None, pa.int64())
    t = contract_rows.set_column(
        contract_rows.schema.get_field_index("oi_before"), "oi_before",
        pc.if_else(pc.equal(contract_rows.column("from_date"), first), contract_rows.column("oi_before"), null_int),
    )
    t = t.set_column(
        t.schema.get_field_index("oi_today"), "oi_today",
        pc.if_else(pc.equal(t.column("to_date"), last), t.column("oi_today"), null_int),
    )
    t = t.append_column("row_key", _row_key(t, group_by))
    keys = ["symbol", "row_key", "right"]
    if group_by in ("contract", "expiry", "expiry-strike"):
        keys.append("expiry")
    if group_by in ("contract", "strike", "expiry-strike"):
        keys.append("strike")
    non_null_sum = pc.ScalarAggregateOptions(skip_nulls=True, min_count=1)
    aggregates = [(c, "sum", non_null_sum) for c in _SUMMED]
    aggregates.append(("row_key", "count", pc.CountOptions(mode="all")))
    g = t.group_by(keys, use_threads=False).aggregate(aggregates)
    order = [(k, "ascending") for k in ("symbol", "expiry", "right", "strike", "row_key") if k in keys]
    g = g.sort_by(order)  # chain order: expiry, calls before puts, strike
    n = g.num_rows

    def col(name: str) -> pa.Array:
        return _flat(g.column(name))

    sums = {c: pc.cast(col(f"{c}_sum"), CONTRACT_FLOW_SCHEMA.field(c).type) for c in _SUMMED}
    denominator = pc.cast(pc.max_element_wise(sums["oi_before"], pa.scalar(1, pa.int64()), skip_nulls=False),
                          pa.float64())
    columns = {
        "symbol": col("symbol"),
        "from_date": pa.array([first.as_py()] * n, pa.date32()),
        "to_date": pa.array([last.as_py()] * n, pa.date32()),
        "window": pa.array(np.full(n, window, dtype=np.int32)),
        "group_by": pa.array([group_by] * n, pa.string()),
        "row_key": col("row_key"),
        "right": col("right"),
        "expiry": col("expiry") if "expiry" in keys else pa.nulls(n, pa.date32()),
        "strike": col("strike") if "strike" in keys else pa.nulls(n, pa.float64()),
        **sums,
        "volume_oi_ratio": pc.divide(pc.cast(sums["volume"], pa.float64()), denominator),
        "rows": pc.cast(col("row_key_count"), pa.int64()),
        "label": label(sums["d_oi"], sums["oi_before"], sums["oi_today"], sums["volume"]),
    }
    ordered = {name: columns[name] for name in GROUP_FLOW_SCHEMA.names}
    return pa.table(ordered, schema=GROUP_FLOW_SCHEMA)


# ---------------------------------------------------------------- windows


def window_pairs(sessions: list[date], as_of: date, window: int) -> list[tuple[date, date]]:
    """Consecutive pairs among the last `window` + 1 snapshot sessions on or before `as_of`.

    Sessions after `as_of` are never used. With fewer sessions available the window is shorter
    (the pairs there are); with none, or `window` < 1, this raises ValueError.
    """
    if window < 1:
        raise ValueError(f"window must be at least 1 session pair, not {window}")
    usable = sorted({d for d in sessions if d <= as_of})[-(window + 1):]
    if len(usable) < 2:
        raise ValueError(
            f"flow needs two snapshot sessions on or before {as_of}; found {len(usable)}"
        )
    return list(itertools.pairwise(usable))


def flow_rows(chains: dict[date, pa.Table], pairs: list[tuple[date, date]], window: int) -> pa.Table:
    """One symbol's flow over `pairs` (window_pairs), every grouping of GROUP_BYS one after the other: the rows
    a flow partition stores (the contract join once, then each grouping)."""
    contracts = pa.concat_tables([contract_flow(chains[a], chains[b]) for a, b in pairs])
    return pa.concat_tables([group_flow(contracts, g, window) for g in GROUP_BYS])


def flow_rows_many(chains: dict[str, dict[date, pa.Table]], pairs: list[tuple[date, date]],
                   window: int) -> dict[str, pa.Table]:
    """`flow_rows` of each symbol of `chains` over the same `pairs`, computed for all of them at once: {symbol: rows}.

    Each symbol's rows are exactly `flow_rows(chains[symbol], pairs, window)`: the chains of every symbol are
    joined in one `contract_flow` per pair (a contract symbol names its root, so contracts of different
    symbols never meet; rows stay sorted by contract symbol, so each symbol's rows keep their order) and summed
    in one `group_flow` per grouping, whose groups are already per symbol and which sorts by symbol first. Many
    small symbols so cost a few Arrow calls instead of ~60 each. Raises what any symbol's chains raise; the
    caller then computes them one by one to say which.
    """
    symbols = list(chains)
    if not symbols:
        return {}
    contracts = pa.concat_tables([
        contract_flow(pa.concat_tables([chains[s][a] for s in symbols]), pa.concat_tables([chains[s][b] for s in symbols]))
        for a, b in pairs
    ])
    per_grouping = [_split_by_symbol(group_flow(contracts, g, window)) for g in GROUP_BYS]
    missing = [s for s in symbols if any(s not in rows for rows in per_grouping)]
    if missing:
        raise ValueError(f"no flow rows for {', '.join(missing[:5])} in a batch: computed one by one instead")
    return {s: pa.concat_tables([rows[s] for rows in per_grouping]) for s in symbols}


def _split_by_symbol(table: pa.Table) -> dict[str, pa.Table]:
    """Slices of a table sorted by `symbol`, one per symbol (zero-copy)."""
    if not table.num_rows:
        return {}
    column = table.column("symbol").combine_chunks()
    changed = pc.not_equal(column.slice(1), column.slice(0, len(column) - 1))
    starts = [0, *(pc.indices_nonzero(changed).to_numpy() + 1).tolist()]
    ends = [*starts[1:], len(column)]
    return {column[a].as_py(): table.slice(a, b - a) for a, b in zip(starts, ends, strict=True)}


def compute_flow(chains: dict[date, pa.Table], as_of: date, window: int, group_by: str) -> pa.Table:
    """Flow for `--as-of as_of --window window --group-by group_by` from chains keyed by session.

    Each consecutive pair in the window gets contract_flow; the pairs' rows are then summed into
    one row set spanning from_date = the window's first session .. to_date = its last (see
    group_flow), which is what the persisted key (symbol, from_date, to_date, window, group_by,
    row_key) names.
    """
    pairs = window_pairs(list(chains), as_of, window)
    rows = pa.concat_tables([contract_flow(chains[a], chains[b]) for a, b in pairs])
    return group_flow(rows, group_by, window)
