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

The pieces: this module is the receive side (frames → ticks, the hot path);
:mod:`rtkit.pipeline_queue` the rows waiting for SQLite and the writer's side;
:mod:`rtkit.pipeline_ids` the trade ids (duplicates, gaps, reconnects);
:mod:`rtkit.pipeline_counters` the counters and their consistent reading.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from typing import TYPE_CHECKING

from rtkit.books.keeper import BookKeeper, keeper_for
from rtkit.books.quote_ring import DEFAULT_QUOTES_CAPACITY, QuoteRing
from rtkit.buffer import RingBuffer
from rtkit.kinds import Rows
from rtkit.kinds.pending import PendingRecords
from rtkit.pipeline_books import BookRows
from rtkit.pipeline_counters import PipelineCounters
from rtkit.pipeline_ids import IdChecks
from rtkit.pipeline_queue import (
    MAX_PENDING_REJECT_BYTES,
    MAX_PENDING_REJECTS,
    Batch,
    PendingQueue,
    frame_text,
)
from rtkit.store import TickStore
from rtkit.validate import AnomalyFilter, Reject
from rtkit.venues.base import Adapter, Control

if TYPE_CHECKING:
    from rtkit.hooks import Hooks

log = logging.getLogger("rtkit")

#: frames larger than this are rejected unread (the largest real trade frame is ~200 KB)
DEFAULT_MAX_FRAME_BYTES = 4 * 1024 * 1024
#: ticks waiting for SQLite before new ones are dropped (and counted)
DEFAULT_PENDING_LIMIT = 500_000
#: distinct symbols taken from a feed without a subscription list; the trades of
#: any further symbol are ``too_many_symbols`` rejects
MAX_SYMBOLS = 10_000

__all__ = ["DEFAULT_MAX_FRAME_BYTES", "DEFAULT_PENDING_LIMIT", "MAX_PENDING_REJECTS",
           "MAX_PENDING_REJECT_BYTES", "MAX_SYMBOLS", "Batch", "Pipeline", "frame_text",
           "quote"]


def quote(text, limit: int = 200) -> str:
    """Untrusted text made safe for a log line: truncated, control characters escaped."""
    if isinstance(text, (bytes, bytearray, memoryview)):
        text = bytes(text[: limit * 4]).decode("utf-8", "backslashreplace")
    text = str(text)
    cut = len(text) > limit
    return repr(text[:limit])[1:-1] + ("…" if cut else "")


class Pipeline(BookRows, IdChecks, PendingQueue, PipelineCounters):
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
        books: BookKeeper | None = None,
        quotes_capacity: int = DEFAULT_QUOTES_CAPACITY,
    ) -> None:
        """``symbols``: the normalised symbols subscribed; trades of any other are
        ``unsubscribed_symbol`` rejects (ignored by adapters whose
        ``trades_of_subscribed_symbols_only`` is False, such as ``generic``).

        With ``book`` among the ``kinds``, the adapter's ``BookMessage`` rows (key
        ``book``) go to ``books`` (a :class:`rtkit.books.keeper.BookKeeper`; one
        without REST snapshots is made when none is given), whose ``book_deltas``,
        ``book_events`` and derived ``quotes`` rows are stored like any kind's.
        With ``quotes``, the quotes are also kept in ``quote_ring`` (``c.quotes``)."""
        self.adapter = adapter
        self.venue = adapter.name
        self.ring = ring
        self.anomaly = anomaly
        self.max_frame_bytes = max_frame_bytes
        self.pending_limit = pending_limit
        self._init_queue()
        self._init_counters()
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
        self._init_id_checks(adapter.ids_consecutive)
        self._adapter_failures = 0  # frames the adapter raised on, for bounded logging
        #: the rows of the collected kinds other than trades (``Rows`` from the adapter)
        kinds = () if self.stage is not None else tuple(kinds)
        self.books: BookKeeper | None = None
        if "book" in kinds:
            self.books = books or keeper_for(adapter, sorted(self.symbols))
            kinds = (*kinds, "book_events")
        self.quote_ring = QuoteRing(quotes_capacity) if "quotes" in kinds else None
        self.records = PendingRecords(kinds, pending_limit)
        self._trades = "trades" in kinds
        #: the collector's live hooks (``rtkit.hooks.Hooks``), offered each new batch
        self.hooks: Hooks | None = None
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
        book_messages: list = []
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
                self._adapter_failures += 1
                _log_adapter_failure(self.venue, self._adapter_failures, exc)
                self.rejected_frames += 1
                self._reject(Reject("adapter_error", f"{type(exc).__name__}: {exc}"), frame,
                             received_at_ns)
                continue
            other = 0  # rows of the other kinds this frame carried
            if type(out) is Rows:
                book = out.pop("book", None) if self.books is not None else None
                if book:  # the batch's book messages go to the keeper together, below
                    other = len(book)
                    book_messages += book
                if self.feeding_connection is not None and "quotes" in out:
                    other += self._quotes_of_one_connection(out)  # the other's are counted
                if self.quote_ring is not None and (quotes := out.get("quotes")):
                    self.quote_ring.append(quotes)
                added = self.records.add(out)
                if added and self.hooks is not None:
                    self.hooks.offer_rows(received_at_ns, out)
                other += added
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
        if book_messages:
            self._take_book_messages(book_messages)
        self.frames += len(frames)
        self.tick_frames += tick_frames  # frames of other kinds only count too
        if accepted:  # gaps found in it say when the frame before came (``gap_hints``)
            self._accept(accepted, received_at_ns)
        self.last_frame_ns = received_at_ns
        return controls

    def _control(self, control: Control) -> None:
        self.control += 1
        self.last_control = control
        if control.kind == "error":
            self.last_venue_error = quote(control.detail, 300)
            log.warning("rtkit: %s says: %s", self.venue, quote(control.detail))

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
        if ticks:
            self._store_ticks(ticks, received_at_ns)

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


def _log_adapter_failure(venue: str, n: int, exc: Exception) -> None:
    """The first failure with its traceback, then one line at the 10th, 100th,
    1000th…: a feed that trips an adapter bug on every frame cannot flood the log
    (each failure is still an ``adapter_error`` reject with its reason)."""
    if n == 1:
        log.exception("rtkit: %s adapter failed on a frame", venue)
    elif 10 ** (len(str(n)) - 1) == n:
        log.error("rtkit: %s adapter failed on %d frames so far; the latest: %s",
                  venue, n, quote(f"{type(exc).__name__}: {exc}"))
