"""The local book: both sides of one symbol's price levels, kept sorted, capped in depth.

Each level keeps the venue's own ``(price, size)`` strings, because a checksum
(Kraken's CRC32) is computed from exactly what the venue sent, and a float
round-trip changes that text (``0.80386470`` → ``0.8038647``). The float of
the price is the key (cheap to compare and sort); each side is a dict from the
key to the strings plus a sorted list of keys, best first (bids are stored
negated, so both lists ascend). Inserting a new level is one ``bisect`` plus a
list insert, which stays in the microseconds up to tens of thousands of levels.

A size of 0 for a level the book does not hold is routine on several venues
(Binance says so): a no-op. The depth cap bounds memory: after each message
the worst levels beyond ``max_levels`` per side are dropped (and a venue whose
checksum covers a truncated book, Kraken, needs exactly that).
"""

from __future__ import annotations

from bisect import bisect_left
from typing import Literal

Side = Literal["bid", "ask"]

#: levels per side a book keeps when the caller gives no cap: bounds a book's memory
#: (about ``LEVEL_BYTES`` each) whatever a venue sends
DEFAULT_MAX_LEVELS = 5_000
#: approximate bytes one level costs (dict entry, float key in the sorted list,
#: the two venue strings): for the README's memory formula
LEVEL_BYTES = 250


class LocalBook:
    """Both sides of one book. ``max_levels``: levels kept per side (None: no cap)."""

    __slots__ = ("_keys", "_levels", "max_levels")

    def __init__(self, max_levels: int | None = DEFAULT_MAX_LEVELS) -> None:
        if max_levels is not None and max_levels < 1:
            raise ValueError(f"max_levels must be >= 1 (or None), not {max_levels!r}")
        self.max_levels = max_levels
        # side 0 bids (keys negated), side 1 asks; keys ascend = best first on both
        self._keys: tuple[list[float], list[float]] = ([], [])
        self._levels: tuple[dict[float, tuple[str, str]], dict[float, tuple[str, str]]] = ({}, {})

    def clear(self) -> None:
        for keys in self._keys:
            keys.clear()
        for levels in self._levels:
            levels.clear()

    def __len__(self) -> int:
        return len(self._levels[0]) + len(self._levels[1])

    def depth(self, side: Side) -> int:
        return len(self._levels[side == "ask"])

    def set_level(self, is_ask: bool, price: str, size: str) -> tuple[float, float]:
        """Set one level from the venue's strings (size 0 removes it); returns the floats.

        Raises ValueError on text that is no number (the caller's desync)."""
        p, s = float(price), float(size)
        key = p if is_ask else -p
        levels = self._levels[is_ask]
        if s > 0.0:
            if key not in levels:
                keys = self._keys[is_ask]
                keys.insert(bisect_left(keys, key), key)
            levels[key] = (price, size)
        elif levels.pop(key, None) is not None:  # absent and size 0: nothing to do
            keys = self._keys[is_ask]
            del keys[bisect_left(keys, key)]
        return p, s

    def apply(self, is_ask: bool, levels: list[tuple[str, str]], head: tuple, side: str,
              rows: list) -> None:
        """``set_level`` for each of a message's levels of one side, each appending its
        ``(*head, side, price, size)`` row: the hot path of a delta, in one loop.
        Raises ValueError on text that is no number (levels before it are applied)."""
        keys, book = self._keys[is_ask], self._levels[is_ask]
        sign = 1.0 if is_ask else -1.0
        append = rows.append
        for level in levels:
            price, size = level
            p, s = float(price), float(size)
            key = sign * p
            if s > 0.0:
                if key not in book:
                    keys.insert(bisect_left(keys, key), key)
                book[key] = level
            elif book.pop(key, None) is not None:
                del keys[bisect_left(keys, key)]
            append((*head, side, p, s))

    def trim(self) -> None:
        """Drop the worst levels beyond ``max_levels`` on each side."""
        cap = self.max_levels
        if cap is None:
            return
        for keys, levels in zip(self._keys, self._levels, strict=True):
            if len(keys) > cap:
                for key in keys[cap:]:
                    del levels[key]
                del keys[cap:]

    def levels(self, side: Side, n: int) -> list[tuple[str, str]]:
        """The best ``n`` levels of a side as the venue's strings, best first
        (bids high→low, asks low→high): what a checksum reads."""
        is_ask = side == "ask"
        levels = self._levels[is_ask]
        return [levels[k] for k in self._keys[is_ask][:n]]

    def float_levels(self, side: Side, n: int | None = None) -> list[tuple[float, float]]:
        """The best ``n`` levels (all when None) as floats, best first."""
        is_ask = side == "ask"
        levels = self._levels[is_ask]
        keys = self._keys[is_ask] if n is None else self._keys[is_ask][:n]
        sign = 1.0 if is_ask else -1.0
        return [(sign * k, float(levels[k][1])) for k in keys]

    def best(self, side: Side) -> tuple[float, float] | None:
        """``(price, size)`` of the best level of a side, or None when it is empty."""
        is_ask = side == "ask"
        keys = self._keys[is_ask]
        if not keys:
            return None
        k = keys[0]
        return (k if is_ask else -k), float(self._levels[is_ask][k][1])

    def best_bid(self) -> tuple[float, float] | None:
        return self.best("bid")

    def best_ask(self) -> tuple[float, float] | None:
        return self.best("ask")

    def crossed(self) -> tuple[float, float] | None:
        """``(best bid, best ask)`` when the bid is at or above the ask, else None."""
        bids, asks = self._keys
        if bids and asks and -bids[0] >= asks[0]:
            return -bids[0], asks[0]
        return None
