"""The writer side of a :class:`~rtkit.pipeline.Pipeline`: the rows waiting for SQLite.

The receive thread adds ticks, reject rows and gap rows; the writer thread
takes them all in one swap (``take``), then either counts the write (``done``,
after ``set_aside`` for rows SQLite refused) or puts them back in front
(``give_back``). The lists are swapped under ``_lock``; each counter here has
one writing thread.

Reject rows are bounded twice while storage stalls: by count
(``MAX_PENDING_REJECTS``) and by the memory their text takes
(``MAX_PENDING_REJECT_BYTES``, the rows waiting plus those being written). A
reject past either bound is still counted, by reason; only its row is lost.
"""

from __future__ import annotations

import sys
import threading
from collections import Counter
from collections.abc import Sequence
from typing import Any, NamedTuple

from rtkit.kinds.pending import PendingRecords
from rtkit.kinds.trades import TradeRows
from rtkit.store import MAX_REJECT_TEXT
from rtkit.validate import Reject

#: reject rows waiting for SQLite before new rows are dropped; the rejects themselves
#: are still counted by reason
MAX_PENDING_REJECTS = 20_000
#: memory the reject rows held for SQLite (waiting, or being written) may take, bytes:
#: a row keeps up to MAX_REJECT_TEXT characters of its frame, which Python stores in
#: 1, 2 or 4 bytes each (4 for emoji), so the row count alone bounded 20,000 rows at
#: up to 16 KiB each (+320 MiB) while storage stalled
MAX_PENDING_REJECT_BYTES = 16 * 1024 * 1024
#: what a reject row costs beside its two strings: the tuple, two ints, a list slot
_REJECT_ROW_BYTES = 160


def frame_text(frame) -> str:
    """A frame as text for the ``rejects`` table, truncated to MAX_REJECT_TEXT."""
    if isinstance(frame, (bytes, bytearray, memoryview)):
        return bytes(frame[: MAX_REJECT_TEXT * 4]).decode("utf-8", "backslashreplace")[
            :MAX_REJECT_TEXT]
    return str(frame)[:MAX_REJECT_TEXT]


class Batch(NamedTuple):
    """One flush: rows for the ``ticks``, ``rejects`` and ``gaps`` tables, and the rows
    of the other kinds collected (``{kind: rows}``; None when there are none)."""

    ticks: Sequence[tuple]
    rejects: list[tuple]
    gaps: list[tuple]
    records: dict[str, list] | None = None


class PendingQueue:
    """The pending ticks, reject and gap rows of a pipeline, and the writer's counters."""

    # set by the Pipeline that this queue is part of
    venue: str
    stage: Any
    records: PendingRecords
    queued: int
    rejected: int
    rejected_by_reason: Counter[str]
    ring: Any
    hooks: Any
    pending_limit: int
    dropped_overflow: int

    def _init_queue(self) -> None:
        self._lock = threading.Lock()
        self._ticks: list[tuple[int, list]] = []  # (received_at_ns, ticks) per frame
        self._rejects: list[tuple] = []
        self._rejects_bytes = 0  # memory of the rows in _rejects (see MAX_PENDING_REJECT_BYTES)
        self._taken_rejects_bytes = 0  # ... and of those taken, until done or given back
        self._gaps: list[tuple] = []
        self._taken: tuple[list, list, list] = ([], [], [])
        # written by the storing thread
        self.stored = 0
        self.duplicates = 0
        self.rejects_stored = 0
        self.rejects_dropped = 0  # reject rows not kept while storage stalled
        self.unstorable = 0  # ticks SQLite refused as rows: set aside, the rest written
        self.rejects_unstorable = 0
        self.gaps_unstorable = 0

    # --- receiving thread -------------------------------------------------------
    def _reject(self, reject: Reject, frame, received_at_ns: int, size: int | None = None) -> None:
        self.rejected += 1
        self.rejected_by_reason[reject.reason] += 1
        if size is None:
            size = len(frame) if hasattr(frame, "__len__") else 0
        # storage stalled under a hostile feed: the reject is counted above, by reason, and
        # only its row is lost
        if (len(self._rejects) >= MAX_PENDING_REJECTS
                or self._rejects_bytes + self._taken_rejects_bytes >= MAX_PENDING_REJECT_BYTES):
            self.rejects_dropped += 1
            return
        detail, text = reject.detail[:500], frame_text(frame)
        cost = sys.getsizeof(detail) + sys.getsizeof(text) + _REJECT_ROW_BYTES
        with self._lock:
            if self._rejects_bytes + self._taken_rejects_bytes + cost > MAX_PENDING_REJECT_BYTES:
                self.rejects_dropped += 1
                return
            self._rejects.append((received_at_ns, self.venue, reject.reason, detail, text, size))
            self._rejects_bytes += cost

    def _store_ticks(self, ticks: list, received_at_ns: int) -> None:
        """Checked ticks into the ring, the hooks and the rows pending for the sinks (the
        receive path's, and a backfill's under ``_counting``)."""
        n = len(ticks)
        self.ring.append(self.venue, received_at_ns, ticks)
        if self.hooks is not None:
            self.hooks.offer("trades", received_at_ns, ticks)
        if self.pending + n > self.pending_limit:
            self.dropped_overflow += n
            return
        with self._lock:
            self._ticks.append((received_at_ns, ticks))
        self.queued += n

    def queue(self, items: list) -> None:
        """Add items to the pending list (a stage's rows; ``queued`` is its to count)."""
        with self._lock:
            self._ticks += items

    # --- storing thread ---------------------------------------------------------
    def take(self) -> Batch:
        """Everything pending, for a sink: the trades as the kind stores them
        (``rtkit.kinds.trades.TradeRows``, made when a sink first reads them), the
        rejects and gaps rows.

        Call ``done`` after a successful write, or ``give_back`` after a failed one.
        """
        if self.stage is not None:
            return self.stage.take()
        frames, rejects, gaps = self.take_pending()
        return Batch(TradeRows(self.venue, frames), rejects, gaps, self.records.take() or None)

    def take_pending(self) -> tuple[list, list, list]:
        """Swap out the pending lists, remembered for ``give_back`` (a stage's ``take``)."""
        with self._lock:
            frames, self._ticks = self._ticks, []
            rejects, self._rejects = self._rejects, []
            gaps, self._gaps = self._gaps, []
            self._taken_rejects_bytes, self._rejects_bytes = self._rejects_bytes, 0
        self._taken = (frames, rejects, gaps)
        return frames, rejects, gaps

    def release_taken(self) -> None:
        """What ``take`` returned is written: its memory no longer counts (``done`` calls it)."""
        with self._lock:
            self._taken_rejects_bytes = 0
        self._taken = ([], [], [])

    def done(self, batch: Batch, inserted) -> None:
        """Count a successful write of what ``take`` returned (a stage counts its own)."""
        if self.stage is not None:
            self.stage.done(batch, inserted)
            return
        self.stored += inserted
        self.duplicates += len(batch.ticks) - inserted
        self.rejects_stored += len(batch.rejects)
        if batch.records:
            self.records.done(batch.records, getattr(inserted, "kinds", {}))
        self.release_taken()

    def set_aside(self, batch: Batch, refused: list[tuple]) -> Batch:
        """``batch`` without the rows SQLite refused (``TickStore.write``'s ``refused``:
        ``(table, row, error)``), which are counted by table; pass the result to ``done``."""
        gone = {table: {id(row) for t, row, _ in refused if t == table}
                for table in ("ticks", "rejects", "gaps")}
        def keep(table: str, rows: Sequence[tuple]) -> list[tuple]:
            return [row for row in rows if id(row) not in gone[table]]

        kept = Batch(keep("ticks", batch.ticks), keep("rejects", batch.rejects),
                     keep("gaps", batch.gaps),
                     self.records.set_aside(batch.records, refused) if batch.records else None)
        self.unstorable += len(batch.ticks) - len(kept.ticks)
        self.rejects_unstorable += len(batch.rejects) - len(kept.rejects)
        self.gaps_unstorable += len(batch.gaps) - len(kept.gaps)
        return kept

    def give_back(self) -> None:
        """Put what ``take`` returned back in front, to be written by the next try."""
        frames, rejects, gaps = self._taken
        with self._lock:
            self._ticks[:0] = frames
            self._rejects[:0] = rejects
            self._gaps[:0] = gaps
            self._rejects_bytes += self._taken_rejects_bytes
            self._taken_rejects_bytes = 0
        self._taken = ([], [], [])
        self.records.give_back()

    # --- anyone -------------------------------------------------------------------
    @property
    def pending(self) -> int:
        """Ticks accepted but not yet written (or found duplicate) in SQLite."""
        return self.queued - self.stored - self.duplicates - self.unstorable
