"""Gap and duplicate detection for venues whose trade ids step by one per symbol.

Binance ``t``/``a``, Coinbase ``trade_id``, Kraken v2 ``trade_id`` and OKX
``tradeId`` (with ``count``) are consecutive per symbol, so the ids say what
was missed. A jump is a gap; an id seen before (a reconnect overlap, a venue
snapshot) is a duplicate instead of entering the ring twice. Venues without
such ids never report a gap; for them :class:`RecentIds` still catches a
trade re-sent within a window.

Only an id actually seen is ever a duplicate. Each symbol remembers, one bit
per id, which of the ``ID_WINDOW`` ids below its highest were never seen (a
gap still hoped for, or ids older than its first trade); an id in there
arrives *late* and is kept. An id further below is taken as the venue
counting again (a ``reset``) and kept; where a symbol's window was forgotten
to stay within ``ID_BITS_BUDGET`` the detector cannot tell, and keeps the
trade too. SQLite's primary key ``(venue, symbol, trade_id)`` then stores it
once and counts a repeat as a duplicate, so the accounting stays exact.
"""

from __future__ import annotations

from collections import deque

#: ids below a symbol's highest one whose fate (seen or not) is remembered, one bit
#: each: a trade that arrives this late is still recognised and kept
ID_WINDOW = 10_000
#: bits of all symbols' windows together; a symbol whose window would take more
#: forgets it (its older ids are then kept unchecked, see ``GapDetector.forgotten``).
#: A window costs at most 2 × ID_WINDOW bits (2.5 KB), so this bounds ~3,300 full ones.
ID_BITS_BUDGET = 64 * 1024 * 1024  # 8 MiB
_NO_FLOOR = -(1 << 64)


class _Window:
    """What one symbol remembers below its highest id ``high``.

    Ids ``start … high`` were seen unless their bit is set in ``unseen`` (bit k is
    id ``start + k``); ids from ``high - ID_WINDOW`` up to ``start`` came before the
    first trade and were never seen; ids at or below ``floor`` were forgotten.
    """

    __slots__ = ("start", "unseen", "floor")

    def __init__(self, start: int) -> None:
        self.start = start
        self.unseen = 0
        self.floor = _NO_FLOOR


class GapDetector:
    """Per-symbol last id; classifies each tick as new, gap-after, late, or duplicate."""

    def __init__(self, budget_bits: int | None = None) -> None:
        #: highest id seen per symbol (read and advanced directly by the pipeline's
        #: fast path: the next id in line changes nothing else)
        self.last: dict[str, int] = {}
        #: symbols whose next gap is one across a reconnect
        self.reconnected: set[str] = set()
        #: symbols first seen or taken out of ``reconnected`` since the last reconnect:
        #: all a reconnect has to put (back) in it (at most two entries a symbol)
        self._changed: list[str] = []
        self.windows: dict[str, _Window] = {}
        self.budget_bits = ID_BITS_BUDGET if budget_bits is None else budget_bits
        #: bits held by all the windows' ``unseen`` sets
        self.bits = 0
        #: times a symbol's window was forgotten to stay within ``budget_bits``
        self.forgotten = 0

    def connection_opened(self) -> None:
        """The next gap of each symbol is labelled as one across a reconnect. Costs
        the symbols changed since the last one, not every symbol: a replayed
        recording may hold a million 'open' events."""
        self.reconnected.update(self._changed)
        self._changed.clear()

    def _settled(self, symbol: str) -> None:
        """``symbol`` has had its first trade since the reconnect."""
        if symbol in self.reconnected:
            self.reconnected.discard(symbol)
            self._changed.append(symbol)

    def check(self, symbol: str, first_id: int, last_id: int):
        """None for a new id (the next in line, the first seen, or one the detector
        cannot judge: kept for the store to judge), ``'late'`` for a never-seen id
        below the highest (a gap's trade arriving out of order, or older than the
        first), ``'duplicate'`` for an id seen before, ``'reset'`` when the venue's
        ids start again far below (a new count, not a replay), else
        ``(first_missing, last_missing, kind)`` for the gap before this id."""
        high = self.last.get(symbol)
        if high is None:
            self.last[symbol] = last_id
            self._changed.append(symbol)
            self.windows[symbol] = _Window(first_id)
            return None
        if first_id == high + 1:
            self.last[symbol] = last_id
            self._settled(symbol)
            return None
        window = self.windows[symbol]
        if last_id <= high:
            if high - last_id > ID_WINDOW:  # far below anything remembered: a new count
                self._drop(window)
                self.last[symbol] = last_id
                self.windows[symbol] = _Window(first_id)
                return "reset"
            return self._below(window, high, first_id, last_id)
        if first_id <= high:  # a group that overlaps the highest id: nothing missing
            self._below(window, high, first_id, high)
            self.last[symbol] = last_id
            return None
        self.last[symbol] = last_id
        kind = "ids_across_reconnect" if symbol in self.reconnected else "ids"
        self._settled(symbol)
        self._missed(window, high + 1, first_id - 1, last_id)
        return (high + 1, first_id - 1, kind)

    # --- the bits ---------------------------------------------------------------------
    def _below(self, window: _Window, high: int, first: int, last: int):
        """Ids ``first … last`` (at or below ``high``): marks them seen and says
        whether any was new (``'late'``), all were seen (``'duplicate'``), or the
        window cannot tell (None)."""
        lowest = max(first, high - ID_WINDOW, window.floor + 1)
        if lowest > last:
            return None
        old = unseen = window.unseen
        start = window.start
        bottom = high - ID_WINDOW
        if start < bottom - ID_WINDOW:  # far below the window (a long run of ids in line,
            unseen >>= bottom - start    # or a group that jumped): slide it up first, so
            start = window.start = bottom  # no mask below spans the run
        late = False
        if lowest < start:  # older than the first trade: never seen; the rest of that
            late = True      # stretch stays unseen
            top = min(last, start - 1)
            unseen <<= start - lowest
            if top + 1 < start:
                unseen |= ((1 << (start - 1 - top)) - 1) << (top + 1 - lowest)
            start = window.start = lowest
        a = max(lowest, start)
        if a <= last:
            mask = ((1 << (last - a + 1)) - 1) << (a - start)
            if unseen & mask:
                late = True
                unseen &= ~mask
        if unseen is not old:
            self._store(window, high, old, unseen)
        if late:
            return "late"
        return None if lowest > first else "duplicate"

    def _missed(self, window: _Window, first: int, last: int, high: int) -> None:
        """Ids ``first … last`` were skipped on the way to ``high``: remember them."""
        old = unseen = window.unseen
        bottom = high - ID_WINDOW
        if window.start < bottom - ID_WINDOW:  # slide the window up, now and then
            unseen >>= bottom - window.start
            window.start = bottom
        first = max(first, bottom)
        if first <= last:
            unseen |= ((1 << (last - first + 1)) - 1) << (first - window.start)
        self._store(window, high, old, unseen)

    def _store(self, window: _Window, high: int, old: int, unseen: int) -> None:
        self.bits += unseen.bit_length() - old.bit_length()
        window.unseen = unseen
        if self.bits > self.budget_bits:  # forget this window: its ids are kept unchecked
            self.bits -= unseen.bit_length()
            window.unseen = 0
            window.floor = high
            window.start = high + 1
            self.forgotten += 1

    def _drop(self, window: _Window) -> None:
        self.bits -= window.unseen.bit_length()


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
        """Check the next ``size`` trades against those seen so far. A reconnect while
        still checking keeps the set (it holds every remembered key already) until it
        has grown past twice ``size``: a copy costs ``size`` keys, made at most once
        per ``size`` trades, however many reconnects come (a replayed recording of
        nothing but 'open' events)."""
        if self._recent:
            if self._before is None or len(self._before) > 2 * self.size:
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
