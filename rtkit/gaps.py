"""Gap and duplicate detection for venues whose trade ids step by one per symbol.

Binance ``t``/``a``, Coinbase ``trade_id``, Kraken v2 ``trade_id`` and OKX
``tradeId`` (with ``count``) are consecutive per symbol, so the ids say what
was missed. A jump is a gap; an id at or below the last one seen is a replay
(a reconnect overlap, a venue snapshot) and is counted as a duplicate instead
of entering the ring twice. Venues without such ids never report a gap; for
them :class:`RecentIds` still catches a trade re-sent within a window.
"""

from __future__ import annotations

from collections import deque

#: a gap up to this many ids is remembered id by id, so a trade that arrives late
#: (out of order) is recognised and kept; a bigger one is a real outage
MAX_REMEMBERED_GAP = 10_000


class GapDetector:
    """Per-symbol last id; classifies each tick as new, gap-after, late, or duplicate."""

    def __init__(self) -> None:
        #: last id seen per symbol (read directly by the pipeline's fast path)
        self.last: dict[str, int] = {}
        #: symbols whose next gap is one across a reconnect
        self.reconnected: set[str] = set()
        #: ids of recent small gaps per symbol, still hoped for
        self.missing: dict[str, set[int]] = {}

    def connection_opened(self) -> None:
        """The next gap of each symbol is labelled as one across a reconnect."""
        self.reconnected = set(self.last)

    def check(self, symbol: str, first_id: int, last_id: int):
        """None for the next id in line (or the first seen), ``'late'`` for an id
        of an earlier gap arriving out of order, ``'duplicate'`` for a replayed
        id, ``'reset'`` when the venue's ids start again far below (a new count,
        not a replay), else ``(first_missing, last_missing, kind)``."""
        prev = self.last.get(symbol)
        if prev is None:
            self.last[symbol] = last_id
            return None
        if first_id == prev + 1:
            self.last[symbol] = last_id
            self.reconnected.discard(symbol)
            return None
        if last_id <= prev:
            missing = self.missing.get(symbol)
            if missing and first_id in missing:
                missing.difference_update(range(first_id, last_id + 1))
                return "late"
            if prev - last_id > MAX_REMEMBERED_GAP:  # far below anything replayed: a new count
                self.last[symbol] = last_id
                self.missing.pop(symbol, None)
                return "reset"
            return "duplicate"
        self.last[symbol] = last_id
        if first_id <= prev:  # a group that overlaps the last one seen: nothing missing
            return None
        kind = "ids_across_reconnect" if symbol in self.reconnected else "ids"
        self.reconnected.discard(symbol)
        if first_id - 1 - prev <= MAX_REMEMBERED_GAP:
            missing = self.missing.setdefault(symbol, set())
            if len(missing) > MAX_REMEMBERED_GAP:  # never grows without bound
                missing.clear()
            missing.update(range(prev + 1, first_id))
        return (prev + 1, first_id - 1, kind)


class RecentIds:
    """Catches trades re-sent after a reconnect, for venues whose ids say nothing
    about order (Bybit UUIDs, Bitstamp, Kraken v1's synthetic ids).

    It remembers the last ``size`` (symbol, trade_id) keys, which costs one
    deque append per trade; only after a reconnect, for the next ``size``
    trades, does it look them up (and each other): that is when a venue's
    snapshot re-sends what was already seen. SQLite's primary key stays the
    final word for repeats outside that window.
    """

    def __init__(self, size: int = 50_000) -> None:
        self.size = size
        self._recent: deque = deque(maxlen=size)
        self._before: set | None = None  # keys from before the reconnect, while checking
        self._left = 0

    def connection_opened(self) -> None:
        if self._recent:
            self._before = set(self._recent)
            self._left = self.size

    def new_ticks(self, ticks: list) -> list:
        """The ticks not seen before the last reconnect; remembers them all."""
        if self._before is not None:
            before = self._before
            kept = []
            for t in ticks:
                key = (t[0], t[1])
                if key not in before:
                    before.add(key)
                    kept.append(t)
            self._left -= len(ticks)
            if self._left <= 0:
                self._before = None
        else:
            kept = ticks
        self._recent.extend([(t[0], t[1]) for t in kept])
        return kept
