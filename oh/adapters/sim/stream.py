"""The sim live feed: quotes at a set rate from the simulated market, and fills of a few simulated orders.

Prices start where the sim market left them (oh.adapters.sim.provider's close and oh.adapters.sim.options'
bid/ask on the last closed session) and random-walk from there: each stock's mid moves by a small
log-normal step, and each option follows its underlying through its delta plus a little noise of
its own, keeping its quoted spread. Quotes are spread evenly over the plan's symbols at
`rate` per second in total; about one update in four is a trade (the `last` price). Each quote is
written to the conflator by the feed thread itself, exactly as a real stream callback would.

Fills: `orders` simulated orders, one every `order_every` seconds, each a `new` then a `fill` (a
`partial_fill` first for larger orders), sent to `on_fill` as TradeUpdated events. Their ids are
derived from the start command's id, so resuming the same command never journals a fill twice.
"""

from __future__ import annotations

import logging
import math
import random
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime

import numpy as np

from contracts import TradeUpdated
from oh.adapters.streams import Backoff, StreamMonitor
from oh.domain import calendar
from oh.domain.conflate import Conflator
from oh.domain.live_plan import LivePlan
from oh.domain.osi import BadOptionSymbol, parse_osi
from oh.domain.portfolio import (
    Leg,
    OptionPosition,
    Portfolio,
    Position,
    StockPosition,
    Structure,
    validate,
)

log = logging.getLogger(__name__)

FILL_NAMESPACE = uuid.UUID("a3c7f1e2-5b64-4d8e-9f10-2c4b6d8e0a13")
STOCK_STEP = 0.0004  # log-return standard deviation of one stock update
OPTION_NOISE = 0.002  # relative noise of an option's own mid per update
TRADE_SHARE = 0.25  # share of updates that are trades


@dataclass
class _Symbol:
    symbol: str
    kind: str
    underlying: str
    mid: float
    half: float  # half spread
    delta: float = 0.0
    spot0: float = 0.0
    base: float = 0.0  # option mid at spot0


def _seed_prices(plan: LivePlan, day: date, market_seed: int) -> tuple[list[_Symbol], list[str]]:
    """Starting prices for every planned symbol the sim market knows; warnings for the others."""
    from oh.adapters.base import UnknownSymbol
    from oh.adapters.sim.market import require_listed, spot_path
    from oh.adapters.sim.options import quote_contracts

    warnings: list[str] = []
    session = calendar.session_index(day)
    spots: dict[str, float] = {}

    def spot_of(underlying: str) -> float | None:
        if underlying not in spots:
            try:
                require_listed(underlying)
                spots[underlying] = float(spot_path(underlying, market_seed)[3][session])
            except UnknownSymbol:
                warnings.append(f"the sim market has no symbol {underlying}: not quoted")
                spots[underlying] = math.nan
        value = spots[underlying]
        return None if math.isnan(value) else value

    out: list[_Symbol] = []
    for symbol in plan.stocks:
        spot = spot_of(symbol)
        if spot is not None:
            out.append(_Symbol(symbol, "stock", symbol, spot, max(0.01, round(spot * 0.0002, 2))))
    by_root: dict[str, list[tuple[str, object]]] = {}
    for text in plan.options:
        try:
            contract = parse_osi(text)
        except BadOptionSymbol:
            warnings.append(f"{text}: not an OCC symbol, not quoted")
            continue
        if contract.expiry <= day:
            warnings.append(f"{text}: expires before the next session, not quoted by the sim market")
            continue
        by_root.setdefault(contract.root, []).append((text, contract))
    stock_names = {s.replace(".", "").replace("-", ""): s for s in plan.stocks}
    for root, items in by_root.items():
        underlying = stock_names.get(root, root)
        spot = spot_of(underlying)
        if spot is None:
            continue
        contracts = [c for _, c in items]
        table = quote_contracts(
            underlying, day, [np.datetime64(c.expiry, "D") for c in contracts],  # type: ignore[attr-defined]
            [c.right == "C" for c in contracts], [float(c.strike) for c in contracts], market_seed,  # type: ignore[attr-defined]
        )
        bid, ask, delta = (table.column(n).to_numpy() for n in ("bid", "ask", "delta"))
        for (text, _), b, a, d in zip(items, bid, ask, delta, strict=True):
            mid = (b + a) / 2 if b > 0 else a / 2
            out.append(_Symbol(text, "option", underlying, mid, max((a - b) / 2, 0.005), float(d), spot, mid))
    return out, warnings


class SimFeed:
    """The sim market's live feed in one thread (quotes) plus the fills schedule (see module doc)."""

    def __init__(
        self, plan: LivePlan, conflator: Conflator, on_fill: Callable[[TradeUpdated], None], *,
        rate: float = 200.0, command_id: str = "sim", orders: int = 3, order_every: float = 2.0,
        market_seed: int | None = None, day: date | None = None,
    ) -> None:
        from oh.adapters.sim.market import DEFAULT_SEED

        self.plan = plan
        self.conflator = conflator
        self.on_fill = on_fill
        self.rate = max(float(rate), 0.0)
        self.command_id = command_id
        self.orders = orders if plan.fills else 0
        self.order_every = order_every
        self.market_seed = DEFAULT_SEED if market_seed is None else market_seed
        self.day = day or calendar.last_closed_session(datetime.now(UTC))
        self.backoff = Backoff()
        self.monitors = [StreamMonitor("stocks", len(plan.stocks)), StreamMonitor("options", len(plan.options)),
                         StreamMonitor("fills", 1 if plan.fills else 0)]
        self._by_name = {m.name: m for m in self.monitors}
        self._stop = threading.Event()
        self._pause_until: dict[str, float] = {}
        self._thread: threading.Thread | None = None
        self.warnings: list[str] = []
        self._rng = random.Random(command_id)

    def start(self) -> None:
        """Seed the prices and start the feed thread (no network: the sim market is local)."""
        self._thread = threading.Thread(target=self._run, name="live-sim", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop the feed thread; every stream ends `stopped`."""
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout)
        for monitor in self.monitors:
            monitor.stopped(force=True)

    def reconnect(self, name: str, reason: str) -> None:
        """A simulated reconnect: the stream pauses for one backoff wait, then resumes."""
        monitor = self._by_name[name]
        wait = self.backoff.delay(1, self._rng)
        monitor.reconnecting(wait, reason)
        self._pause_until[name] = time.monotonic() + wait

    def _connect_all(self) -> None:
        for monitor in self.monitors:
            if monitor.symbols:
                monitor.connecting()
                monitor.connected("sim market")
            else:
                monitor.stopped("nothing to stream")

    def _run(self) -> None:
        try:
            symbols, self.warnings = _seed_prices(self.plan, self.day, self.market_seed)
        except Exception as exc:  # a broken sim market must show as an error, not kill the process
            log.exception("sim feed could not seed prices")
            for monitor in self.monitors:
                monitor.error(f"the sim market could not price the plan: {exc}", retry=False)
            return
        for warning in self.warnings:
            log.warning("%s", warning)
        self._connect_all()
        spots = {s.symbol: s.mid for s in symbols if s.kind == "stock"}
        for s in symbols:
            if s.kind == "option" and s.underlying not in spots:
                spots[s.underlying] = s.spot0
        started = time.monotonic()
        sent = 0
        next_order, order_no = started + min(1.0, self.order_every), 0
        rng = self._rng
        while not self._stop.wait(0.002):
            now = time.monotonic()
            if order_no < self.orders and now >= next_order and symbols:
                self._fill(order_no, symbols, spots)
                order_no += 1
                next_order = now + self.order_every
            if not symbols or self.rate <= 0:
                continue
            due = int((now - started) * self.rate) - sent
            if due > self.rate:  # fell far behind (machine busy): skip the backlog, do not burst
                sent += due - int(self.rate * 0.01)
                due = int(self.rate * 0.01)
            for _ in range(max(due, 0)):
                s = symbols[rng.randrange(len(symbols))]
                if self._paused(s.kind, now):
                    sent += 1
                    continue
                self._tick(s, spots, rng)
                sent += 1

    def _paused(self, kind: str, now: float) -> bool:
        name = "stocks" if kind == "stock" else "options"
        until = self._pause_until.get(name)
        if until is None:
            return False
        if now < until:
            return True
        del self._pause_until[name]
        self._by_name[name].connecting()
        self._by_name[name].connected("sim market")
        return False

    def _tick(self, s: _Symbol, spots: dict[str, float], rng: random.Random) -> None:
        if s.kind == "stock":
            s.mid = max(s.mid * math.exp(rng.gauss(0.0, STOCK_STEP)), 0.01)
            spots[s.symbol] = s.mid
            monitor = self.monitors[0]
        else:
            spot = spots.get(s.underlying, s.spot0)
            s.mid = max(s.base + s.delta * (spot - s.spot0), 0.0) * (1 + rng.gauss(0.0, OPTION_NOISE))
            monitor = self.monitors[1]
        bid = max(round(s.mid - s.half, 2), 0.0)
        ask = max(round(s.mid + s.half, 2), 0.01)
        if rng.random() < TRADE_SHARE:
            price = round(rng.uniform(bid or ask, ask), 2)
            self.conflator.trade(s.symbol, s.kind, price)
        else:
            self.conflator.quote(s.symbol, s.kind, bid, ask, float(rng.randint(1, 50)), float(rng.randint(1, 50)))
        monitor.event()

    def _fill(self, n: int, symbols: list[_Symbol], spots: dict[str, float]) -> None:
        s = symbols[n % len(symbols)]
        side = "buy" if n % 2 == 0 else "sell"
        qty = float(10 * (n + 1)) if s.kind == "stock" else float(n + 1)
        price = round(s.mid + (s.half if side == "buy" else -s.half), 2)
        order_id = str(uuid.uuid5(FILL_NAMESPACE, f"{self.command_id}:order:{n}"))
        partial = float(math.floor(qty / 2)) if qty >= 2 else 0.0
        steps: list[tuple[str, float, float | None]] = [("new", qty, None)]  # qty: the order's, then each execution's
        if partial:
            steps.append(("partial_fill", partial, price))
        steps.append(("fill", qty - partial, price))
        for event, executed, fill_price in steps:
            update = TradeUpdated(
                id=uuid.uuid5(FILL_NAMESPACE, f"{order_id}:{event}").hex, order_id=order_id, symbol=s.symbol,
                event=event, side=side, qty=executed, price=fill_price,
                filled_at=datetime.now(UTC) if fill_price is not None else None,
            )
            self.on_fill(update)
            self.monitors[2].event()


def sim_portfolio(symbols: list[str], positions: int, day: date | None = None, market_seed: int | None = None) -> Portfolio:
    """A valid portfolio of `positions` positions on `symbols`, priced from the sim market on `day`.

    For demos, tests and benchmarks: positions cycle through stock, a single call, a put vertical and
    an iron condor per symbol, on listed contracts 3-10 weeks out near the money, with costs at the
    sim market's mids. Deterministic for a given day.
    """
    from oh.adapters.sim.market import DEFAULT_SEED
    from oh.adapters.sim.options import option_chain

    seed = DEFAULT_SEED if market_seed is None else market_seed
    day = day or calendar.last_closed_session(datetime.now(UTC))
    chains = {s: option_chain(s, day, seed).to_pydict() for s in symbols}
    out: list[Position] = []

    def pick(chain: dict[str, list], n: int, right: str, offset: int) -> tuple[date, float, float]:
        expiries = sorted({e for e in chain["expiry"] if 21 <= (e - day).days <= 70})
        expiry = expiries[n % len(expiries)]
        rows = [i for i, (e, r) in enumerate(zip(chain["expiry"], chain["right"], strict=True)) if e == expiry and r == right]
        spot = chain["spot"][0]
        atm = min(range(len(rows)), key=lambda k: abs(chain["strike"][rows[k]] - spot))
        row = rows[min(max(atm + offset, 0), len(rows) - 1)]
        return expiry, chain["strike"][row], round(chain["mark"][row], 2)

    for i in range(positions):
        symbol, round_no = symbols[i % len(symbols)], i // len(symbols)
        chain, kind, pid = chains[symbol], round_no % 4, f"{symbol.lower()}-{i}"
        if kind == 0:
            out.append(StockPosition(id=pid, symbol=symbol, quantity=10.0 * (i % 5 + 1),
                                     cost_basis=round(chain["spot"][0] * 0.97, 2)))
        elif kind == 1:
            expiry, strike, mark = pick(chain, round_no, "C", round_no % 3)
            out.append(OptionPosition(id=pid, symbol=symbol, expiry=expiry, right="call", strike=strike,
                                      quantity=1 + i % 3, cost_basis=mark))
        else:
            shape = [("P", -2, -1), ("P", -4, 1)] if kind == 2 else [("P", -4, 1), ("P", -2, -1), ("C", 2, -1), ("C", 4, 1)]
            legs = []
            for right, offset, qty in shape:
                expiry, strike, mark = pick(chain, round_no, right, offset)
                legs.append(Leg(expiry=expiry, right="call" if right == "C" else "put", strike=strike, quantity=qty,
                                cost=mark))
            out.append(Structure(id=pid, symbol=symbol, kind="vertical" if kind == 2 else "iron_condor", legs=legs,
                                 net_debit=round(sum(leg.quantity * leg.cost for leg in legs), 2)))
    return validate(Portfolio(cash=100_000.0, positions=out))
