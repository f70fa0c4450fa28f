"""A deterministic random-walk market: the trades the simulator sends.

Each symbol's price follows a seeded geometric random walk; sizes and sides
are seeded too, so a test can compare what reached SQLite with exactly what
was generated. Prices and sizes are kept as the decimal text the venue would
send, so the expected float is ``float(text)``.
"""

from __future__ import annotations

import random
import time
from typing import NamedTuple

_START_PRICES = {"BTC": 65_000.0, "ETH": 3_200.0, "SOL": 150.0, "XRP": 0.6, "DOGE": 0.15}


class SimTrade(NamedTuple):
    symbol: str  # BASE-QUOTE
    trade_id: int  # consecutive per symbol, from 1
    ts_ns: int  # trade time, whole milliseconds
    price: str
    volume: str
    side: str  # taker side, 'buy' or 'sell'


class Market:
    """Random-walk trade generator for a set of symbols (BASE-QUOTE)."""

    def __init__(self, seed: int | None = None, volatility: float = 0.0004,
                 skip_id_every: int | None = None) -> None:
        self._rng = random.Random(seed)
        self._skip_id_every = skip_id_every
        self.skipped_ids = 0
        self._volatility = volatility
        self._price: dict[str, float] = {}
        self._next_id: dict[str, int] = {}
        self.trades: list[SimTrade] = []

    def _start_price(self, symbol: str) -> float:
        base = symbol.split("-")[0]
        return _START_PRICES.get(base, 10.0 + self._rng.random() * 90.0)

    def trade(self, symbol: str, now_ns: int | None = None) -> SimTrade:
        """The next trade of ``symbol``; also appended to ``trades``."""
        rng = self._rng
        price = self._price.get(symbol) or self._start_price(symbol)
        price *= 1.0 + rng.gauss(0.0, self._volatility)
        self._price[symbol] = price
        tid = self._next_id.get(symbol, 1)
        every = self._skip_id_every
        if every and len(self.trades) % every == every - 1:
            tid += 1  # a trade the venue "lost": its id never appears
            self.skipped_ids += 1
        self._next_id[symbol] = tid + 1
        now_ns = time.time_ns() if now_ns is None else now_ns
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
