"""Simulated order books: one evolving L2 book per symbol, with the venue's sequence.

Prices sit on a tick grid (integers inside, the venue's decimal text outside),
sizes are decimal text, so what a client rebuilds can be compared with the
simulator's book exactly, level by level. Each :meth:`SimBook.step` is one
venue message: a few levels set (a size of ``"0"`` removes one), the book
kept within ``levels`` per side and never crossed, the sequence one up.

:class:`SimBooks` holds a simulator's books (seeded, so a run is repeatable)
and answers depth-snapshot requests for the simulator's REST side
(:meth:`SimBooks.depth_snapshot`, the ``(venue, symbol, limit) -> (bids, asks,
last_update_id, time)`` provider), with a stale answer every
``stale_snapshot_every`` requests when that fault is asked for.
"""

from __future__ import annotations

import random
import threading
import time

#: levels per side a simulated book keeps
DEFAULT_LEVELS = 50
#: price tick and its decimals, by base asset (others: 0.01)
_TICKS = {"BTC": (0.1, 1), "ETH": (0.01, 2)}
_START = {"BTC": 65_000.0, "ETH": 3_200.0, "SOL": 150.0}
#: messages between two remembered states, for a stale snapshot
_STALE_AFTER = 200

Level = tuple[str, str]


class SimBook:
    """One symbol's book: ``bids``/``asks`` map a price in ticks to its size text."""

    def __init__(self, symbol: str, rng: random.Random, levels: int = DEFAULT_LEVELS,
                 keep_history: bool = False) -> None:
        base = symbol.split("-")[0]
        self.symbol, self.levels, self._rng = symbol, levels, rng
        self.tick, self.decimals = _TICKS.get(base, (0.01, 2))
        mid = round(_START.get(base, 10.0 + rng.random() * 90.0) / self.tick)
        self.bids = {mid - 1 - k: self._size() for k in range(levels)}
        self.asks = {mid + k: self._size() for k in range(levels)}
        self.seq = 1
        self.ts_ns = time.time_ns()
        #: seq → (bids, asks) best first, when asked to keep them (tests compare with it)
        self.history: dict[int, tuple[list[Level], list[Level]]] | None = (
            {} if keep_history else None)
        self._remember()
        self.stale: tuple[list[Level], list[Level], int] = (*self.snapshot()[:2], self.seq)

    def _size(self) -> str:
        return f"{self._rng.randint(1, 50_000) / 1000:.3f}"

    def price_text(self, ticks: int) -> str:
        return f"{ticks * self.tick:.{self.decimals}f}"

    def best(self) -> tuple[int, int]:
        return max(self.bids), min(self.asks)

    def step(self) -> tuple[list[Level], list[Level]]:
        """One message: the levels it sets per side (``"0"`` removes); ``seq`` one up."""
        rng = self._rng
        bid_changes: dict[int, str] = {}
        ask_changes: dict[int, str] = {}
        for _ in range(rng.randint(1, 4)):
            is_ask = rng.random() < 0.5
            side, changes = (self.asks, ask_changes) if is_ask else (self.bids, bid_changes)
            r = rng.random()
            if r < 0.45:  # a size changes, mostly near the top
                ranked = sorted(side) if is_ask else sorted(side, reverse=True)
                tick = ranked[min(len(ranked) - 1, int(rng.expovariate(0.2)))]
                side[tick] = changes[tick] = self._size()
            elif r < 0.7 and len(side) > self.levels // 2:  # a level goes (filled, cancelled)
                tick = rng.choice(list(side))
                del side[tick]
                changes[tick] = "0"
            else:  # a level comes, never across the other side
                best_bid, best_ask = self.best()
                gap = int(rng.expovariate(0.15))
                tick = best_bid + 1 + gap - 3 if is_ask else best_ask - 1 - gap + 3
                tick = max(tick, best_bid + 1) if is_ask else min(tick, best_ask - 1)
                side[tick] = changes[tick] = self._size()
                if len(side) > self.levels:  # the worst level falls off the book
                    worst = max(side) if is_ask else min(side)
                    del side[worst]
                    changes[worst] = "0"
        self.seq += 1
        self.ts_ns = time.time_ns()
        self._remember()
        return ([(self.price_text(t), s) for t, s in bid_changes.items()],
                [(self.price_text(t), s) for t, s in ask_changes.items()])

    def no_change(self) -> None:
        """A message that changes nothing (a corrupted or crossed copy stands in for it)."""
        self.seq += 1
        self._remember()

    def restart(self) -> None:
        """The venue's service restarted: the sequence starts again at 1."""
        self.seq = 1
        if self.history is not None:
            self.history.clear()
        self._remember()

    def snapshot(self, depth: int | None = None) -> tuple[list[Level], list[Level], int]:
        """``(bids high→low, asks low→high, seq)``, the best ``depth`` levels a side."""
        bids = sorted(self.bids, reverse=True)[:depth]
        asks = sorted(self.asks)[:depth]
        return ([(self.price_text(t), self.bids[t]) for t in bids],
                [(self.price_text(t), self.asks[t]) for t in asks], self.seq)

    def top(self) -> tuple[Level, Level]:
        best_bid, best_ask = self.best()
        return ((self.price_text(best_bid), self.bids[best_bid]),
                (self.price_text(best_ask), self.asks[best_ask]))

    def crossing_level(self) -> Level:
        """A bid one tick above the best ask: what a crossed-book fault sends."""
        return self.price_text(self.best()[1] + 1), "1.000"

    def corrupted_level(self) -> tuple[bool, Level]:
        """A level of the book with a wrong size: what a corrupted-level fault sends."""
        is_ask = self._rng.random() < 0.5
        side = self.asks if is_ask else self.bids
        tick = self._rng.choice(list(side))
        return is_ask, (self.price_text(tick), f"{float(side[tick]) + 1.0:.3f}")

    def _remember(self) -> None:
        if self.history is not None:
            self.history[self.seq] = self.snapshot()[:2]
        if self.seq % _STALE_AFTER == 0:
            self.stale = (*self.snapshot()[:2], self.seq)


class SimBooks:
    """A simulator's books by symbol, made on first use from one seed."""

    def __init__(self, seed: int | None = None, levels: int = DEFAULT_LEVELS,
                 keep_history: bool = False, stale_snapshot_every: int | None = None) -> None:
        self.rng = random.Random(seed)
        self.levels, self.keep_history = levels, keep_history
        self.stale_snapshot_every = stale_snapshot_every
        self.books: dict[str, SimBook] = {}
        self.messages = 0  # book messages generated, all symbols
        self.snapshot_requests = 0
        self.stale_snapshots = 0
        #: the simulator's loop writes the books, the REST side reads them
        self.lock = threading.Lock()

    def book(self, symbol: str) -> SimBook:
        found = self.books.get(symbol)
        if found is None:
            found = self.books[symbol] = SimBook(symbol, self.rng, self.levels,
                                                 self.keep_history)
        return found

    def depth_snapshot(self, venue: str, symbol: str, limit: int | None
                       ) -> tuple[list[Level], list[Level], int, int]:
        """The REST side's depth provider: ``(bids, asks, last_update_id, time ns)``."""
        with self.lock:
            book = self.book(symbol)
            self.snapshot_requests += 1
            every = self.stale_snapshot_every
            if every and self.snapshot_requests % every == 0:
                self.stale_snapshots += 1
                bids, asks, seq = book.stale
                return bids[:limit], asks[:limit], seq, book.ts_ns
            bids, asks, seq = book.snapshot(limit)
            return bids, asks, seq, book.ts_ns
