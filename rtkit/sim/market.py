"""A deterministic random-walk market: the trades the simulator sends.

Each symbol's price follows a seeded geometric random walk; sizes and sides
are seeded too, so a test can compare what reached SQLite with exactly what
was generated. Prices and sizes are kept as the decimal text the venue would
send, so the expected float is ``float(text)``.

Markets given the same :class:`CommonFactor` (one per simulated venue) move
together: each price is the factor's level for its base asset times the
market's own small, mean-reverting deviation, so cross-venue spreads look
like real ones instead of two walks drifting apart.
"""

from __future__ import annotations

import math
import random
import threading
import time
from typing import NamedTuple

START_PRICES = {"BTC": 65_000.0, "ETH": 3_200.0, "SOL": 150.0, "XRP": 0.6, "DOGE": 0.15}


class SimTrade(NamedTuple):
    symbol: str  # BASE-QUOTE
    trade_id: int  # consecutive per symbol, from 1
    ts_ns: int  # trade time, whole milliseconds
    price: str
    volume: str
    side: str  # taker side, 'buy' or 'sell'


def _start_price(base: str, rng: random.Random) -> float:
    return START_PRICES.get(base, 10.0 + rng.random() * 90.0)


class CommonFactor:
    """A price per base asset that moves with wall-clock time, shared by several Markets.

    A geometric random walk in time: over ``dt`` seconds the log price moves by
    a normal draw with standard deviation ``volatility_per_s * sqrt(dt)``.
    Thread-safe: each simulator calls it from its own thread.
    """

    def __init__(self, seed: int | None = None, volatility_per_s: float = 0.0005) -> None:
        self._rng = random.Random(seed)
        self._volatility = volatility_per_s
        self._lock = threading.Lock()
        self._level: dict[str, tuple[float, int]] = {}  # base → (price, at ns)

    def price(self, base: str, now_ns: int) -> float:
        """The factor's price of ``base`` at ``now_ns`` (moved on from its last call)."""
        with self._lock:
            price, at = self._level.get(base) or (_start_price(base, self._rng), now_ns)
            if now_ns > at:
                step = self._volatility * math.sqrt((now_ns - at) / 1e9)
                price *= math.exp(self._rng.gauss(0.0, step))
                at = now_ns
            self._level[base] = (price, at)
            return price


class Market:
    """Random-walk trade generator for a set of symbols (BASE-QUOTE).

    With ``common``, a symbol's price is the factor's price of its base times
    ``1 + deviation``, where the deviation is this market's own AR(1) walk
    (each step keeps 90 % of it and adds noise of ``volatility``): it stays
    within a few ``volatility`` of zero, as a venue's premium does.
    """

    #: share of the deviation from the common price kept at each trade
    _PERSISTENCE = 0.9

    def __init__(self, seed: int | None = None, volatility: float = 0.0004,
                 skip_id_every: int | None = None, common: CommonFactor | None = None) -> None:
        self._rng = random.Random(seed)
        self._skip_id_every = skip_id_every
        self.skipped_ids = 0
        self._volatility = volatility
        self._common = common
        self._deviation: dict[str, float] = {}
        self._price: dict[str, float] = {}
        self._next_id: dict[str, int] = {}
        self.trades: list[SimTrade] = []

    def _next_price(self, symbol: str, now_ns: int) -> float:
        rng, base = self._rng, symbol.split("-")[0]
        if self._common is None:
            price = self._price.get(symbol) or _start_price(base, rng)
            return price * (1.0 + rng.gauss(0.0, self._volatility))
        deviation = self._deviation.get(symbol, 0.0) * self._PERSISTENCE
        deviation += rng.gauss(0.0, self._volatility)
        self._deviation[symbol] = deviation
        return self._common.price(base, now_ns) * (1.0 + deviation)

    def trade(self, symbol: str, now_ns: int | None = None) -> SimTrade:
        """The next trade of ``symbol``; also appended to ``trades``."""
        rng = self._rng
        now_ns = time.time_ns() if now_ns is None else now_ns
        price = self._price[symbol] = self._next_price(symbol, now_ns)
        tid = self._next_id.get(symbol, 1)
        every = self._skip_id_every
        if every and len(self.trades) % every == every - 1:
            tid += 1  # a trade the venue "lost": its id never appears
            self.skipped_ids += 1
        self._next_id[symbol] = tid + 1
        decimals = 2 if price >= 100 else 6
        trade = SimTrade(
            symbol, tid, now_ns - now_ns % 1_000_000, f"{price:.{decimals}f}",
            f"{rng.expovariate(4.0) + 0.0001:.6f}", "buy" if rng.random() < 0.5 else "sell",
        )
        self.trades.append(trade)
        return trade

    def trades_for(self, symbols: list[str], n: int) -> list[SimTrade]:
        """``n`` trades spread over ``symbols`` at random, in time order."""
        now = time.time_ns()
        return [self.trade(self._rng.choice(symbols), now) for _ in range(n)]
