"""A replay ends each gap as the live run's backfill did.

A recording's ``gap_finished`` events (:mod:`rtkit.recording`) say what a run's
backfill made of each gap: the replay finds the ``gaps`` row it made for the same
gap (same venue, symbol, ids, ``seen_at`` and kind: the replay's row id may differ)
and writes the same status, why, count and ``filled_at`` (the event's time), and
the venue's ``gaps_open`` and ``backfilled`` move as the live run's did.

The rows are found after they are written (a replay writes every
``_FLUSH_EVERY_FRAMES`` lines, and a gap held for a second connection is written
later still): the events wait until the next write, at most ``MAX_HELD_OUTCOMES``
of them (beyond, the oldest are given up on and counted in ``gaps_unmatched``).
The pending rows of the replay are looked up by their fields in memory (at most
``MAX_INDEXED_GAPS``), never by a scan of the table per event: a hostile recording
of a million gaps and as many events costs no quadratic time.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable

from rtkit.recording import GapFinished

log = logging.getLogger("rtkit")

#: ``gap_finished`` events waiting for the next write to SQLite (more: written at once)
MAX_HELD_OUTCOMES = 1_000
#: pending gap rows of a replay looked up by their fields; a row beyond is not found
#: (its event is counted in ``gaps_unmatched``): ~300 bytes each, ~15 MB at most
MAX_INDEXED_GAPS = 50_000


class GapOutcomes:
    """The ``gap_finished`` events of a replay, applied to its ``gaps`` rows."""

    def __init__(self, conn: Callable[[], sqlite3.Connection | None]) -> None:
        """``conn``: the replay store's connection (None: a store of no gaps)."""
        self._conn = conn
        self.held: list[GapFinished] = []
        #: the replay's pending rows by their fields → their ids (oldest first)
        self._pending: dict[tuple, list[tuple[int, int | None]]] = {}
        self._indexed = 0
        #: rows at or below this id are not the replay's (an earlier run's or replay's)
        self._read_to: int | None = None
        #: events whose gap the replay never made (a gap of an earlier run, a forged event)
        self.unmatched = 0

    def start(self) -> None:
        """Note where the replay's gap rows begin (the database may hold others)."""
        if self._read_to is None:
            self._read_to = self._top()

    def _top(self) -> int:
        conn = self._conn()
        if conn is None:
            return 0
        try:
            return conn.execute("SELECT coalesce(max(id), 0) FROM gaps").fetchone()[0]
        except sqlite3.OperationalError:  # a store without a gaps table (on-chain)
            return 0

    def add(self, event: GapFinished) -> bool:
        """Hold ``event`` until its row is written; True when the events held should be
        applied now (written first)."""
        self.held.append(event)
        return len(self.held) >= MAX_HELD_OUTCOMES

    def apply(self, gap_closed: Callable[[str, int], None],
              reject: Callable[[GapFinished, str], None], final: bool = False) -> None:
        """End the gaps of the events held whose rows are written; ``gap_closed(venue,
        filled)`` for each, ``reject(event, why)`` for an event no gap could end so.
        Events whose row is not written yet wait (at most MAX_HELD_OUTCOMES); at the
        ``final`` write, they are counted in ``unmatched``."""
        if not self.held:
            return
        conn = self._conn()
        waiting: list[GapFinished] = []
        if conn is None:  # a store without gaps: no event ends anything
            waiting = self.held
        else:
            self._index(conn)
            waiting = self._end(conn, gap_closed, reject)
        # the oldest waiting beyond half the bound are given up on: the next write is
        # then at least as many events away (not one a line, for a file of forged ones)
        late = len(waiting) - (0 if final else MAX_HELD_OUTCOMES // 2)
        if late > 0:
            self.unmatched += late
            log.warning("rtkit: %d gap_finished events of the recording end no gap of this "
                        "replay (gaps of an earlier run, not in this recording?); those gaps "
                        "are left as they are", late)
            waiting = waiting[late:]
        self.held = waiting

    def _end(self, conn: sqlite3.Connection, gap_closed: Callable[[str, int], None],
             reject: Callable[[GapFinished, str], None]) -> list[GapFinished]:
        """End the rows of the events held that are found; the events still waiting."""
        waiting: list[GapFinished] = []
        ended: list[tuple] = []
        for event in self.held:
            ids = self._pending.get(event.key())
            if not ids:
                waiting.append(event)
                continue
            gap_id, missing = ids[0]
            if event.filled > (missing or 0) or (
                    event.status == "filled" and event.filled != missing):
                reject(event, f"{event.filled:,} trades {event.status} of a gap of "
                              f"{missing if missing is not None else 'no'} missing ids")
                continue
            ids.pop(0)
            if not ids:
                del self._pending[event.key()]
            self._indexed -= 1
            ended.append((event.status, event.why, event.filled, event.received_at, gap_id))
            gap_closed(event.venue, event.filled)
        with conn:
            conn.executemany("UPDATE gaps SET status = ?, why = ?, filled = ?, filled_at = ?, "
                             "claimed_at = NULL WHERE id = ?", ended)
        return waiting

    def _index(self, conn: sqlite3.Connection) -> None:
        """Read the pending rows written since the last look (each row read once)."""
        rows = conn.execute(
            "SELECT id, venue, symbol, first_missing, last_missing, seen_at, kind, missing "
            "FROM gaps WHERE id > ? AND status = 'pending' ORDER BY id", (self._read_to or 0,))
        for gap_id, *key, missing in rows:
            self._read_to = gap_id
            if self._indexed >= MAX_INDEXED_GAPS:
                continue  # a row beyond the bound is not found: its event is unmatched
            self._pending.setdefault(tuple(key), []).append((gap_id, missing))
            self._indexed += 1
