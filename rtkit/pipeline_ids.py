"""The trade ids of a :class:`~rtkit.pipeline.Pipeline`: replayed ids, gaps, reconnects.

For venues whose trade ids step by one per symbol, a :class:`GapDetector`
turns id jumps into ``gaps`` rows and replayed ids into duplicates that never
enter the ring twice; for the others, :class:`RecentIds` drops the trades a
venue sends again after a reconnect. Runs on the receive thread, inside the
pipeline's batch (its counters change under ``_counting``).
"""

from __future__ import annotations

import threading
from typing import Any

from rtkit.gaps import GapDetector, RecentIds


class IdChecks:
    """Duplicates and gaps found from trade ids, and the reconnect marks."""

    # set by the Pipeline (its PendingQueue and counters) that these checks are part of
    venue: str
    adapter: Any
    _lock: threading.Lock
    _gaps: list[tuple]
    duplicates_seen: int
    late_trades: int
    id_resets: int
    gaps: int
    missing_trades: int
    reconnect_marks: int

    def _init_id_checks(self, ids_consecutive: bool) -> None:
        self.gap_detector = GapDetector() if ids_consecutive else None
        self.recent_ids = None if ids_consecutive else RecentIds()
        self._connections = 0

    def connection_opened(self, at_ns: int) -> None:
        """Mark a (re)connect: from the second one on, a ``gaps`` row of kind
        ``reconnect`` records the boundary, whatever the venue's ids allow."""
        self._connections += 1
        if self.gap_detector is not None:
            self.gap_detector.connection_opened()
        if self.recent_ids is not None:
            self.recent_ids.connection_opened()
        if self._connections > 1:
            self.reconnect_marks += 1
            with self._lock:
                self._gaps.append((self.venue, "*", None, None, None, at_ns, "reconnect"))

    def _check_ids(self, detector: GapDetector, ticks: list, received_at_ns: int) -> list:
        """Drop replayed ids (counted as duplicates) and record gaps.

        The next id in line is handled inline; anything else asks the detector.
        """
        last, check, grouped = detector.last, detector.check, self.adapter.ids_grouped
        after_reconnect = detector.reconnected
        kept = []
        for tick in ticks:
            sym, tid = tick[0], tick[1]
            first = tick[6] if grouped else tid
            if not grouped and last.get(sym) == tid - 1 and sym not in after_reconnect:
                last[sym] = tid
                kept.append(tick)
                continue
            verdict = check(sym, first, tid)
            if verdict is None:
                kept.append(tick[:6] if grouped else tick)
            elif verdict == "duplicate":
                self.duplicates_seen += 1
            elif verdict == "late":  # out of order: its gap row stays, the trade is kept
                self.late_trades += 1
                kept.append(tick[:6] if grouped else tick)
            elif verdict == "reset":  # the venue counts again from lower ids: say so, keep it
                self.id_resets += 1
                with self._lock:
                    self._gaps.append((self.venue, sym, None, str(tid), None, received_at_ns,
                                       "id_reset"))
                kept.append(tick[:6] if grouped else tick)
            else:
                first_missing, last_missing, kind = verdict
                self.gaps += 1
                self.missing_trades += last_missing - first_missing + 1
                with self._lock:
                    self._gaps.append((self.venue, sym, str(first_missing), str(last_missing),
                                       last_missing - first_missing + 1, received_at_ns, kind))
                kept.append(tick[:6] if grouped else tick)
        return kept

    def _drop_repeats(self, recent_ids: RecentIds, ticks: list) -> list:
        """Ticks not re-sent after a reconnect; repeats counted as duplicates."""
        kept = recent_ids.new_ticks(ticks)
        self.duplicates_seen += len(ticks) - len(kept)
        return kept
