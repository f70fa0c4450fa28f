"""Replay a raw-frame recording through the whole pipeline into SQLite.

The frames meet the same adapters, validation, ring and store as live ones,
so a replay reproduces a live run's ticks exactly and is how a venue's
parsing is checked against recorded traffic.

Order books too: a recording's ``books`` event makes the venue's keeper as the
live run made it (symbols, start, depth cap, audit period), its book frames
feed it, and each recorded REST answer is given to it where the live keeper
took it (``rest_snapshot``), at the recorded time: no network, no wall clock,
the same ``book_deltas``, ``book_events`` and derived quotes. A snapshot the
replayed keeper asks for that the recording never answers (a recording made
before REST answers were kept) is a ``book_events`` row saying so.

Backfills too: a ``rest_trades`` event feeds the page of REST trades where the live
run fed it (``received_at`` its fetch time), and a ``gap_finished`` event ends the
replay's row of the gap as the live ledger ended it (:mod:`rtkit.replay_gaps`): the
same ``gaps`` table, the same ``backfilled``, ``gaps_open`` and ``completeness``.
A recording made before gaps were recorded leaves its gaps ``pending``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

from rtkit.backfill import feed_rest_trades
from rtkit.buffer import RingBuffer
from rtkit.instruments import Contract, ContractError, save_contracts
from rtkit.kinds import Kind, get_kind
from rtkit.kinds.trades import TRADES
from rtkit.params import checked_int
from rtkit.pipeline import DEFAULT_MAX_FRAME_BYTES, MAX_SYMBOLS, Pipeline, frame_text, quote
from rtkit.progress import StopOnInterrupt, advance_to, bar
from rtkit.recording import (
    BAD_LINE,
    BadLine,
    BookPoll,
    BooksStart,
    Event,
    Frame,
    GapFinished,
    RestEntry,
    read_recording,
)
from rtkit.replay_books import BookReplay
from rtkit.replay_connections import ConnectionReplay
from rtkit.replay_gaps import GapOutcomes
from rtkit.runtime.config import lake_sink
from rtkit.store import RowStore, StoreError, TickStore
from rtkit.validate import MAX_SYMBOL_CHARS, AnomalyFilter
from rtkit.venues import get_adapter

log = logging.getLogger("rtkit")

#: recording lines (frames, events, bad lines) between two writes to SQLite during a replay
_FLUSH_EVERY_FRAMES = 50_000
#: reject rows of bad lines held before they are written (a file of nothing but bad lines)
_MAX_BAD_ROW_BYTES = 8 * 1024 * 1024
#: the frame counters a summary always has, even of a recording without a frame; the
#: counters of each kind replayed (``Kind.counters``) are beside them
_FRAME_COUNTERS = ("frames", "tick_frames", "rejected", "rejected_frames", "control")


def merge_stats(pipelines: Iterable[Pipeline]) -> dict[str, Any]:
    """Sum the counters of several pipelines (one per venue) into one summary."""
    total: dict[str, Any] = {}
    for p in pipelines:
        for key, value in p.stats().items():
            if isinstance(value, dict):
                bucket = total.setdefault(key, {})
                for k, v in value.items():
                    bucket[k] = bucket.get(k, 0) + v
            else:
                total[key] = total.get(key, 0) + value
    return total


def checked_replay_kinds(kinds: Sequence[str] | str | None) -> tuple[str, ...] | None:
    """The kinds a replay is asked for, each a known kind (None: every kind offered)."""
    if kinds is None:
        return None
    names = tuple(dict.fromkeys([kinds] if isinstance(kinds, str) else kinds))
    if not names:
        raise ValueError("give at least one kind of record to replay, e.g. kinds=['trades']")
    for name in names:
        get_kind(name)  # an unknown name: the error lists the kinds there are
    return names


#: where a replay stores by default: its own file, never the one live collection fills
REPLAY_DB = Path("data") / "replay.sqlite"

def too_many_symbols(subscribed: set[str], symbols: Sequence[str]) -> str:
    """Why the ``symbols`` of an 'open' event are not subscribed beside ``subscribed``,
    or "": a recording is untrusted, and every symbol subscribed is remembered until the
    replay ends (by the pipeline and the adapter), so their number and length are
    bounded as a live feed's are."""
    longest = max(map(len, symbols))
    if longest > MAX_SYMBOL_CHARS:
        return (f"a symbol of {longest:,} characters (at most {MAX_SYMBOL_CHARS}: no "
                "trade of a longer one is taken)")
    total = len(subscribed | set(symbols))
    if total > MAX_SYMBOLS:
        return (f"{total:,} symbols with those subscribed before, more than "
                f"MAX_SYMBOLS ({MAX_SYMBOLS:,})")
    return ""


class Replay(BookReplay, ConnectionReplay):
    """Pipelines (one per venue in the file) feeding one ring and one store."""

    #: the store the frames go to (``rtkit.onchain.ChainReplay`` names its own)
    store_type: Callable[[str | Path], RowStore] = TickStore
    #: the kinds of record replayed: their counters are in every summary
    kinds: tuple[Kind, ...] = (TRADES,)

    def __init__(self, db: str | Path = REPLAY_DB, *, capacity: int = 1_000_000,
                 anomaly: AnomalyFilter | None = None, venue_options: dict | None = None,
                 max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES, lake: str | Path | None = None,
                 kinds: Sequence[str] | None = None):
        checked_int("capacity", capacity)
        self.max_frame_bytes = checked_int("max_frame_bytes", max_frame_bytes)
        #: the kinds asked for (each venue's pipeline collects those its adapter offers);
        #: None: every kind the venue's adapter offers
        self.kind_names = checked_replay_kinds(kinds)
        self.kinds = tuple(dict.fromkeys((*self.kinds, *(
            get_kind(n) for n in self.kind_names or () if n != "trades"))))
        #: the Parquet sink beside SQLite, or None; it gets the rows SQLite did not refuse
        self.lake = lake_sink(lake, tuple(k.name for k in self.kinds))
        self.store = self.store_type(Path(db).expanduser())
        self.ring = RingBuffer(capacity)
        self.anomaly = anomaly
        self.venue_options = venue_options or {}
        self.pipelines: dict[str, Pipeline] = {}
        self.connections = 0
        self._live: dict[str, int] = {}  # venue → connections open (a handover's overlap)
        #: lines that were no recording entry (no venue's pipeline to count them)
        self.bad_lines = 0
        self.bad_lines_by_reason: dict[str, int] = {}
        self._bad_rows: list[tuple] = []
        self._bad_bytes = 0  # at most 4 bytes a character: the bound is on memory
        #: symbols the 'open' events subscribed, per venue (at most MAX_SYMBOLS each)
        self._subscribed: dict[str, set[str]] = {}
        self._path: str | Path = ""
        #: the replay stopped on Ctrl-C before the end of the file (what came before is stored)
        self.interrupted = False
        #: the recording's ``gap_finished`` events, applied to the replay's gap rows
        self.gap_outcomes = GapOutcomes(lambda: getattr(self.store, "conn", None))
        self._init_books()
        self._init_connections()

    def pipeline(self, venue: str) -> Pipeline:
        p = self.pipelines.get(venue)
        if p is None:
            adapter = get_adapter(venue, **self.venue_options.get(venue, {}))
            offered = adapter.kinds
            kinds = offered if self.kind_names is None else \
                tuple(k for k in self.kind_names if k in offered)
            if "book" in kinds:
                adapter.configure(kinds, None)
            books = self._keeper(adapter) if "book" in kinds else None
            p = self.pipelines[venue] = Pipeline(adapter, self.ring, anomaly=self.anomaly,
                                                 max_frame_bytes=self.max_frame_bytes,
                                                 kinds=kinds or ("trades",), books=books)
            self.kinds = tuple(dict.fromkeys((*self.kinds, *(
                get_kind(k) for k in p.records.kinds))))
        return p

    def run(self, path: str | Path, *, progress: bool | None = False) -> dict:
        """Replay ``path``; an error half-way still stores everything before it.

        ``progress``: a bar of the file's bytes with rate and ETA (None: where someone
        watches, ``rtkit.progress.watched``). A Ctrl-C stops between two frames: what
        came before is stored, the summary says ``interrupted``, nothing raises.
        """
        path = Path(path)
        size = path.stat().st_size if path.is_file() else None
        with bar(size, desc=f"replay {path.name}", show=progress) as shown, \
                StopOnInterrupt() as ctrl_c:
            self.gap_outcomes.start()  # rows of the file from before are not the replay's
            try:
                self._replay(path, ctrl_c, lambda n: advance_to(shown, n))
            finally:
                for pipeline in self.pipelines.values():  # the recording is over: write the
                    pipeline.release_held_gaps(force=True)  # gaps held for a second connection
                self.flush(final=True)
            self.interrupted = ctrl_c.requested
        if self.bad_lines > 1:
            log.warning("rtkit: %d lines of %s were not recording lines; they are counted "
                        "as rejects (%s) and kept in the rejects table", self.bad_lines, path,
                        ", ".join(f"{k} {v}" for k, v in sorted(self.bad_lines_by_reason.items())))
        if self.interrupted:
            log.warning("rtkit: replay of %s interrupted (Ctrl-C); what came before is stored",
                        path)
        return self.summary()

    def _replay(self, path: Path, ctrl_c: StopOnInterrupt,
                progress: Callable[[int], None]) -> None:
        self._path = path
        since_flush = 0
        for entry in read_recording(path, max_frame_bytes=self.max_frame_bytes,
                                    progress=progress):
            if ctrl_c.requested:  # between two entries: every counter is whole
                break
            if type(entry) is Frame:
                self._now = entry.received_at  # the replayed books' clock
                if self._polled and entry.venue in self._polled:
                    self._read(entry)
                if entry.too_large:
                    self.pipeline(entry.venue).reject_oversized(entry.frame, entry.too_large,
                                                                entry.received_at)
                elif entry.binary:
                    self.pipeline(entry.venue).process(entry.frame, entry.received_at, True)
                else:  # from the connection it came on, when the recording says
                    self._process_frame(entry, self.pipeline(entry.venue))
            elif type(entry) is Event:  # counted below too: an 'open' adds a gaps row
                self._poll_now(entry.venue)
                if entry.event == "open":
                    self._opened(entry)
                elif entry.event == "instruments":
                    self._instruments(entry)
                elif entry.event == "rest_trades":  # a backfill's page, where the run fed it
                    feed_rest_trades(self.pipeline(entry.venue), entry.symbol, entry.trades,
                                     entry.received_at)
                elif entry.event == "close":  # a make-before-break recording overlaps two
                    self._connection_closed(entry)  # its books move, as they did live
                    live = self._live[entry.venue] = max(0, self._live.get(entry.venue, 0) - 1)
                    self.pipeline(entry.venue).live_sources = max(1, live)
            elif type(entry) is GapFinished:  # where the live ledger ended a gap
                if self.gap_outcomes.add(entry):
                    self.flush()
            elif type(entry) is RestEntry:
                self._rest(entry)
            elif type(entry) is BookPoll:
                self._poll_now(entry.venue)
                if entry.venue in self._polled:
                    self._polls[entry.venue] = [entry.received_at, False]
            elif type(entry) is BooksStart:
                self._poll_now(entry.venue)
                self._books(entry)
            elif type(entry) is BadLine:
                if entry.reason == "frame_too_large" and entry.venue:
                    # the head names its venue: the frame the live run refused, refused alike
                    self.pipeline(entry.venue).reject_oversized(entry.head, entry.size,
                                                                entry.received_at)
                else:
                    self._bad_line(entry.reason, entry.detail, entry.head, entry.size,
                                   entry.received_at, entry.venue)
            since_flush += 1
            if since_flush >= _FLUSH_EVERY_FRAMES:
                self.flush()
                since_flush = 0
        if not ctrl_c.requested:
            for venue in list(self._polls):
                self._poll_now(venue)
            self._unanswered()

    def _opened(self, event: Event) -> None:
        self.connections += 1
        pipeline = self.pipeline(event.venue)
        live = self._live.get(event.venue, 0)  # still open: this one was a handover's
        self._live[event.venue] = live + 1
        pipeline.connection_opened(event.received_at, covered=live > 0)
        pipeline.live_sources = live + 1  # gaps wait for the other connection, as live
        self._connection_opened(event, pipeline)
        if event.symbols:  # subscribe the adapter as the live one was
            subscribed = self._subscribed.get(event.venue, set())
            if problem := too_many_symbols(subscribed, event.symbols):
                self._bad_line(BAD_LINE, f"symbols of an 'open' event: {problem}",
                               repr(event.symbols[:10]).encode(), 0, event.received_at,
                               event.venue)
                return
            try:
                pipeline.adapter.subscribe_messages(list(event.symbols))
                pipeline.subscribe(event.symbols)
                self._subscribed.setdefault(event.venue, set()).update(event.symbols)
            except ValueError as exc:
                self._bad_line(BAD_LINE, f"symbols of an 'open' event: {exc}"[:500],
                               repr(event.symbols).encode(), 0, event.received_at, event.venue)

    def _instruments(self, event: Event) -> None:
        """Teach the venue's adapter the contract values the live run converted with,
        and keep them in the replay's database as the live run did."""
        adapter = self.pipeline(event.venue).adapter
        try:
            contracts = [Contract.from_record(f) for f in event.instruments]
            if any(c.venue != event.venue for c in contracts) \
                    or not hasattr(adapter, "set_contracts"):
                raise ContractError(f"{event.venue} takes no contract values of these")
        except ContractError as exc:
            self._bad_line(BAD_LINE, f"an 'instruments' event: {exc}"[:500],
                           repr(event.instruments[:3]).encode()[:4096], 0, event.received_at,
                           event.venue)
            return
        adapter.set_contracts(contracts)
        save_contracts(self.store.path, contracts, event.received_at)

    def _bad_line(self, reason: str, detail: str, head: bytes, size: int, received_at: int,
                  venue: str) -> None:
        """Count a line no pipeline can take, and keep it in the rejects table."""
        if not self.bad_lines:
            log.warning("rtkit: %s, %s; counted as a %s reject", self._path, quote(detail, 300),
                        reason)
        self.bad_lines += 1
        self.bad_lines_by_reason[reason] = self.bad_lines_by_reason.get(reason, 0) + 1
        row = (received_at, venue, reason, detail, frame_text(head), size)
        self._bad_rows.append(row)
        self._bad_bytes += len(row[3]) + 4 * len(row[4])
        if self._bad_bytes > _MAX_BAD_ROW_BYTES:  # a file of bad lines: written as it goes
            self._write_bad_rows()

    def flush(self, final: bool = False) -> None:
        """Write what the pipelines hold, then end the gaps the recording says were ended
        (``final``: the last write, after which no gap row comes); a database that refuses
        the write (locked by another program, a full disk) is a StoreError that says so,
        not a traceback."""
        try:
            for p in self.pipelines.values():
                batch = p.take()
                refused: list[tuple] = []  # rows SQLite cannot store: set aside and counted
                inserted = self.store.write(*batch, refused=refused)
                kept = p.set_aside(batch, refused) if refused else batch
                if self.lake is not None:  # what SQLite took, to the lake
                    self.lake.write(kept)
                p.done(kept, inserted)
            self.gap_outcomes.apply(self._gap_closed, self._bad_outcome, final)
            self._write_bad_rows()
        except sqlite3.Error as exc:
            raise StoreError(
                f"cannot write the database '{self.store.path}': {exc}; what earlier writes "
                f"(one every {_FLUSH_EVERY_FRAMES:,} frames) stored is kept. Free it (close the "
                "program holding it, or free disk space) and replay again: a tick already "
                "stored is not stored twice") from exc

    def _gap_closed(self, venue: str, filled: int) -> None:
        """The live backfill ended a gap of ``venue`` having filled ``filled`` trades."""
        p = self.pipelines.get(venue)
        if p is not None:
            with p._counting:
                p.gap_closed(filled)

    def _bad_outcome(self, event: GapFinished, why: str) -> None:
        self._bad_line(BAD_LINE, f"a 'gap_finished' event: {why}"[:500],
                       repr(event).encode()[:4096], 0, event.received_at, event.venue)

    def _write_bad_rows(self) -> None:
        if self._bad_rows:
            # built from checked fields and bounded text: nothing here is refused as a row
            self.store.write(rejects=self._bad_rows)
            self._bad_rows, self._bad_bytes = [], 0

    def summary(self) -> dict[str, Any]:
        """The pipelines' counters summed (ints; ``rejected_by_reason`` a dict of them)
        and the replay's own: ``bad_lines``, ``venues``, ``connections``, ``db``, ``lake``."""
        return replay_summary(self)

def replay(path: str | Path, db: str | Path = REPLAY_DB, *, capacity: int = 1_000_000,
           anomaly: AnomalyFilter | None = None, venue_options: dict | None = None,
           max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES, lake: str | Path | None = None,
           progress: bool | None = None, kinds: Sequence[str] | None = None) -> dict[str, Any]:
    """Push every frame of a recording through the pipeline into ``db``; returns the summary.

    The summary has ``frames``, ``ticks``, ``stored``, ``duplicates``,
    ``rejected``, ``rejected_by_reason`` and ``control`` (plus the detail
    counters of :class:`rtkit.pipeline.Pipeline`). ``venue_options`` maps a venue
    to its adapter options and ``max_frame_bytes`` is the collector's limit, for a
    run recorded with other than the defaults. ``lake`` adds the Parquet lake beside
    ``db`` (``rtkit.sinks.parquet``): it gets the same rows. ``progress``: a bar with
    rate and ETA, in a terminal or a notebook (None), always (True) or never (False).
    Ctrl-C (or a notebook's interrupt) stops the replay cleanly: the summary of what
    was stored comes back with ``interrupted: True``.

    ``kinds``: the kinds of record to rebuild (``["trades", "quotes", "book"]``), those
    of them each venue offers; None (the default): every kind the venue's adapter
    offers, so whatever the recording carries is rebuilt (a kind the run did not
    subscribe has no frames in it and costs nothing). Books are rebuilt as the
    live run kept them, from the recording's frames and REST answers; backfilled trades
    and the gap ledger as the live run's backfill left them (``rest_trades`` and
    ``gap_finished`` events): the summary's ``backfilled``, ``gaps_open`` and
    ``completeness`` are the live run's, and ``gaps_unmatched`` counts ``gap_finished``
    events that named no gap of this replay (a gap of an earlier run not recorded here).
    """
    r = Replay(db, capacity=capacity, anomaly=anomaly, venue_options=venue_options,
               max_frame_bytes=max_frame_bytes, lake=lake, kinds=kinds)
    try:
        return r.run(Path(path).expanduser(), progress=progress)
    finally:
        r.store.close()


def replay_summary(self: Replay) -> dict[str, Any]:
    """The pipelines' counters summed (ints; ``rejected_by_reason`` a dict of them)
    and the replay's own: ``bad_lines``, ``venues``, ``connections``, ``db``, ``lake``."""
    counters = [*_FRAME_COUNTERS, "dropped_overflow"]
    for kind in self.kinds:
        if kind.counters:  # a kind without names has its default ones in merge_stats
            counters += kind.counters
    out: dict[str, Any] = dict.fromkeys(counters, 0)
    out.update(merge_stats(self.pipelines.values()))
    by_reason: dict[str, int] = out.setdefault("rejected_by_reason", {})
    out["rejected"] += self.bad_lines
    for reason, n in self.bad_lines_by_reason.items():
        by_reason[reason] = by_reason.get(reason, 0) + n
    out["bad_lines"] = self.bad_lines
    out["venues"] = sorted(self.pipelines)
    out["connections"] = self.connections
    out["gaps_unmatched"] = self.gap_outcomes.unmatched
    out["completeness"] = _completeness(self.pipelines.values())
    out["db"] = str(self.store.path)
    if self.lake is not None:
        out["lake"] = str(self.lake.root)
    if self.interrupted:
        out["interrupted"] = True
    return out


def _completeness(pipelines: Iterable[Pipeline]) -> float | None:
    """Trades kept / trades the ids say existed, over the venues whose ids can say (None
    where none can), as ``Collector.stats`` counts it for one venue."""
    kept = missing = 0
    counted = False
    for p in pipelines:
        if getattr(p, "gap_detector", None) is not None:
            counted = True
            s = p.stats()
            kept += s["ticks"] - p.duplicates_seen
            missing += s["missing_trades"] - s["backfilled"]
    return round(kept / max(1, kept + missing), 6) if counted else None
