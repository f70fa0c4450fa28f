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

import sqlite3
import time
from collections import deque
from collections.abc import Callable
from typing import Any, NamedTuple

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

    def unseen_runs(self, symbol: str, first: int, last: int) -> list[tuple[int, int]]:
        """The runs of ids in ``first … last`` never seen so far (a gap whose trades may
        have come late, from another connection); the whole range where the window
        no longer tells."""
        window = self.windows.get(symbol)
        if window is None or first <= window.floor or first < window.start:
            return [(first, last)]
        bits = (window.unseen >> (first - window.start)) & ((1 << (last - first + 1)) - 1)
        runs = []
        offset = 0
        while bits:
            skip = (bits & -bits).bit_length() - 1  # seen ids before the next unseen one
            bits >>= skip
            offset += skip
            length = (bits ^ (bits + 1)).bit_length() - 1  # unseen ids in a row
            runs.append((first + offset, first + offset + length - 1))
            bits >>= length
            offset += length
        return runs


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

    @property
    def checking(self) -> bool:
        """Whether trades are being looked up (after a reconnect)."""
        return self._before is not None

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


# --- the ledger: what became of each gap ------------------------------------------------
#: venues whose REST trade endpoint can fill an id range exactly: Binance (historicalTrades,
#: aggTrades by fromId), Coinbase (trades after an id), Kraken (Trades since), OKX
#: (history-trades after an id); Bybit keeps only recent trades, Bitstamp only by time
FILLABLE_VENUES = frozenset({"binance", "binance-futures", "coinbase", "coinbase-exchange",
                             "kraken", "okx"})
#: the ``why`` of a gap on a venue that cannot fill by id (Bybit, Bitstamp, the rest)
CANNOT_FILL = "venue cannot fill by id"
#: the statuses a gap row of missing trades moves through: ``pending`` (a backfiller may
#: claim it), then ``filled``, ``partial`` (some trades fetched, ``why`` says why not all)
#: or ``unfillable`` (none can be, ``why`` says why)
STATUSES = ("pending", "filled", "partial", "unfillable")
#: kinds of gap row that stand for missing trades (the others are marks: id resets, and
#: reconnects on a venue whose ids say what was missed)
MISSING_KINDS = ("ids", "ids_across_reconnect", "reconnect")


def ledger_status(venue: str, kind: str, ids_consecutive: bool) -> tuple[str | None, str | None]:
    """``(status, why)`` of a new gap row: ``pending`` where the venue can fill it,
    ``unfillable`` with why where it cannot, ``(None, None)`` for a mark that stands
    for no trades of its own (an id reset; a reconnect where the ids tell the rest)."""
    if kind == "id_reset" or (kind == "reconnect" and ids_consecutive):
        return None, None
    if kind == "reconnect" or venue not in FILLABLE_VENUES:
        return "unfillable", CANNOT_FILL
    return "pending", None


class Gap(NamedTuple):
    """A gap row as a backfiller reads it."""

    id: int
    venue: str
    symbol: str
    first_missing: str | None
    last_missing: str | None
    missing: int | None
    seen_at: int
    kind: str


class GapLedger:
    """The ``gaps`` table as a to-do list for a backfiller, over an open store's
    connection (the backfiller's own, in its own thread).

    A ``pending`` row is claimed once (``claim`` stamps ``claimed_at``; a claim older
    than ``stale_claim_s`` is taken as abandoned and may be claimed again), then
    ``finish``-ed as ``filled``, ``partial`` or ``unfillable`` with the number of
    trades filled, or ``release``-d to be tried again later.

    ``recorder``: returns the run's ``rtkit.recording.RecordingWriter`` or None; each
    ``finish`` is written to it as a ``gap_finished`` event, so a replay ends the gap alike.
    """

    def __init__(self, conn: sqlite3.Connection, stale_claim_s: float = 300.0,
                 recorder: Callable[[], Any] | None = None) -> None:
        self.conn = conn
        self.stale_claim_s = stale_claim_s
        self.recorder = recorder

    def pending(self, venue: str | None = None) -> list[Gap]:
        """Pending gaps, oldest first."""
        where, args = "status = 'pending'", []
        if venue is not None:
            where += " AND venue = ?"
            args.append(venue)
        rows = self.conn.execute(
            f"SELECT {', '.join(Gap._fields)} FROM gaps WHERE {where} ORDER BY id", args)
        return [Gap(*row) for row in rows]

    def claim(self, venue: str | None = None, now_ns: int | None = None) -> Gap | None:
        """The oldest pending gap no one works on, now claimed by the caller; None if none."""
        now_ns = time.time_ns() if now_ns is None else now_ns
        abandoned = now_ns - int(self.stale_claim_s * 1e9)
        claimable = "status = 'pending' AND (claimed_at IS NULL OR claimed_at < ?)"
        args: list = [abandoned]
        if venue is not None:
            claimable += " AND venue = ?"
            args.append(venue)
        while True:  # one row at a time: a file may hold a long run's pending gaps
            row = self.conn.execute(f"SELECT {', '.join(Gap._fields)} FROM gaps WHERE "
                                    f"{claimable} ORDER BY id LIMIT 1", args).fetchone()
            if row is None:
                return None
            gap = Gap(*row)
            with self.conn:
                taken = self.conn.execute(
                    "UPDATE gaps SET claimed_at = ? WHERE id = ? AND status = 'pending' "
                    "AND (claimed_at IS NULL OR claimed_at < ?)", (now_ns, gap.id, abandoned))
            if taken.rowcount == 1:
                return gap

    def release(self, gap_id: int) -> None:
        """Give a claimed gap back (to be tried again)."""
        with self.conn:
            self.conn.execute("UPDATE gaps SET claimed_at = NULL WHERE id = ?", (gap_id,))

    def finish(self, gap_id: int, status: str, filled: int, why: str | None = None,
               at_ns: int | None = None) -> None:
        """Record what became of a gap: ``filled``, ``partial`` or ``unfillable``, how many
        trades were filled, and why not all (``partial``/``unfillable`` need a why)."""
        if status not in STATUSES[1:]:
            raise ValueError(f"a gap ends filled, partial or unfillable, not {status!r}")
        if status != "filled" and not why:
            raise ValueError(f"say why a gap ends {status} (why='older than the venue keeps')")
        if filled < 0:
            raise ValueError(f"filled counts trades: >= 0, not {filled!r}")
        at_ns = time.time_ns() if at_ns is None else at_ns
        with self.conn:
            self.conn.execute(
                "UPDATE gaps SET status = ?, why = ?, filled = ?, filled_at = ?, "
                "claimed_at = NULL WHERE id = ?", (status, why, filled, at_ns, gap_id))
        writer = self.recorder() if self.recorder is not None else None
        if writer is not None:  # which gap, by what a replay's row has too (not its id)
            row = self.conn.execute("SELECT venue, symbol, first_missing, last_missing, "
                                    "seen_at, kind FROM gaps WHERE id = ?", (gap_id,)).fetchone()
            if row is not None:
                writer.gap_finished(at_ns, *row, status=status, filled=filled, why=why)


def migrate_gaps(conn: sqlite3.Connection) -> None:
    """Bring a ``gaps`` table made before the ledger up to date, in place: add the
    ledger's columns and give the old rows a status as a new row would get."""
    have = {row[1] for row in conn.execute("PRAGMA table_info(gaps)")}
    added = [(name, sql) for name, sql in LEDGER_COLUMNS if name not in have]
    if not added:
        return
    with conn:
        for name, sql in added:
            conn.execute(f"ALTER TABLE gaps ADD COLUMN {name} {sql}")
        if "status" in dict(added):
            fillable = ", ".join(f"'{v}'" for v in sorted(FILLABLE_VENUES))
            conn.execute(
                "UPDATE gaps SET status = CASE WHEN venue IN (" + fillable + ") THEN 'pending' "
                "ELSE 'unfillable' END, why = CASE WHEN venue IN (" + fillable + ") THEN NULL "
                "ELSE ? END WHERE kind IN ('ids', 'ids_across_reconnect')", (CANNOT_FILL,))
            conn.execute("UPDATE gaps SET filled = 0 WHERE status IS NOT NULL")


#: the ledger's columns of ``gaps`` (after ``kind``), as ``migrate_gaps`` adds them
LEDGER_COLUMNS = (("status", "TEXT"), ("why", "TEXT"), ("filled_at", "INTEGER"),
                  ("filled", "INTEGER"), ("claimed_at", "INTEGER"))


#: an ``INSERT`` of a gap row of the seven columns from before the ledger (no status)
INSERT_GAP_BEFORE_LEDGER = ("INSERT INTO gaps (venue, symbol, first_missing, last_missing, "
                            "missing, seen_at, kind) VALUES (?, ?, ?, ?, ?, ?, ?)")


def insert_gaps(insert_rows, sql: str, gaps, refused) -> None:
    """Gap rows through ``insert_rows`` (a store's): rows of the table's columns with
    ``sql``, rows of the seven columns from before the ledger (a caller's own) without
    a status. The rows themselves are passed, so a refused one is known by identity."""
    gaps = gaps if isinstance(gaps, list) else list(gaps)
    narrow = [g for g in gaps if len(g) == 7]
    if narrow:
        insert_rows(INSERT_GAP_BEFORE_LEDGER, narrow, "gaps", refused)
        gaps = [g for g in gaps if len(g) != 7]
    insert_rows(sql, gaps, "gaps", refused)
