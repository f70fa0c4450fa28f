"""Pipeline: one venue's frames → ticks in the ring + a pending batch for SQLite.

The same object serves a live collector and a replay, so both count the same
way. Every frame ends up as exactly one of: a frame that carried ticks, a
control message, or a rejected frame; and every tick as stored, a duplicate,
pending, or dropped on overflow. ``stats()`` exposes the counters so these
sums can be checked at any moment:

    frames == tick_frames + control + rejected_frames
    ticks  == stored + duplicates + pending + dropped_overflow + unstorable

``unstorable`` counts ticks SQLite refused as rows (a value it cannot store):
they are set aside so that the rest of their flush is written.

For venues whose trade ids step by one per symbol, a :class:`GapDetector`
turns id jumps into ``gaps`` rows and replayed ids into duplicates that never
enter the ring twice.

Trades of a symbol the collector did not subscribe are ``unsubscribed_symbol``
rejects; without a subscription list (a ``generic`` feed, a recording without
one) at most ``MAX_SYMBOLS`` distinct symbols are taken and the trades of any
further one are ``too_many_symbols`` rejects. Either way the per-symbol state
(gap windows, the ring's symbol codes) stays bounded.

Threading: ``process`` runs on one thread (the receive thread); ``take`` /
``done`` / ``give_back`` on another (the writer). Each counter has exactly one
writing thread, and the pending lists are swapped under a lock. The receive
thread updates its counters under ``_counting`` once per batch of frames and
``stats()`` reads under it, so a read never sees half a batch: the sums above
hold in every read.
"""

from __future__ import annotations

import logging
import sys
import threading
from collections import Counter
from collections.abc import Iterable
from typing import NamedTuple

from rtkit.buffer import RingBuffer
from rtkit.gaps import GapDetector, RecentIds
from rtkit.kinds import Rows
from rtkit.kinds.pending import PendingRecords
from rtkit.kinds.trades import stored_rows
from rtkit.store import MAX_REJECT_TEXT, TickStore
from rtkit.validate import AnomalyFilter, Reject
from rtkit.venues.base import Adapter, Control

log = logging.getLogger("rtkit")

#: frames larger than this are rejected unread (the largest real trade frame is ~200 KB)
DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024
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
#: ticks waiting for SQLite before new ones are dropped (and counted)
DEFAULT_PENDING_LIMIT = 500_000
#: distinct symbols taken from a feed without a subscription list; the trades of
#: any further symbol are ``too_many_symbols`` rejects
MAX_SYMBOLS = 10_000


def quote(text, limit: int = 200) -> str:
    """Untrusted text made safe for a log line: truncated, control characters escaped."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text[: limit * 4]).decode("utf-8", "backslashreplace")
    text = str(text)
    cut = len(text) > limit
    return repr(text[:limit])[1:-1] + ("…" if cut else "")


def frame_text(frame) -> str:
    """A frame as text for the ``rejects`` table, truncated to MAX_REJECT_TEXT."""
    if isinstance(frame, (bytes, bytearray, memoryview)):
        return bytes(frame[: MAX_REJECT_TEXT * 4]).decode("utf-8", "backslashreplace")[
            :MAX_REJECT_TEXT]
    return str(frame)[:MAX_REJECT_TEXT]


class Batch(NamedTuple):
    """One flush: rows for the ``ticks``, ``rejects`` and ``gaps`` tables, and the rows
    of the other kinds collected (``{kind: rows}``; None when there are none)."""

    ticks: list[tuple]
    rejects: list[tuple]
    gaps: list[tuple]
    records: dict[str, list] | None = None


class Pipeline:
    """Adapter → validation → ring and pending queue, with exact accounting."""

    def __init__(
        self,
        adapter: Adapter,
        ring: RingBuffer,
        *,
        anomaly: AnomalyFilter | None = None,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        pending_limit: int = DEFAULT_PENDING_LIMIT,
        symbols: Iterable[str] | None = None,
        kinds: Iterable[str] = ("trades",),
    ) -> None:
        """``symbols``: the normalised symbols subscribed; trades of any other are
        ``unsubscribed_symbol`` rejects (ignored by adapters whose
        ``trades_of_subscribed_symbols_only`` is False, such as ``generic``)."""
        self.adapter = adapter
        self.venue = adapter.name
        self.ring = ring
        self.anomaly = anomaly
        self.max_frame_bytes = max_frame_bytes
        self.pending_limit = pending_limit
        self._lock = threading.Lock()
        self._counting = threading.Lock()  # a batch's counter updates vs. stats()
        #: what accepted items become when they are not trades (``Adapter.stage``): it
        #: routes them, keeps their pending rows, counts them and names their store
        make_stage = getattr(adapter, "stage", None)
        self.stage = make_stage() if make_stage is not None else None
        #: symbols whose trades are taken: the subscribed ones, or (without a list)
        #: those seen so far, up to MAX_SYMBOLS
        self.symbols: set[str] = set()
        self._subscribed_only = False
        if symbols is not None:
            self.subscribe(symbols)
        self._ticks: list[tuple[int, list]] = []  # (received_at_ns, ticks) per frame
        self._rejects: list[tuple] = []
        self._rejects_bytes = 0  # memory of the rows in _rejects (see MAX_PENDING_REJECT_BYTES)
        self._taken_rejects_bytes = 0  # ... and of those taken, until done or given back
        self._gaps: list[tuple] = []
        self.gap_detector = GapDetector() if adapter.ids_consecutive else None
        self.recent_ids = None if adapter.ids_consecutive else RecentIds()
        self._connections = 0
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
        self._adapter_failures = 0  # frames the adapter raised on, for bounded logging
        # written by the storing thread
        self.stored = 0
        self.duplicates = 0
        self.rejects_stored = 0
        self.rejects_dropped = 0  # reject rows not kept while storage stalled
        self.unstorable = 0  # ticks SQLite refused as rows: set aside, the rest written
        self.rejects_unstorable = 0
        self.gaps_unstorable = 0
        self._taken: tuple[list, list, list] = ([], [], [])
        #: the rows of the collected kinds other than trades (``Rows`` from the adapter)
        kinds = () if self.stage is not None else tuple(kinds)
        self.records = PendingRecords(kinds, pending_limit)
        self._trades = "trades" in kinds
        if self.stage is not None:
            self.stage.bind(self)

    def __getattr__(self, name: str):
        """What the stage reads out (``visible``, ``recent_blocks``…), on the pipeline."""
        stage = self.__dict__.get("stage")
        if stage is None or name.startswith("__"):
            raise AttributeError(f"{type(self).__name__!r} object has no attribute {name!r}")
        return getattr(stage, name)

    @property
    def store_type(self) -> type[TickStore]:
        """The SQLite store that writes this pipeline's batches."""
        return TickStore if self.stage is None else self.stage.store_type

    def subscribe(self, symbols: Iterable[str]) -> None:
        """Take the trades of these (normalised) symbols, and from now on only of
        the symbols subscribed (a replay calls it with a recording's symbols)."""
        if self.stage is not None:  # a stage takes every item its adapter emits
            return
        if getattr(self.adapter, "trades_of_subscribed_symbols_only", True):
            self._subscribed_only = True
            self.symbols.update(symbols)

    # --- processing thread -------------------------------------------------------
    def process(self, frame, received_at_ns: int, binary: bool = False) -> Control | None:
        """Take one frame; returns its Control (for the collector to act on) or None.

        ``binary`` marks a binary WebSocket frame, which no supported venue sends
        for trades: it is rejected as ``binary_frame``.
        """
        controls = self.process_frames((frame,), received_at_ns, binary)
        return controls[0] if controls else None

    def process_frames(self, frames, received_at_ns: int, binary: bool = False) -> list[Control]:
        """Take frames that arrived together; returns their Controls, in order.

        The ticks of all the frames enter the ring and the pending batch in one
        step, which is what keeps a busy feed cheap. The counters change under
        ``_counting``, so ``stats()`` sees all of the batch or none of it.
        """
        with self._counting:
            return self._process_frames(frames, received_at_ns, binary)

    def _process_frames(self, frames, received_at_ns: int, binary: bool) -> list[Control]:
        parse, max_bytes = self.adapter.parse, self.max_frame_bytes
        symbols, anomaly = self.symbols, self.anomaly
        accepted: list = []
        controls: list[Control] = []
        tick_frames = 0
        for frame in frames:
            try:
                if binary:
                    raise Reject("binary_frame", f"{len(frame)} bytes")
                if len(frame) > max_bytes:
                    raise Reject("frame_too_large", f"{len(frame)} bytes > {max_bytes}")
                out = parse(frame, received_at_ns)
            except Reject as reject:
                self.rejected_frames += 1
                self._reject(reject, frame, received_at_ns)
                continue
            except Exception as exc:  # an adapter bug must not kill the receive thread
                self._log_adapter_failure(exc)
                self.rejected_frames += 1
                self._reject(Reject("adapter_error", f"{type(exc).__name__}: {exc}"), frame,
                             received_at_ns)
                continue
            other = 0  # rows of the other kinds this frame carried
            if type(out) is Rows:
                other = self.records.add(out)
                out = out.get("trades", []) if self._trades else []
                if not out and other:
                    tick_frames += 1
                    continue
            if type(out) is not list:
                if not isinstance(out, Control):  # an adapter bug, not the wire's fault
                    self.rejected_frames += 1
                    self._reject(Reject("adapter_error", f"parse returned {type(out).__name__}"),
                                 frame, received_at_ns)
                    continue
                self._control(out)
                controls.append(out)
                continue
            for item in out:
                if type(item) is not tuple or item[0] not in symbols:
                    out = self._split_batch(out, frame, received_at_ns)
                    break
            if anomaly is not None and out:
                out = self._filter_anomalies(anomaly, out, frame, received_at_ns)
            if out:
                tick_frames += 1
                accepted += out
            elif other:
                tick_frames += 1
            else:
                self.rejected_frames += 1
        self.frames += len(frames)
        self.last_frame_ns = received_at_ns
        if accepted:
            self.tick_frames += tick_frames
            self._accept(accepted, received_at_ns)
        return controls

    def _log_adapter_failure(self, exc: Exception) -> None:
        """The first failure with its traceback, then one line at the 10th, 100th,
        1000th…: a feed that trips an adapter bug on every frame cannot flood the log
        (each failure is still an ``adapter_error`` reject with its reason)."""
        self._adapter_failures += 1
        n = self._adapter_failures
        if n == 1:
            log.exception("rtkit: %s adapter failed on a frame", self.venue)
        elif 10 ** (len(str(n)) - 1) == n:
            log.error("rtkit: %s adapter failed on %d frames so far; the latest: %s",
                      self.venue, n, quote(f"{type(exc).__name__}: {exc}"))

    def _control(self, control: Control) -> None:
        self.control += 1
        self.last_control = control
        if control.kind == "error":
            self.last_venue_error = quote(control.detail, 300)
            log.warning("rtkit: %s says: %s", self.venue, quote(control.detail))

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

    def reject_oversized(self, head: bytes | str, size: int, received_at_ns: int) -> None:
        """Count a frame refused from its header (only its first bytes were kept; a
        recording's text frame keeps them as text)."""
        with self._counting:
            self.frames += 1
            self.last_frame_ns = received_at_ns
            self.rejected_frames += 1
            reject = Reject("frame_too_large", f"{size} bytes > {self.max_frame_bytes}")
            self._reject(reject, head, received_at_ns, size)

    def _accept(self, ticks: list, received_at_ns: int) -> None:
        if self.stage is not None:
            self.stage.accept(ticks, received_at_ns)
            return
        self.ticks += len(ticks)
        detector, recent_ids = self.gap_detector, self.recent_ids
        if detector is not None:
            ticks = self._check_ids(detector, ticks, received_at_ns)
        elif recent_ids is not None:
            ticks = self._drop_repeats(recent_ids, ticks)
        if not ticks:
            return
        n = len(ticks)
        self.ring.append(self.venue, received_at_ns, ticks)
        if self.pending + n > self.pending_limit:
            self.dropped_overflow += n
            return
        with self._lock:
            self._ticks.append((received_at_ns, ticks))
        self.queued += n

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

    def _split_batch(self, items: list, frame, received_at_ns: int) -> list:
        """Ticks of a batch with bad trades (or trades of a symbol not taken) in it;
        each of those is its own reject."""
        ticks = []
        symbols = self.symbols
        for item in items:
            if type(item) is not tuple:
                self._reject(item, frame, received_at_ns)
            elif item[0] in symbols:
                ticks.append(item)
            elif self._subscribed_only:
                self._reject(Reject("unsubscribed_symbol", f"{item[0]!r:.40}"), frame,
                             received_at_ns)
            elif len(symbols) < MAX_SYMBOLS:
                symbols.add(item[0])
                ticks.append(item)
            else:
                self._reject(Reject("too_many_symbols", f"{item[0]!r:.40} after {MAX_SYMBOLS:,} "
                                    "symbols"), frame, received_at_ns)
        return ticks

    def _filter_anomalies(self, anomaly: AnomalyFilter, ticks: list, frame,
                          received_at_ns: int) -> list:
        kept = []
        for tick in ticks:
            try:
                anomaly.check(tick[0], tick[3])
                kept.append(tick)
            except Reject as reject:
                self._reject(reject, frame, received_at_ns)
        return kept

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

    # --- storing thread ---------------------------------------------------------
    def take(self) -> Batch:
        """Everything pending, for a sink: the trades as the kind stores them
        (``rtkit.kinds.trades.stored_rows``), the rejects and gaps rows.

        Call ``done`` after a successful write, or ``give_back`` after a failed one.
        """
        if self.stage is not None:
            return self.stage.take()
        frames, rejects, gaps = self.take_pending()
        return Batch(stored_rows(self.venue, frames), rejects, gaps, self.records.take() or None)

    def queue(self, items: list) -> None:
        """Add items to the pending list (a stage's rows; ``queued`` is its to count)."""
        with self._lock:
            self._ticks += items

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
        def keep(table: str, rows: list[tuple]) -> list[tuple]:
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
        }
        if self.stage is not None:
            out.update(self.stage.stats())
        elif self.records.kinds or self.records.not_collected:
            out.update(self.records.stats())
        return out
