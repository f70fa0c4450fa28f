"""Collector: live trades from one venue, in a background thread, into a ring and SQLite.

The collector owns the lifecycle and what a notebook reads; the work is done
by two daemon threads, each the only writer of what it owns:

* the **receive thread** (:mod:`rtkit.runtime.receiver`) owns the WebSocket and
  feeds every frame through the venue adapter and validation into the ring
  buffer and the pending batch;
* the **writer thread** (:mod:`rtkit.runtime.writer`) owns the sink
  (:mod:`rtkit.sinks.sqlite`) and flushes the pending batch every
  ``flush_interval_s`` (sooner when it grows large), retrying while it refuses.

The status moves along one table (:mod:`rtkit.runtime.status`); running
collectors are registered by name (:mod:`rtkit.runtime.registry`).
``start()`` returns at once; ``stop()`` returns within about two seconds after
a final flush, and joins both threads. Nothing here prints or displays: the
state is read from ``.status``, ``.stats``, ``.df`` and the ``rtkit`` logger.
"""

from __future__ import annotations

import gc
import inspect
import logging
import threading
import time
import warnings
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, Self

from rtkit.backfill import DEFAULT_BACKFILL_MAX, Backfiller, can_backfill
from rtkit.books.frame import BookReading
from rtkit.books.keeper import DEFAULT_AUDIT_EVERY_S, books_of
from rtkit.buffer import DEFAULT_CAPACITY, RingBuffer
from rtkit.collector_views import CollectorViews
from rtkit.hooks import Hooks, LiveHooks
from rtkit.instruments import ContractSetup
from rtkit.pipeline import DEFAULT_MAX_FRAME_BYTES, DEFAULT_PENDING_LIMIT, Pipeline
from rtkit.recording import LastCloses, recording_path
from rtkit.redact import redactor_for
from rtkit.rest.budget import BUDGET_SHARE, use_share
from rtkit.rest.endpoints import resolve_rest_url
from rtkit.runtime import registry
from rtkit.runtime.config import CollectorConfig, checked_kinds, lake_sink, venue_options_from
from rtkit.runtime.receiver import Receiver
from rtkit.runtime.registry import stop_all
from rtkit.runtime.status import (
    STATES,
    STILL_FINISHING,
    LastError,
    Status,
    StatusMachine,
)
from rtkit.runtime.writer import Writer
from rtkit.runtime.writer_process import sqlite_sink
from rtkit.sinks import RunInfo
from rtkit.sinks.fanout import Fanout
from rtkit.store import DEFAULT_DB
from rtkit.validate import AnomalyFilter
from rtkit.venues import Adapter, get_adapter

__all__ = ["STATES", "Collector", "Status", "collect", "stop_all"]

log = logging.getLogger("rtkit")

#: the shortest time between two of the full garbage collections a collector's start runs
#: (see ``_collect_garbage``): one that recent left little to collect, and each costs
#: 20-50 ms (make test took 45 s longer with one at every start)
FULL_COLLECTION_EVERY_S = 60.0
_collected_at: float | None = None  # time.monotonic() of the last one


class CollectorReplaced(UserWarning):
    """A collector was stopped because another of the same name started (a re-run cell)."""


# shown every time, not once per line of code: each replacement is news to the user
warnings.simplefilter("always", CollectorReplaced)


#: what each option of :class:`Collector` does (joined to its docstring below)
COLLECTOR_OPTIONS = """
``symbols`` are normalised (``BTC-USDT``) or in the venue's own form.
``url`` replaces the venue's public ``wss://`` endpoint (a simulator, a
testnet, a proxy); keys in it (user info, query values, path tokens) are
used to connect but never stored or shown: ``runs.url``, ``.status``,
``stats`` and the log carry ``redacted_url``. ``record_raw`` names a
``.jsonl``/``.jsonl.gz`` file that receives every frame for exact replay.
``name`` (default: venue and symbols, sorted: the same symbols in any order
are the same market) identifies the collector: starting one stops a running
one of the same name, with a ``CollectorReplaced`` warning, so re-running a
notebook cell never leaves two writers. A numeric parameter outside its range
(``rtkit.params.RANGES``) is a ValueError that names the range.
``venue_options``: the adapter's options (``{"channel": "aggTrade"}``; plain
keywords work too, an unknown one is a TypeError naming the closest).
``venue`` may also be an adapter instance (``rtkit.onchain`` passes its own).
``kinds``: the kinds of record to collect (``rtkit.kinds``), some of those the
venue offers. ``lake``: a folder that also gets the records as Parquet.
``rest_url``: the base ``http(s)://host:port`` of the venue's REST API (a
simulator, a proxy; rtkit appends the venue's paths); without it, a ``url``
pointing at a simulator of this process finds that simulator's REST side, any
other ``url`` the same host and port, and no ``url`` the venue's own API.
``depth``: the venue's book depth; ``audit_every_s``: how often an ``unverified``
book is checked against a REST snapshot (see ``rtkit.books.frame.BookReading``).
``redundancy=2``: two connections on the same streams, each trade kept once (a
frame one of them loses, the other brings), for completeness over bandwidth.
``writer``: ``"auto"`` (default) writes SQLite in a thread of this process until rows
come faster than 50,000 a second, then in a child process of its own; ``"thread"``
always in the thread; ``"process"`` always in the child, which keeps the writing off the
receive loop's interpreter lock (it starts in about 0.2 s, during which the thread
writes). "auto" stays in the thread where a child cannot write: on Windows, or with a
store type defined in a function or in ``__main__``.
``backfill`` (default True where the venue can fill by id): a thread fetches the
trades of each id gap from the venue's REST history (``rest_url``) within its
budget and stores them like live ones; ``backfill_max`` caps one gap (default 50,000
trades; a larger one ends ``partial``). See ``rtkit.backfill``. ``rest_budget_share``
(default 0.5, at most 0.9): the share of the venue's published REST rate limit that its
snapshots and backfill may use (one budget per venue in the process: the most any of
its collectors asked for).
"""


class Collector(CollectorViews, BookReading, LiveHooks):
    """Real-time trades of ``symbols`` on ``venue``, kept in memory and in SQLite.

    The options are described in ``COLLECTOR_OPTIONS`` (shown by ``help(Collector)``).
    """
    backfiller: Backfiller | None  # and its thread: set by _threads_parts, _start_backfill
    _backfill_thread: threading.Thread | None

    def __init__(
        self,
        venue: str | Adapter,
        symbols: list[str] | str,
        *,
        db: str | Path = DEFAULT_DB,
        url: str | None = None,
        capacity: int = DEFAULT_CAPACITY,
        flush_interval_s: float = 1.0,
        record_raw: str | Path | None = None,
        name: str | None = None,
        anomaly: AnomalyFilter | None = None,
        max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
        pending_limit: int = DEFAULT_PENDING_LIMIT,
        stale_after_s: float | None = None,
        backoff_initial_s: float = 0.5,
        backoff_max_s: float = 30.0,
        connect_timeout_s: float = 10.0,
        sslopt: dict | None = None,
        venue_options: Mapping[str, Any] | None = None,
        kinds: Sequence[str] = ("trades",),
        lake: str | Path | None = None,
        rest_url: str | None = None,
        depth: int | None = None,
        audit_every_s: float = DEFAULT_AUDIT_EVERY_S,
        redundancy: int = 1,
        writer: str | None = None,
        backfill: bool = True, backfill_max: int = DEFAULT_BACKFILL_MAX,
        rest_budget_share: float = BUDGET_SHARE,
        **more_venue_options,
    ) -> None:
        venue_options = venue_options_from(venue, venue_options, more_venue_options)
        #: the configuration as given: what again() rebuilds from
        self.config = config = CollectorConfig(
            venue, symbols, db, url, capacity, flush_interval_s, record_raw, name, anomaly,
            max_frame_bytes, pending_limit, stale_after_s, backoff_initial_s, backoff_max_s,
            connect_timeout_s, sslopt, venue_options, kinds, lake, rest_url, depth,
            audit_every_s, redundancy, writer, backfill, backfill_max, rest_budget_share)
        self.adapter = venue if isinstance(venue, Adapter) else get_adapter(venue, **venue_options)
        self.kinds = checked_kinds(kinds, self.adapter)
        self.adapter.configure(self.kinds, depth)
        if isinstance(symbols, str):
            symbols = [symbols]
        if not symbols:
            raise ValueError("give at least one symbol, e.g. ['BTC-USDT']")
        self.symbols = list(dict.fromkeys(self.adapter.normalise_symbol(s) for s in symbols))
        config.check()
        self.venue = self.adapter.name
        self.url = self.adapter.url(url, self.symbols)  # as given: what the socket connects to
        self.redact = redactor_for(self.url)
        #: the URL without its secrets: what runs.url, .status.reason and the log show
        self.redacted_url = self.redact.redacted_url
        #: the REST base (``scheme://host:port``) for the venue's snapshots and backfill:
        #: ``rest_url``, else derived from ``url`` (rtkit.rest.endpoints.resolve_rest_url)
        self.rest_url = resolve_rest_url(self.venue, rest_url, url)
        self.ring = RingBuffer(capacity)
        books = books_of(self.adapter, self.symbols, self.kinds, audit_every_s, self.rest_url)
        # the adapter's stage, if it has one, says what its items become and their store
        self.pipeline = Pipeline(self.adapter, self.ring, anomaly=anomaly,
                                 max_frame_bytes=max_frame_bytes, pending_limit=pending_limit,
                                 symbols=self.symbols, kinds=self.kinds, books=books)
        self.db = Path(db).expanduser()
        self.sink = sqlite_sink(writer, self.db, self.pipeline.store_type)
        self.sink.probe()  # fail now, in the caller's cell, if it cannot be written
        self.lake = lake_sink(lake, self.kinds)  # None, or the Parquet sink beside SQLite
        # the symbols as a set: the same market in another order is the same collector
        self.name = name or f"{self.venue}:{','.join(sorted(self.symbols))}"
        #: live hooks (``on``/``off``): the pipeline offers them each new batch
        self.hooks = self.pipeline.hooks = Hooks(self.name, self.venue, self.kinds)
        self.flush_interval_s = flush_interval_s
        # fail now too; "~/raw.jsonl" is in the home folder
        self.record_raw = recording_path(Path(record_raw).expanduser()) if record_raw else None
        self.started_at_ns: int | None = None
        self._machine = StatusMachine(self.redact)
        self._last_error = LastError(self.name, self.redact)
        self._stop = threading.Event()
        self._flush_now = threading.Event()
        self.receiver, self.writer = _threads_parts(self, config)
        self._recv_thread: threading.Thread | None = None
        self._write_thread: threading.Thread | None = None
        self._threads_left = 0  # of the two, guarded by _threads_lock
        self._threads_lock = threading.Lock()

    # --- lifecycle -----------------------------------------------------------------
    def start(self) -> Self:
        """Start collecting in the background and return at once."""
        if self.running:
            return self
        if self._recv_thread is not None:
            raise RuntimeError(
                f"collector {self.name!r} was stopped; create a new Collector (or call "
                "rtkit.collect again) to collect again"
            )
        previous = registry.running(self.name)
        if previous is not None and previous is not self:
            _replace(previous)
        _collect_garbage()
        self.started_at_ns = time.time_ns()
        self._machine.move("connecting")
        self._write_thread = threading.Thread(target=self._thread_body, args=(self.writer.run,),
                                              daemon=True, name=f"rtkit-write-{self.name}")
        self._recv_thread = threading.Thread(target=self._thread_body, args=(self.receiver.run,),
                                             daemon=True, name=f"rtkit-recv-{self.name}")
        self._threads_left = 2
        registry.register(self.name, self)
        # every REST request of this venue (books, backfill) from now on: up to this share
        use_share(self.venue, self.rest_url, self.config.rest_budget_share)
        self._recv_thread.start()
        self._write_thread.start()
        _start_backfill(self)
        self.hooks.start(lambda: self.running)
        return self

    def stop(self, timeout_s: float = 2.0) -> Self:
        """Stop, flush what is pending and join the threads; idempotent.

        The stop is requested before anything waits, so a Ctrl-C while it waits
        still ends the collector: the threads finish on their own, ``.status``
        says ``stopping`` until they have, then ``stopped``, and the last thread
        to end takes the collector out of the registry; ``stop()`` again waits.
        """
        deadline = time.monotonic() + timeout_s
        self._machine.request_stop()
        self._stop.set()
        try:
            self.receiver.abort()
            for thread in (self._recv_thread, self._write_thread):
                if thread is not None and thread is not threading.current_thread():
                    self._flush_now.set()
                    thread.join(max(0.05, deadline - time.monotonic()))
            _join_backfill(self, deadline)
            self.hooks.stop(deadline)
        finally:
            self._flush_now.set()
            self.pipeline.close_books()
            if not self.running:
                registry.unregister(self.name, self)
                self._machine.finish()
        if self.running:
            # a connect still in progress, or a long final flush: stay registered so that
            # stop_all() (and the exit handler) wait for it, and say so
            self._machine.move("stopping", STILL_FINISHING)
            log.warning("rtkit: %s: %s", self.name, STILL_FINISHING)
        return self

    def _thread_body(self, body) -> None:
        """Run one of the two threads; the last to end takes the collector out of the
        registry and ends a requested stop, whether ``stop()`` waited or was interrupted."""
        try:
            body()
        finally:
            with self._threads_lock:
                self._threads_left -= 1
                last = self._threads_left == 0
            if last:
                # ended on its own (failed) or stopped: the backfill thread ends with them,
                # as nothing it fetched could be stored any more
                self._stop.set()
                if self.backfiller is not None:
                    self.backfiller.abort()
                registry.unregister(self.name, self)
                if self._machine.stop_requested:
                    self._machine.finish()

    close = stop

    def again(self) -> Self:
        """A new, unstarted collector with this one's configuration and live hooks: a
        collector runs once, so this is how a notebook's Start button starts it again."""
        clone = type(self).__new__(type(self))
        Collector.__init__(clone, **self.config.arguments())
        self.hooks.copy_to(clone.hooks)
        return clone

    @property
    def running(self) -> bool:
        return any(t is not None and t.is_alive() for t in (self._recv_thread, self._write_thread))

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    # --- what the writer records about the run -------------------------------------------
    def _run_info(self) -> RunInfo:
        config = {"flush_interval_s": self.flush_interval_s, "capacity": self.ring.capacity,
                  "record_raw": self.record_raw, "pending_limit": self.pipeline.pending_limit}
        return RunInfo(self.name, self.venue, self.symbols, self.redacted_url, config,
                       self.started_at_ns or time.time_ns())

    def _run_end(self) -> tuple[str, dict]:
        return ("failed" if self.status == "failed" else "stopped"), self.stats

    def panel(self, **options):
        """An ``rtkit.widgets.Panel`` for this collector (Start / Stop, status, counters,
        newest ticks, a price chart per symbol); ``options``: ``rows``, ``chart_ticks``,
        ``refresh_s``. Closing the panel leaves the collector running."""
        from rtkit.widgets import Panel  # ipywidgets and bqplot load only when asked for

        return Panel(self, **options)


Collector.__doc__ = f"{Collector.__doc__}\n{COLLECTOR_OPTIONS}"


def _collect_garbage() -> None:
    """One full garbage collection, before the first collector of the process starts
    receiving. A full one walks every object of the interpreter (20-50 ms with pandas
    loaded) while the receive thread waits. Right after a script's or notebook's imports
    one is often due: it came ~50 ms into a 200k-frame burst, received at 2.56x a bare
    WebSocketApp loop, against 2.63x with the collection done here (same rounds, issue
    17). Not while another collector runs (it would wait), not within
    FULL_COLLECTION_EVERY_S of the last, and not when the program has turned the garbage
    collector off."""
    global _collected_at
    now = time.monotonic()
    if (not gc.isenabled() or registry.any_running()
            or (_collected_at is not None and now - _collected_at < FULL_COLLECTION_EVERY_S)):
        return
    gc.collect()
    _collected_at = time.monotonic()


def _replace(previous: Collector) -> None:
    """Stop ``previous``, saying so where the user sees it: the logger may have no
    handler, a warning is what a notebook shows (at the caller's line)."""
    text = (f"rtkit: a collector named {previous.name!r} is running (writing to "
            f"{previous.db}); stopping it first. Pass name= to run both.")
    log.warning("%s", text)
    warnings.warn(text, CollectorReplaced, stacklevel=_caller_level())
    previous.stop()


def _caller_level() -> int:
    """The stack level of the first frame outside this module (``collect`` or user code)."""
    frame, level = inspect.currentframe(), 1
    while frame is not None and frame.f_globals.get("__name__") == __name__:
        frame, level = frame.f_back, level + 1
    return max(level - 1, 1)


def _threads_parts(c: Collector, config: CollectorConfig) -> tuple[Receiver, Writer]:
    """The receive loop and the writer loop of collector ``c``, sharing its events."""
    receiver = Receiver(
        c.adapter, c.pipeline, url=c.url, symbols=c.symbols, status=c._machine,
        last_error=c._last_error, stop=c._stop, flush_now=c._flush_now,
        stale_after_s=config.stale_after_s or c.adapter.stale_after_s,
        backoff_initial_s=config.backoff_initial_s, backoff_max_s=config.backoff_max_s,
        connect_timeout_s=config.connect_timeout_s, sslopt=config.sslopt,
        record_raw=c.record_raw, name=c.name, redundancy=config.redundancy)
    # SWAP/FUTURES/inverse symbols: their contract values, learnt before the first connect
    receiver.before_connect = ContractSetup(c.adapter, c.symbols, c.rest_url, c.db) or None
    writer = Writer(
        c.pipeline, c.sink if c.lake is None else Fanout(c.sink, c.lake), name=c.name,
        flush_interval_s=c.flush_interval_s, stop=c._stop, flush_now=c._flush_now,
        receiving=lambda: c._recv_thread is not None and c._recv_thread.is_alive(),
        run_info=c._run_info, run_end=c._run_end, report=c._last_error.set)
    #: the backfill worker (``rtkit.backfill``), where the venue can fill and it is wanted
    c.backfiller = None
    c._backfill_thread = None
    if config.backfill and not can_backfill(c.adapter) and c.pipeline.stage is None:
        c.backfiller = Backfiller(
            c.pipeline, c.db, c.rest_url, max_trades=config.backfill_max, stop=c._stop,
            writing=lambda: c._write_thread is not None and c._write_thread.is_alive(),
            recorder=lambda: receiver.recorder)
        receiver.closing = LastCloses(2)  # the backfill thread may write after the receiver
    return receiver, writer


def _start_backfill(c: Collector) -> None:
    """Start the backfill thread beside the other two (it ends when they are asked to)."""
    if c.backfiller is not None:
        backfiller, closing = c.backfiller, c.receiver.closing

        def run() -> None:
            try:
                backfiller.run()
            finally:
                closing.done()

        c._backfill_thread = threading.Thread(target=run, daemon=True,
                                              name=f"rtkit-backfill-{c.name}")
        c._backfill_thread.start()


def _join_backfill(c: Collector, deadline: float) -> None:
    """Wait for the backfill thread until ``deadline`` (after the writer's final flush,
    which stores what it fed): it gives an unfinished gap back to the ledger."""
    thread = c._backfill_thread
    if thread is not None and thread is not threading.current_thread():
        c.backfiller.abort()  # type: ignore[union-attr]
        thread.join(max(0.05, deadline - time.monotonic()))


def collect(venue: str, symbols: list[str] | str, **kwargs) -> Collector:
    """Create a :class:`Collector` and start it; returns at once with the collector."""
    return Collector(venue, symbols, **kwargs).start()


# ``rtkit.collect?`` and tab completion show the Collector's own keywords, not **kwargs
collect.__signature__ = inspect.signature(Collector.__init__).replace(  # type: ignore[attr-defined]
    parameters=list(inspect.signature(Collector.__init__).parameters.values())[1:],
    return_annotation="Collector")
