"""The receive side's counters of a :class:`~rtkit.pipeline.Pipeline`, and one
consistent reading of all of them.

The receive thread changes its counters under ``_counting`` once per batch of
frames; ``stats()`` reads under it, and reads the writer's counters once
(``pending`` is derived from them), so the accounting sums hold in every read:

    frames == tick_frames + control + rejected_frames
    ticks  == stored + duplicates + pending + dropped_overflow + unstorable
"""

from __future__ import annotations

import threading
from collections import Counter
from typing import Any

from rtkit.gaps import GapDetector
from rtkit.kinds.pending import PendingRecords
from rtkit.venues.base import Control


class PipelineCounters:
    """What a pipeline counts, and ``stats()`` to read it as a plain dict."""

    # set by the Pipeline (and its PendingQueue) that these counters are part of
    stage: Any
    records: PendingRecords
    gap_detector: GapDetector | None
    stored: int
    duplicates: int
    unstorable: int
    rejects_stored: int
    rejects_dropped: int
    rejects_unstorable: int
    gaps_unstorable: int
    gaps_pending: int
    gaps_closed: int
    backfilled: int

    def _init_counters(self) -> None:
        self._counting = threading.Lock()  # a batch's counter updates vs. stats()
        # written by the processing thread
        self.frames = 0
        self.tick_frames = 0
        self.ticks = 0
        self.control = 0
        self.rejected = 0
        self.rejected_frames = 0
        self.rejected_by_reason: Counter[str] = Counter()
        self.queued = 0
        self.dropped_overflow = 0
        self.duplicates_seen = 0  # replayed ids caught before the ring
        self.gaps = 0
        self.missing_trades = 0
        self.late_trades = 0  # never-seen ids below the highest (out of order): kept
        self.id_resets = 0  # times a symbol's ids started again far below
        self.reconnect_marks = 0
        self.last_frame_ns = 0
        self.last_control: Control | None = None
        self.last_venue_error = ""

    def stats(self) -> dict:
        """The counters as a plain dict (the keys of ``rtkit replay --json``).

        One consistent reading: no batch of frames is half counted in it, and the
        writer's counters are read once (``pending`` is derived from them), so
        the accounting sums hold in every dict returned."""
        with self._counting:
            return self._stats()

    def _stats(self) -> dict:
        """The counters, for ``stats()`` to call under ``_counting``."""
        stored, duplicates, unstorable = self.stored, self.duplicates, self.unstorable
        out = {
            "frames": self.frames,
            "tick_frames": self.tick_frames,
            "ticks": self.ticks,
            "stored": stored,
            "duplicates": duplicates + self.duplicates_seen,
            "pending": self.queued - stored - duplicates - unstorable,
            "dropped_overflow": self.dropped_overflow,
            "unstorable": unstorable,
            "rejected": self.rejected,
            "rejected_frames": self.rejected_frames,
            "rejected_by_reason": dict(self.rejected_by_reason),
            "rejects_pending": (self.rejected - self.rejects_stored - self.rejects_dropped
                                - self.rejects_unstorable),
            "rejects_dropped": self.rejects_dropped,
            "rejects_unstorable": self.rejects_unstorable,
            "gaps_unstorable": self.gaps_unstorable,
            "control": self.control,
            "gaps": self.gaps,
            "missing_trades": self.missing_trades,
            "late_trades": self.late_trades,
            "id_resets": self.id_resets,
            "gap_windows_forgotten": self.gap_detector.forgotten if self.gap_detector else 0,
            "reconnect_marks": self.reconnect_marks,
            "gaps_open": self.gaps_pending - self.gaps_closed,
            "backfilled": self.backfilled,
        }
        if self.stage is not None:
            out.update(self.stage.stats())
        elif self.records.kinds or self.records.not_collected:
            out.update(self.records.stats())
        return out
