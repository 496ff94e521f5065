"""Open-interest/volume flow: exact formulas, label boundaries, null-aware grouping, windows."""

from __future__ import annotations

from datetime import date
from typing import Any

import pyarrow as pa
import pytest

from oh.adapters.sim.options import CHAIN_SCHEMA, option_chain
from oh.domain.flow import (
    CONTRACT_FLOW_SCHEMA,
    GROUP_FLOW_SCHEMA,
    compute_flow,
    contract_flow,
    group_flow,
    window_pairs,
)

D0, D1, D2, D3 = date(2026, 3, 2), date(2026, 3, 3), date(2026, 3, 4), date(2026, 3, 5)
EXP1, EXP2 = date(2026, 3, 20), date(2026, 4, 17)
NULLABLE = pa.schema([f.with_nullable(True) for f in CHAIN_SCHEMA])


def _occ(right: str, strike: float, expiry: date = EXP1, root: str = "XYZ") -> str:
    return f"{root}{expiry:%y%m%d}{right}{round(strike * 1000):08d}"


def _chain(day: date, rows: list[dict[str, Any]]) -> pa.Table:
    """A hand-made chain: each row gives right/strike (and optionally oi, volume, mark, ...)."""
    out: dict[str, list[Any]] = {name: [] for name in NULLABLE.names}
    for r in rows:
        right, strike, expiry = r.get("right", "C"), r.get("strike", 150.0), r.get("expiry", EXP1)
        values = {
            "contract_symbol": _occ(right, strike, expiry), "underlying": "XYZ", "snapshot_date": day,
            "expiry": expiry, "right": right, "strike": strike, "spot": r.get("spot", 150.0),
            "bid": 1.0, "ask": 1.2, "last": 1.1, "mark": r.get("mark", 1.0), "volume": r.get("volume", 0),
            "open_interest": r.get("oi"), "iv": 0.3, "delta": r.get("delta", 0.5),
            "gamma": 0.01, "vega": 0.1, "theta": -0.01, "rho": 0.01,
        }
        for name in NULLABLE.names:
            out[name].append(values[name])
    return pa.table(out, schema=NULLABLE)


def _row(table: pa.Table, i: int = 0) -> dict[str, Any]:
    return table.slice(i, 1).to_pylist()[0]


def _label(oi_before: int | None, oi_today: int | None, volume: int) -> str:
    flow = contract_flow(_chain(D0, [{"oi": oi_before}]), _chain(D1, [{"oi": oi_today, "volume": volume}]))
    return str(_row(flow)["label"])


# ---------------------------------------------------------------- formulas


def test_each_formula_exact() -> None:
    """dOI, both notionals, volume/OI and delta notional match hand arithmetic; mark is today's."""
    before = _chain(D0, [{"oi": 1000, "mark": 9.99, "delta": 0.9, "spot": 1.0}])
    today = _chain(D1, [{"oi": 1150, "mark": 2.5, "volume": 300, "delta": 0.4, "spot": 200.0}])
    r = _row(contract_flow(before, today))
    assert (r["oi_before"], r["oi_today"], r["d_oi"]) == (1000, 1150, 150)
    assert r["d_oi_notional"] == 150 * 2.5 * 100 == 37_500.0
    assert r["volume"] == 300
    assert r["volume_notional"] == 300 * 2.5 * 100 == 75_000.0
    assert r["volume_oi_ratio"] == 0.3
    assert r["delta_notional"] == pytest.approx(150 * 0.4 * 200.0 * 100, rel=1e-15)  # 1,200,000
    assert r["label"] == "building"
    assert (r["symbol"], r["from_date"], r["to_date"], r["right"], r["strike"], r["expiry"]) == (
        "XYZ", D0, D1, "C", 150.0, EXP1)


def test_negative_doi_and_zero_oi_ratio() -> None:
    """A fall in OI gives negative notionals; volume/OI divides by max(OI before, 1) when OI before is 0."""
    r = _row(contract_flow(_chain(D0, [{"oi": 40}]), _chain(D1, [{"oi": 0, "mark": 0.5, "volume": 45,
                                                                    "delta": -0.25, "spot": 80.0}])))
    assert r["d_oi"] == -40
    assert r["d_oi_notional"] == -40 * 0.5 * 100 == -2000.0
    assert r["delta_notional"] == -40 * -0.25 * 80.0 * 100 == 80_000.0
    assert r["label"] == "unwinding"
    r0 = _row(contract_flow(_chain(D0, [{"oi": 0}]), _chain(D1, [{"oi": 0, "volume": 5}])))
    assert r0["volume_oi_ratio"] == 5.0


def test_schema() -> None:
    """contract_flow and group_flow return their documented schemas."""
    flow = contract_flow(_chain(D0, [{"oi": 1}]), _chain(D1, [{"oi": 2}]))
    assert flow.schema == CONTRACT_FLOW_SCHEMA
    assert group_flow(flow, "strike", 1).schema == GROUP_FLOW_SCHEMA


# ---------------------------------------------------------------- labels


@pytest.mark.parametrize(
    ("oi_before", "oi_today", "volume", "expected"),
    [
        (50, 60, 0, "building"),  # dOI exactly 10 (10% of 50 is 5)
        (50, 59, 0, "unknown"),  # 9 < 10
        (300, 330, 0, "building"),  # dOI exactly 10% of 300
        (300, 329, 0, "unknown"),  # 29 >= 10 but < 30
        (150, 165, 0, "building"),  # exactly 10% of 150 (0.1 * 150 > 15 in floats: integers used)
        (150, 164, 0, "unknown"),
        (50, 40, 0, "unwinding"),  # dOI exactly -10
        (50, 41, 0, "unknown"),
        (300, 270, 0, "unwinding"),  # exactly -10% of 300
        (300, 271, 0, "unknown"),
        (150, 135, 0, "unwinding"),
        (40, 40, 50, "churn"),  # volume exactly 50 (50% of 40 is 20)
        (40, 40, 49, "unknown"),
        (300, 300, 150, "churn"),  # volume exactly 50% of 300
        (300, 300, 149, "unknown"),
        (301, 301, 150, "unknown"),  # 150 < 150.5
        (0, 0, 50, "churn"),
        (100, 110, 1000, "building"),  # building wins over churn
        (100, 90, 1000, "unwinding"),
        (100, 105, 1000, "churn"),
    ],
)
def test_label_boundaries(oi_before: int, oi_today: int, volume: int, expected: str) -> None:
    """Each threshold is inclusive: max(10, 10% of OI before) for dOI, max(50, 50%) for volume."""
    assert _label(oi_before, oi_today, volume) == expected


def test_missing_oi_is_unknown_and_metrics_null() -> None:
    """A missing OI on either side labels unknown (even with huge volume) and nulls what needs it."""
    assert _label(None, 500, 10_000) == "unknown"
    assert _label(500, None, 10_000) == "unknown"
    r = _row(contract_flow(_chain(D0, [{"oi": None}]), _chain(D1, [{"oi": 500, "volume": 70, "mark": 2.0}])))
    assert r["d_oi"] is None and r["d_oi_notional"] is None and r["delta_notional"] is None
    assert r["volume_oi_ratio"] is None
    assert r["volume_notional"] == 70 * 2.0 * 100


def test_contract_new_today_and_gone_today() -> None:
    """The union of both chains: a new contract has no OI before; a vanished one no OI, volume today."""
    before = _chain(D0, [{"strike": 150.0, "oi": 100}, {"strike": 145.0, "oi": 80, "mark": 3.0}])
    today = _chain(D1, [{"strike": 150.0, "oi": 120}, {"strike": 155.0, "oi": 30, "volume": 60, "mark": 0.5}])
    flow = contract_flow(before, today)
    rows = {r["strike"]: r for r in flow.to_pylist()}
    assert set(rows) == {145.0, 150.0, 155.0}
    new = rows[155.0]
    assert (new["oi_before"], new["oi_today"], new["d_oi"], new["label"]) == (None, 30, None, "unknown")
    assert new["volume_notional"] == 60 * 0.5 * 100 and new["volume_oi_ratio"] is None
    gone = rows[145.0]
    assert (gone["oi_before"], gone["oi_today"], gone["volume"], gone["label"]) == (80, None, None, "unknown")
    assert (gone["right"], gone["expiry"], gone["contract_symbol"]) == ("C", EXP1, _occ("C", 145.0))
    assert rows[150.0]["label"] == "building"
    assert flow.column("contract_symbol").to_pylist() == sorted(rows[s]["contract_symbol"] for s in rows)


def test_bad_inputs_raise() -> None:
    """Out-of-order sessions, duplicate contracts and an unknown group_by are refused."""
    with pytest.raises(ValueError, match="before"):
        contract_flow(_chain(D1, [{"oi": 1}]), _chain(D0, [{"oi": 1}]))
    with pytest.raises(ValueError, match="twice"):
        contract_flow(_chain(D0, [{"oi": 1}, {"oi": 2}]), _chain(D1, [{"oi": 1}]))
    with pytest.raises(ValueError, match="group_by"):
        group_flow(contract_flow(_chain(D0, [{"oi": 1}]), _chain(D1, [{"oi": 1}])), "sector", 1)


# ---------------------------------------------------------------- grouping

GRID = [
    {"right": "C", "strike": 150.0, "expiry": EXP1},
    {"right": "P", "strike": 150.0, "expiry": EXP1},
    {"right": "C", "strike": 150.0, "expiry": EXP2},
    {"right": "C", "strike": 152.5, "expiry": EXP1},
]


def _grid_flow() -> pa.Table:
    before = _chain(D0, [dict(r, oi=100) for r in GRID])
    today = _chain(D1, [dict(r, oi=100 + 10 * (i + 1), volume=i) for i, r in enumerate(GRID)])
    return contract_flow(before, today)


@pytest.mark.parametrize(
    ("group_by", "keys"),
    [
        ("contract", {_occ("C", 150.0, EXP1): 1, _occ("P", 150.0, EXP1): 1,
                      _occ("C", 150.0, EXP2): 1, _occ("C", 152.5, EXP1): 1}),
        ("strike", {"C|150": 2, "P|150": 1, "C|152.5": 1}),
        ("expiry", {"C|2026-03-20": 2, "P|2026-03-20": 1, "C|2026-04-17": 1}),
        ("expiry-strike", {"C|2026-03-20|150": 1, "P|2026-03-20|150": 1,
                           "C|2026-04-17|150": 1, "C|2026-03-20|152.5": 1}),
    ],
)
def test_group_keys_split_calls_and_puts(group_by: str, keys: dict[str, int]) -> None:
    """Each group_by gives its row keys, calls and puts apart, null expiry/strike when not grouped."""
    g = group_flow(_grid_flow(), group_by, 1)
    assert dict(zip(g.column("row_key").to_pylist(), g.column("rows").to_pylist(), strict=True)) == keys
    for r in g.to_pylist():
        side = r["row_key"][9] if group_by == "contract" else r["row_key"].split("|")[0]  # XYZyymmdd[C|P]
        assert side == r["right"]
        assert (r["expiry"] is None) == (group_by == "strike")
        assert (r["strike"] is None) == (group_by == "expiry")
        assert (r["group_by"], r["window"], r["symbol"], r["from_date"], r["to_date"]) == (group_by, 1, "XYZ", D0, D1)


def test_group_sums_and_label() -> None:
    """Sums per group; the group's label applies the rule to summed dOI vs summed OI before."""
    g = {r["row_key"]: r for r in group_flow(_grid_flow(), "strike", 1).to_pylist()}
    c150 = g["C|150"]  # OI before 100 + 100, dOI 10 + 30, volume 0 + 2
    assert (c150["oi_before"], c150["oi_today"], c150["d_oi"], c150["volume"]) == (200, 240, 40, 2)
    assert c150["d_oi_notional"] == 10 * 100.0 + 30 * 100.0
    assert c150["volume_oi_ratio"] == 2 / 200
    assert c150["label"] == "building"  # 40 >= max(10, 20)
    p150 = g["P|150"]
    assert (p150["d_oi"], p150["label"]) == (20, "building")


def test_all_missing_group_stays_null_not_zero() -> None:
    """A group whose inputs are all missing sums to null; a partly missing one sums what is there."""
    before = _chain(D0, [{"right": "C", "strike": 150.0, "expiry": EXP1, "oi": None},
                         {"right": "C", "strike": 150.0, "expiry": EXP2, "oi": None},
                         {"right": "P", "strike": 150.0, "expiry": EXP1, "oi": None},
                         {"right": "P", "strike": 150.0, "expiry": EXP2, "oi": 100}])
    today = _chain(D1, [dict(r, oi=200, volume=5) for r in GRID[:3]]
                   + [{"right": "P", "strike": 150.0, "expiry": EXP2, "oi": 130, "volume": 5}])
    g = {r["row_key"]: r for r in group_flow(contract_flow(before, today), "strike", 1).to_pylist()}
    calls = g["C|150"]
    for name in ("oi_before", "d_oi", "d_oi_notional", "delta_notional", "volume_oi_ratio"):
        assert calls[name] is None, name
    assert calls["oi_today"] == 400 and calls["volume"] == 10 and calls["rows"] == 2
    assert calls["label"] == "unknown"
    puts = g["P|150"]
    assert (puts["oi_before"], puts["d_oi"], puts["rows"]) == (100, 30, 2)


# ---------------------------------------------------------------- windows


def test_window_pairs_never_after_as_of() -> None:
    """Only sessions on or before as_of count; the window takes the last window+1 of them."""
    sessions = [D3, D0, D2, D1]  # any order
    assert window_pairs(sessions, D2, 1) == [(D1, D2)]
    assert window_pairs(sessions, D2, 2) == [(D0, D1), (D1, D2)]
    assert window_pairs(sessions, D2, 10) == [(D0, D1), (D1, D2)]  # fewer available: shorter
    assert window_pairs(sessions, date(2026, 3, 4), 3) == [(D0, D1), (D1, D2)]
    assert window_pairs(sessions, D3, 1) == [(D2, D3)]
    for as_of in (D0 + (D1 - D0) * k for k in range(1, 5)):
        assert all(b <= as_of for _, b in window_pairs(sessions, as_of, 5))


def test_window_pairs_errors() -> None:
    """window < 1 and fewer than two sessions on or before as_of raise a clear ValueError."""
    with pytest.raises(ValueError, match="window must be at least 1"):
        window_pairs([D0, D1], D1, 0)
    with pytest.raises(ValueError, match="two snapshot sessions on or before 2026-03-02"):
        window_pairs([D0, D1, D2], D0, 1)


def test_compute_flow_ignores_chains_after_as_of() -> None:
    """A chain after as_of changes nothing: flow never reads data from after the day."""
    chains = {D0: _chain(D0, [{"oi": 100}]), D1: _chain(D1, [{"oi": 130, "volume": 3}])}
    with_future = {**chains, D2: _chain(D2, [{"oi": 9999, "volume": 9999}])}
    assert compute_flow(with_future, D1, 3, "contract").equals(compute_flow(chains, D1, 3, "contract"))
    r = _row(compute_flow(with_future, D1, 3, "contract"))
    assert (r["to_date"], r["d_oi"]) == (D1, 30)


def test_window_sums_span_first_to_last_session() -> None:
    """A window's pairs become one row set: flows summed, OI levels taken at its first and last session."""
    chains = {
        D0: _chain(D0, [{"oi": 100, "mark": 1.0}]),
        D1: _chain(D1, [{"oi": 150, "volume": 70, "mark": 2.0}]),
        D2: _chain(D2, [{"oi": 130, "volume": 40, "mark": 3.0}]),
    }
    r = _row(compute_flow(chains, D2, 2, "contract"))
    assert (r["from_date"], r["to_date"], r["window"], r["rows"]) == (D0, D2, 2, 2)
    assert (r["oi_before"], r["oi_today"], r["d_oi"], r["volume"]) == (100, 130, 30, 110)
    assert r["d_oi_notional"] == 50 * 2.0 * 100 + (-20) * 3.0 * 100
    assert r["volume_notional"] == 70 * 2.0 * 100 + 40 * 3.0 * 100
    assert r["volume_oi_ratio"] == 110 / 100
    assert r["label"] == "building"  # 30 >= max(10, 10)


def test_determinism_and_input_order() -> None:
    """Same inputs give identical tables, whatever the chains' row order."""
    before = _chain(D0, [dict(r, oi=100) for r in GRID])
    today = _chain(D1, [dict(r, oi=100 + 7 * i, volume=60 * i) for i, r in enumerate(GRID)])
    shuffled = today.take([2, 0, 3, 1])
    for group_by in ("contract", "strike", "expiry", "expiry-strike"):
        a = compute_flow({D0: before, D1: today}, D1, 1, group_by)
        b = compute_flow({D0: before.take([3, 1, 0, 2]), D1: shuffled}, D1, 1, group_by)
        assert a.equals(b) and a.equals(compute_flow({D0: before, D1: today}, D1, 1, group_by))


# ---------------------------------------------------------------- sim market


def test_sim_chains_build_and_unwind() -> None:
    """Two consecutive sim sessions show building and unwinding; contract grouping keeps the labels."""
    d0, d1 = date(2025, 6, 2), date(2025, 6, 3)
    before, today = option_chain("AAPL", d0), option_chain("AAPL", d1)
    flow = contract_flow(before, today)
    labels = set(flow.column("label").to_pylist())
    assert {"building", "unwinding"} <= labels
    g = compute_flow({d0: before, d1: today}, d1, 1, "contract")
    by_key = dict(zip(g.column("row_key").to_pylist(), g.column("label").to_pylist(), strict=True))
    assert by_key == dict(zip(flow.column("contract_symbol").to_pylist(), flow.column("label").to_pylist(),
                              strict=True))
