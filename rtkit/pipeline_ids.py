"""The trade ids of a :class:`~rtkit.pipeline.Pipeline`: replayed ids, gaps, reconnects.

For venues whose trade ids step by one per symbol, a :class:`GapDetector`
turns id jumps into ``gaps`` rows and replayed ids into duplicates that never
enter the ring twice; for the others, :class:`RecentIds` drops the trades a
venue sends again after a reconnect. Runs on the receive thread, inside the
pipeline's batch (its counters change under ``_counting``).
"""

from __future__ import annotations

import threading
import time
from typing import Any

from rtkit.gaps import GapDetector, RecentIds, ledger_status

#: how long a gap found while two connections feed the pipeline (a make-before-break
#: overlap, ``redundancy=2``) waits for the other connection's copy of its trades before
#: what is still missing becomes a ``gaps`` row: two connections to one venue run
#: milliseconds apart, so an id one of them skipped arrives on the other well within it
GAP_HOLD_S = 2.0
#: gaps whose starting time a backfill by time may still ask for (the oldest go first)
GAP_HINTS = 10_000


class IdChecks:
    """Duplicates and gaps found from trade ids, and the reconnect marks."""

    # set by the Pipeline (its PendingQueue and counters) that these checks are part of
    venue: str
    adapter: Any
    _lock: threading.Lock
    _counting: threading.Lock
    _gaps: list[tuple]
    duplicates_seen: int
    ticks: int
    last_frame_ns: int
    _reject: Any
    _store_ticks: Any
    _filter_anomalies: Any
    late_trades: int
    id_resets: int
    gaps: int
    missing_trades: int
    reconnect_marks: int

    def _init_id_checks(self, ids_consecutive: bool) -> None:
        self.gap_detector = GapDetector() if ids_consecutive else None
        self.recent_ids = None if ids_consecutive else RecentIds()
        #: when the frame before each gap came (``(symbol, first missing id)`` → ns): about
        #: where a backfill by time (Kraken ``since``) starts; bounded by GAP_HINTS
        self.gap_hints: dict[tuple[str, int], int] = {}
        self._ids_consecutive = ids_consecutive
        self._connections = 0
        #: connections feeding the pipeline now, as the receiver counts them (two during
        #: a make-before-break overlap, or with ``redundancy=2``): gaps are held while > 1
        self.live_sources = 1
        #: gaps found while two connections fed it: (monotonic ns, symbol, first, last,
        #: kind, received_at ns), until GAP_HOLD_S says whether the other one filled them
        self._held: list[tuple] = []
        #: the ledger's counters: gap rows written ``pending``; those a backfiller closed
        #: and the trades it filled (``gap_closed``, from the backfiller's thread)
        self.gaps_pending = 0
        self.gaps_closed = 0
        self.backfilled = 0
        #: during a make-before-break handover, the receiver's set that collects the
        #: symbols of duplicates (a trade seen on both connections); None otherwise
        self.dup_watch: set | None = None

    def connection_opened(self, at_ns: int, covered: bool = False) -> None:
        """Mark a (re)connect: from the second one on, a ``gaps`` row of kind
        ``reconnect`` records the boundary, whatever the venue's ids allow, unless
        ``covered``: another connection fed the pipeline all along (a make-before-break
        handover, a redundant connection), so there was no hole to mark."""
        self._connections += 1
        if self.gap_detector is not None:
            self.gap_detector.connection_opened()
        if self.recent_ids is not None:
            self.recent_ids.connection_opened()
        if self._connections > 1 and not covered:
            self.reconnect_marks += 1
            self._gap_row("*", None, None, None, at_ns, "reconnect")

    def gap_closed(self, filled: int, own: bool = True) -> None:
        """A backfiller finished a pending gap having filled ``filled`` trades; ``own``
        False: a gap of an earlier run (not in this one's ``gaps_open``)."""
        self.gaps_closed += own
        self.backfilled += filled

    def accept_backfill(self, ticks: list, received_at_ns: int, rejects=(),
                        source: str = "REST trades") -> int:
        """Trades fetched from REST for a gap (``rtkit.backfill``; a replay of its
        ``rest_trades`` event), from any thread: under ``_counting``, as one more batch of
        the receive path, so the id checks, the ring, the hooks and the pending rows see
        them exactly as a frame's. Ids the detector still remembers as seen (they came late,
        live) are duplicates; the others are kept. Returns the ticks kept."""
        with self._counting:
            for reject in rejects:  # each bad trade is a reject, as in a frame
                self._reject(reject, source, received_at_ns)
            anomaly = getattr(self, "anomaly", None)
            if anomaly is not None and ticks:
                ticks = self._filter_anomalies(anomaly, ticks, source, received_at_ns)
            self.ticks += len(ticks)
            if self.gap_detector is not None:
                ticks = self._unseen(self.gap_detector, ticks)
            if not ticks:
                return 0
            self._store_ticks(ticks, received_at_ns)
            return len(ticks)

    def _unseen(self, detector: GapDetector, ticks: list) -> list:
        """The ticks (of ids below each symbol's highest) not seen so far, now marked
        seen; ids older than the detector's window are kept (the store's key decides)."""
        kept = []
        for tick in ticks:
            sym, tid = tick[0], tick[1]
            high = detector.last.get(sym)
            window = detector.windows.get(sym)
            if high is None or window is None or tid > high:
                kept.append(tick)  # nothing known of the symbol, or above it: keep
                continue
            verdict = detector._below(window, high, tid, tid)
            if verdict == "duplicate":
                self.duplicates_seen += 1
            else:
                kept.append(tick)
        return kept

    def _gap_row(self, symbol: str, first, last, missing, at_ns: int, kind: str) -> None:
        status, why = ledger_status(self.venue, kind, self._ids_consecutive)
        if status == "pending":
            self.gaps_pending += 1
        with self._lock:
            self._gaps.append((self.venue, symbol, first, last, missing, at_ns, kind, status,
                               why, None, None if status is None else 0, None))

    def _gap(self, symbol: str, first: int, last: int, kind: str, at_ns: int) -> None:
        self.gaps += 1
        self.missing_trades += last - first + 1
        hints = self.gap_hints
        if len(hints) >= GAP_HINTS:
            del hints[next(iter(hints))]
        hints[(symbol, first)] = self.last_frame_ns or at_ns
        self._gap_row(symbol, str(first), str(last), last - first + 1, at_ns, kind)

    def release_held_gaps(self, force: bool = False) -> None:
        """Write the held gaps whose wait is over (all of them with ``force``, at the end
        of a run), each as the runs of its ids that are still unseen."""
        with self._counting:
            self._release_held(force)

    def _release_held(self, force: bool) -> None:
        detector = self.gap_detector
        if detector is None or not self._held:
            return
        due = time.monotonic_ns() - int(GAP_HOLD_S * 1e9)
        keep = []
        for held in self._held:
            at, symbol, first, last, kind, received_at_ns = held
            if not force and at > due:
                keep.append(held)
                continue
            for a, b in detector.unseen_runs(symbol, first, last):
                self._gap(symbol, a, b, kind, received_at_ns)
        self._held = keep

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
                if self.dup_watch is not None:
                    self.dup_watch.add(sym)
            elif verdict == "late":  # out of order: its gap row stays, the trade is kept
                self.late_trades += 1
                kept.append(tick[:6] if grouped else tick)
            elif verdict == "reset":  # the venue counts again from lower ids: say so, keep it
                self.id_resets += 1
                self._gap_row(sym, None, str(tid), None, received_at_ns, "id_reset")
                kept.append(tick[:6] if grouped else tick)
            else:
                first_missing, last_missing, kind = verdict
                if self.live_sources > 1:  # the other connection may still bring them
                    self._held.append((time.monotonic_ns(), sym, first_missing, last_missing,
                                       kind, received_at_ns))
                else:
                    self._gap(sym, first_missing, last_missing, kind, received_at_ns)
                kept.append(tick[:6] if grouped else tick)
        if self._held:
            self._release_held(False)
        return kept

    def _drop_repeats(self, recent_ids: RecentIds, ticks: list) -> list:
        """Ticks not re-sent after a reconnect; repeats counted as duplicates."""
        if self.live_sources > 1 and not recent_ids.checking:
            recent_ids.connection_opened()  # two connections: each trade comes twice
        kept = recent_ids.new_ticks(ticks)
        self.duplicates_seen += len(ticks) - len(kept)
        if self.dup_watch is not None and len(kept) < len(ticks):
            new = {id(t) for t in kept}
            self.dup_watch.update(t[0] for t in ticks if id(t) not in new)
        return kept
