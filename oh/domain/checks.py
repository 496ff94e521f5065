"""Data-quality checks (pure): Arrow tables in, check results out.

Names and severities follow the observability contract (`candles_unique_symbol_date`, ...).
Every check returns a result whether it passes or fails, so trends can be shown. Checks run on
what the provider delivered (the event's rows, where duplicates and disorder are still visible)
and on the stored table (where gaps are visible).

Each check catches what it names, NaN included: a NaN price is `*_no_missing_prices`, never a
silent pass of `*_no_negative_prices` or of the OHLC bracket (which also fails on high below
low by itself). `*_no_future_dates` fails rows dated after the last session that had closed at a
given moment (when the data was delivered, or when a re-check runs): no market has such data.
Chain snapshots are also checked against their own quotes (oh.domain.chain_checks).
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime
from functools import lru_cache
from typing import Any

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

PRICE_COLUMNS = ("open", "high", "low", "close")
GAP_WINDOW = 30  # sessions `candles_gap_days_last_30` looks back over (`candle_gap_check`)


@dataclass(frozen=True)
class CheckResult:
    """One check's outcome: `status` is pass, fail or skip; `severity` error, warn or info."""

    check_name: str
    severity: str
    status: str
    message: str
    metrics: dict[str, Any] = field(default_factory=dict)

    @property
    def metrics_json(self) -> str:
        return json.dumps(self.metrics, sort_keys=True, default=str)


def _result(name: str, severity: str, failed: bool, message: str, **metrics: Any) -> CheckResult:
    return CheckResult(name, severity, "fail" if failed else "pass", message, metrics)


def _floats(rows: pa.Table, name: str) -> np.ndarray:
    """A numeric column as float64, nulls as NaN."""
    return np.asarray(rows.column(name).to_numpy(zero_copy_only=False), dtype=np.float64)


def _ohlc_faults(rows: pa.Table) -> tuple[int, int, int]:
    """(missing, negative, inconsistent) of the open/high/low/close columns.

    missing: NaN, infinite or null values; negative: values below 0; inconsistent: rows whose high is
    below their low, or whose high/low do not bracket the known ones of open and close (a NaN open
    does not hide a high below the close).
    """
    if not rows.num_rows:
        return 0, 0, 0
    o, h, lo, c = (_floats(rows, name) for name in PRICE_COLUMNS)
    stacked = np.stack([o, h, lo, c])
    missing = int(np.count_nonzero(~np.isfinite(stacked)))
    negative = int(np.count_nonzero(stacked < 0))
    with np.errstate(invalid="ignore"):
        top, bottom = np.fmax(o, c), np.fmin(o, c)  # NaN-ignoring: the known one of open and close counts
        inconsistent = int(np.count_nonzero((h < lo) | (h < top) | (lo > bottom)))
    return missing, negative, inconsistent


def _negative(rows: pa.Table, *names: str) -> int:
    return int(sum(np.count_nonzero(_floats(rows, name) < 0) for name in names)) if rows.num_rows else 0


def future_dates_check(name: str, dates: pa.ChunkedArray | pa.Array, now: datetime) -> CheckResult:
    """`<dataset>_no_future_dates` (error): rows dated after the last session closed at `now` (aware UTC)."""
    from oh.domain import calendar

    last = calendar.last_closed_session(now)
    days = np.asarray(dates.to_numpy(zero_copy_only=False), dtype="datetime64[D]") if len(dates) else np.array([], "datetime64[D]")
    future = days[days > np.datetime64(last, "D")]
    first = str(future.min()) if future.size else None
    return _result(name, "error", future.size > 0,
                   f"{future.size} rows dated after {last}, the last session closed by {now:%Y-%m-%d %H:%M} UTC"
                   + (f" (first: {first})" if first else "") if future.size else f"no row dated after {last}",
                   future_rows=int(future.size), last_closed=str(last), first_future=first)


def candle_payload_checks(rows: pa.Table) -> list[CheckResult]:
    """Checks on one delivery of candles for one symbol: duplicates, order, prices, OHLC, volume."""
    n = rows.num_rows
    dates = rows.column("date").to_numpy(zero_copy_only=False).astype("datetime64[D]") if n else np.array([], "datetime64[D]")
    duplicates = int(n - len(np.unique(dates)))
    disorder = int(np.count_nonzero(np.diff(dates.astype(np.int64)) <= 0)) if n > 1 else 0
    missing, negative, inconsistent = _ohlc_faults(rows)
    zero_volume = int(pc.sum(pc.equal(rows.column("volume"), 0)).as_py() or 0) if n else 0
    negative_volume = _negative(rows, "volume")
    return [
        _result("candles_unique_symbol_date", "error", duplicates > 0,
                f"{duplicates} duplicate (symbol, date) rows" if duplicates else "no duplicate dates",
                rows=n, duplicates=duplicates),
        _result("candles_monotonic_date", "error", disorder > 0,
                f"{disorder} dates not after the one before" if disorder else "dates strictly increasing",
                rows=n, out_of_order=disorder),
        _result("candles_no_negative_prices", "error", negative > 0,
                f"{negative} negative prices" if negative else "no negative prices", negative=negative),
        _result("candles_no_missing_prices", "error", missing > 0,
                f"{missing} missing (NaN or infinite) prices" if missing else "every price present", missing=missing),
        _result("candles_ohlc_consistent", "error", inconsistent > 0,
                f"{inconsistent} rows with high below low, open or close, or low above open or close" if inconsistent
                else "high and low bracket open and close", inconsistent=inconsistent),
        _result("candles_no_negative_volume", "error", negative_volume > 0,
                f"{negative_volume} sessions with negative volume" if negative_volume else "no negative volume",
                negative_volume=negative_volume),
        _result("candles_zero_volume_days", "warn", zero_volume > 0,
                f"{zero_volume} sessions with zero volume" if zero_volume else "volume on every session",
                zero_volume=zero_volume),
    ]


def candle_gap_check(present: np.ndarray, expected: np.ndarray) -> CheckResult:
    """`candles_gap_days_last_30`: expected sessions (the last 30) missing from the stored table."""
    missing = np.setdiff1d(expected.astype("datetime64[D]"), present.astype("datetime64[D]"))
    names = [str(d) for d in missing[:10]]
    return _result(
        "candles_gap_days_last_30", "warn", len(missing) > 0,
        f"{len(missing)} of the last {len(expected)} sessions missing" + (f": {', '.join(names)}" if names else ""),
        gap_days=len(missing), sessions=len(expected), missing=names,
    )


_COMPACT = r"^[A-Z0-9]{1,6}[0-9]{6}[CP][0-9]{8}$"


@lru_cache(maxsize=1 << 16)
def _prefix_parses(prefix: str) -> bool:
    """Whether `prefix` (root, YYMMDD, C/P of a compact symbol) parses with a valid strike after it. Remembered:
    a symbol's chain, bars and flow of a day, and its chains of other days, list the same few dozen prefixes."""
    from oh.domain.osi import BadOptionSymbol, parse_osi

    try:
        parse_osi(prefix + "00001000")
    except BadOptionSymbol:
        return False
    return True


def unparseable_symbols(symbols: pa.ChunkedArray | pa.Array) -> list[str]:
    """One `[index] reason` per contract symbol oh.domain.osi cannot parse, in row order.

    Same answer as `oh.domain.osi.parse_many`, without parsing every row in Python: rows in the compact
    form share a few dozen (root, expiry, right) prefixes, so one symbol per prefix is parsed (the
    8 strike digits are valid whenever they are not all zero); only other rows are parsed one by one.
    """
    from oh.domain.osi import BadOptionSymbol, parse_osi

    symbols = pa.chunked_array([symbols]) if isinstance(symbols, pa.Array) else symbols
    compact = pc.fill_null(pc.match_substring_regex(symbols, _COMPACT), False)
    zero_strike = pc.fill_null(pc.ends_with(symbols, "00000000"), False)
    fast = pc.and_(compact, pc.invert(zero_strike)).to_numpy(zero_copy_only=False)
    texts = symbols.to_numpy(zero_copy_only=False)
    prefix_ok: dict[str, bool] = {}
    errors = []
    for index in np.flatnonzero(~fast):
        try:
            parse_osi(texts[index])
        except (BadOptionSymbol, TypeError) as exc:
            errors.append((int(index), f"[{index}] {exc}"))
    fast_rows = np.flatnonzero(fast)
    for prefix in {t[:-8] for t in texts[fast_rows]}:
        prefix_ok[prefix] = _prefix_parses(prefix)
    if all(prefix_ok.values()):  # the usual chain: no fast row needs a look of its own
        return [message for _, message in sorted(errors)]
    for index in fast_rows:
        if not prefix_ok[texts[index][:-8]]:
            try:
                parse_osi(texts[index])
            except BadOptionSymbol as exc:
                errors.append((int(index), f"[{index}] {exc}"))
    return [message for _, message in sorted(errors)]


def chain_snapshot_checks(chain: pa.Table) -> list[CheckResult]:
    """Checks on one option-chain snapshot: parseable OCC symbols, crossed quotes, negative prices.

    `snapshot_parseable_contract_symbol` is a warning for a few bad symbols (providers do emit junk
    rows) and an error when more than 1% of the chain is unparseable.
    """
    n = chain.num_rows
    errors = unparseable_symbols(chain.column("contract_symbol")) if n else []
    bad_share = len(errors) / n if n else 0.0
    bid = chain.column("bid").to_numpy(zero_copy_only=False) if n else np.array([])
    ask = chain.column("ask").to_numpy(zero_copy_only=False) if n else np.array([])
    crossed = int(np.count_nonzero((bid > 0) & (ask > 0) & (bid > ask)))
    quotes = ("bid", "ask", "last")  # 0 is "none"; a NaN mark is "no price at all" (documented), not missing
    negative = _negative(chain, *quotes, "mark", "strike", "spot")
    missing = int(sum(np.count_nonzero(~np.isfinite(_floats(chain, c))) for c in (*quotes, "strike", "spot"))) if n else 0
    negative_size = _negative(chain, "volume", "open_interest")
    return [
        CheckResult(
            "snapshot_parseable_contract_symbol", "error" if bad_share > 0.01 else "warn",
            "fail" if errors else "pass",
            f"{len(errors)} of {n} contract symbols unparseable" + (f": {errors[0]}" if errors else ""),
            {"rows": n, "unparseable": len(errors), "share": round(bad_share, 6)},
        ),
        _result("snapshot_crossed_quotes", "warn", crossed > 0,
                f"{crossed} quotes with bid above ask" if crossed else "no crossed quotes", crossed=crossed),
        _result("snapshot_no_negative_prices", "error", negative > 0,
                f"{negative} negative prices" if negative else "no negative prices", negative=negative),
        _result("snapshot_no_missing_prices", "error", missing > 0,
                f"{missing} missing (NaN or infinite) quotes, strikes or spots" if missing else "every price present",
                missing=missing),
        _result("snapshot_no_negative_volume", "error", negative_size > 0,
                f"{negative_size} negative volumes or open interests" if negative_size
                else "no negative volume or open interest", negative=negative_size),
    ]


def snapshot_date_check(chain: pa.Table, session: date) -> CheckResult:
    """`snapshot_stale_date`: every row is dated the session it was taken for (a provider serving an
    older chain under today's date fails)."""
    n = chain.num_rows
    dates = chain.column("snapshot_date").to_numpy(zero_copy_only=False).astype("datetime64[D]") if n else np.array([])
    stale = int(np.count_nonzero(dates != np.datetime64(session, "D")))
    return _result("snapshot_stale_date", "warn", stale > 0,
                   f"{stale} of {n} rows not dated {session}" if stale else f"all rows dated {session}", stale=stale)


def flow_checks(rows: pa.Table, key: tuple[str, ...]) -> list[CheckResult]:
    """`flow_no_null_primary_keys` (error), `flow_values_consistent` (error: negative volume, open interest or row
    counts, a contract whose dOI is not oi_today - oi_before), and the share of contracts whose dOI is unknown (info)."""
    nulls = {name: rows.column(name).null_count for name in key}
    bad = sum(nulls.values())
    contracts = rows.filter(pc.equal(rows.column("group_by"), "contract")) if rows.num_rows else rows
    unknown = contracts.column("d_oi").null_count if contracts.num_rows else 0
    share = unknown / contracts.num_rows if contracts.num_rows else 0.0
    negative = _negative(rows, "oi_before", "oi_today", "volume", "rows")
    wrong_doi = 0
    if contracts.num_rows:  # groups sum only the contracts with a known dOI, so only contracts must add up
        before, today, d_oi = (_floats(contracts, c) for c in ("oi_before", "oi_today", "d_oi"))
        known = np.isfinite(before) & np.isfinite(today) & np.isfinite(d_oi)
        wrong_doi = int(np.count_nonzero(known & (d_oi != today - before)))
    faults = negative + wrong_doi
    return [
        _result("flow_no_null_primary_keys", "error", bad > 0,
                f"{bad} null key values" if bad else "every key complete", nulls=nulls),
        _result("flow_values_consistent", "error", faults > 0,
                f"{negative} negative counts, {wrong_doi} contracts whose dOI is not oi_today - oi_before" if faults
                else "counts non-negative, every contract's dOI is oi_today - oi_before",
                negative=negative, wrong_d_oi=wrong_doi),
        CheckResult("flow_unknown_doi_share", "info", "pass",
                    f"{unknown} of {contracts.num_rows} contracts without a dOI ({share:.1%})",
                    {"unknown": unknown, "contracts": contracts.num_rows, "share": round(share, 6)}),
    ]


def derived_checks(rows: pa.Table) -> list[CheckResult]:
    """`derived_no_duplicate_keys` (error): one row per (symbol, session_date)."""
    n = rows.num_rows
    keys = {(s, d) for s, d in zip(rows.column("symbol").to_pylist(), rows.column("session_date").to_pylist(), strict=True)}
    duplicates = n - len(keys)
    return [
        _result("derived_no_duplicate_keys", "error", duplicates > 0,
                f"{duplicates} duplicate (symbol, session_date) rows" if duplicates else "one row per symbol and session",
                rows=n, duplicates=duplicates),
    ]


def option_bars_checks(rows: pa.Table, session: date | None = None) -> list[CheckResult]:
    """Checks on one delivery of option bars: `options_bars_monotonic_ts`, `options_bars_no_negative_prices`,
    `options_bars_duplicate_pk` (all error), OHLC consistency and bars dated off the delivered session (warn)."""
    n = rows.num_rows
    contracts = rows.column("contract_symbol").to_numpy(zero_copy_only=False) if n else np.array([], object)
    days = rows.column("date").to_numpy(zero_copy_only=False).astype("datetime64[D]").astype(np.int64) if n else np.array([], np.int64)
    duplicates = int(n - len({(c, d) for c, d in zip(contracts.tolist(), days.tolist(), strict=True)}))
    disorder = 0
    if n > 1:  # per contract, in delivery order: each bar strictly after the contract's previous one
        order = np.argsort(contracts, kind="stable")
        same = contracts[order][1:] == contracts[order][:-1]
        disorder = int(np.count_nonzero(same & (np.diff(days[order]) <= 0)))
    missing, negative, inconsistent = _ohlc_faults(rows)
    negative += _negative(rows, "vwap")  # a NaN VWAP is "unknown" (Yahoo sends none), not missing
    negative_volume = _negative(rows, "volume", "trade_count")
    results = [
        _result("options_bars_monotonic_ts", "error", disorder > 0,
                f"{disorder} bars not after their contract's previous bar" if disorder else "bars in time order per contract",
                rows=n, out_of_order=disorder),
        _result("options_bars_no_negative_prices", "error", negative > 0,
                f"{negative} negative prices" if negative else "no negative prices", negative=negative),
        _result("options_bars_duplicate_pk", "error", duplicates > 0,
                f"{duplicates} duplicate (contract_symbol, date) rows" if duplicates else "one bar per contract and day",
                duplicates=duplicates),
        _result("options_bars_no_missing_prices", "error", missing > 0,
                f"{missing} missing (NaN or infinite) prices" if missing else "every price present", missing=missing),
        _result("options_bars_ohlc_consistent", "warn", inconsistent > 0,
                f"{inconsistent} bars with high below low, open or close, or low above open or close" if inconsistent
                else "high and low bracket open and close", inconsistent=inconsistent),
        _result("options_bars_no_negative_volume", "error", negative_volume > 0,
                f"{negative_volume} negative volumes or trade counts" if negative_volume
                else "no negative volume or trade count", negative_volume=negative_volume),
    ]
    if session is not None:
        off = int(np.count_nonzero(days != np.datetime64(session, "D").astype(np.int64)))
        results.append(_result("options_bars_session_date", "warn", off > 0,
                               f"{off} bars not dated {session}" if off else f"every bar dated {session}", off_date=off))
    return results
