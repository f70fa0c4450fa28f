"""The SQLite sink in a process of its own, so that writing does not compete with receiving.

In one process the receive thread and the writer thread share one interpreter
lock, and sqlite3's ``executemany`` binds every value under it: with a busy
feed the two threads take turns on one core and most rows are written after
the feed has ended (issue 17). With ``writer="process"`` the writer thread
stays (it takes each flush from the pipeline and keeps the accounting), but
hands the rows (the trades as the ring's ticks: the child makes their rows),
pickled, through a pipe to a child process that owns the connection — an
ordinary :class:`~rtkit.sinks.sqlite.SQLiteSink` — and
answers what it stored: the ticks and the rows of each kind it inserted, and
where the rows it refused one by one were, so the counters stay exact.

The child (:mod:`rtkit.runtime.writer_child`) is started by the writer thread
on the first ``open`` (``start()`` returns at once) — with ``writer="auto"``, the
default, only once rows come faster than ``AUTO_ROWS_PER_S`` — takes the run over once it
is up, and is ended in ``close``; it ends by itself when its parent goes. A
child that dies or stops answering while it writes is a refused write like a
locked database: ``storage_error``, the rows kept in memory, the run reopened
here and a new child. Every flush is one transaction, so what a ``kill -9`` of
either process leaves on disk is what was committed.
"""

from __future__ import annotations

import contextlib
import logging
import os
import time
from pathlib import Path
from typing import Any

from rtkit.runtime.writer_child import ChildLost, WriterChild, batch_lists
from rtkit.sinks import RunEnd, RunInfo, SinkRefused
from rtkit.sinks.sqlite import FeedPace, SQLiteSink
from rtkit.store import TickStore

log = logging.getLogger("rtkit")

#: the writers a collector can have: the thread writes in the collector's process, the
#: process in a child of its own, and "auto" in the thread until the collector receives
#: rows faster than AUTO_ROWS_PER_S, then in a child
WRITERS = ("auto", "thread", "process")
#: the writer a collector has when none is given
DEFAULT_WRITER = "auto"
#: rows a second (trades and the other kinds' rows, in AUTO_FAST_WINDOWS windows) from which
#: writer="auto" starts its child: below, the thread costs the receive loop a few percent
#: of the interpreter lock and a child would cost a process of ~40 MB; above, the thread's
#: share grows to a third (1.2 of 3.4 us a tick at 250k a second, issue 17)
AUTO_ROWS_PER_S = 50_000
#: the shortest window over which writer="auto" measures the rate while it writes in the
#: thread (a window runs on across flushes and waits until it is this long). 25 ms, not
#: 50: a 200k-frame burst was stored at 1.88× a bare WebSocketApp loop with 50, 1.97×
#: with 25 (as writer="process" in the same rounds), the child up 50 ms sooner
AUTO_WINDOW_S = 0.025
#: fast windows in a row that start the child: rows must come fast for 50 ms, so one
#: burst (a book's 5,000-level snapshot: 10,000 rows at once), which fills one window,
#: starts no process, while a busy feed has its child ~50 ms after it starts
AUTO_FAST_WINDOWS = 2
#: longest wait for the child's answer to one flush, and for it to read a large flush's
#: parts, before it is ended and the write counted as refused
ANSWER_TIMEOUT_S = 60.0
#: how long ``close`` waits for the child to close the run and end before killing it
CLOSE_WAIT_S = 1.0
#: longest wait for a child asked to take the run over to answer (it is up in ~0.1 s, a
#: loaded machine's in seconds): one that hangs is ended, a take-over refused, so that
#: after MAX_REFUSED_HANDOVERS this process writes for good, its flushes no longer
#: waiting an interval for a child that never comes
START_TIMEOUT_S = 30.0
#: take-overs in a row the child may fail (it cannot start, or dies) before this process
#: keeps writing, as with writer="thread" (a warning says so)
MAX_REFUSED_HANDOVERS = 3


def sqlite_sink(writer: str | None, path: str | Path, store_type: type[TickStore] = TickStore):
    """The SQLite sink for ``writer`` (one of WRITERS; None: DEFAULT_WRITER). ``"auto"``
    is the thread's sink where a child could not write: a platform without ``pass_fds``
    (Windows), or a store type the child cannot import by name (one defined in a function
    or in ``__main__``, a notebook's cell)."""
    writer = DEFAULT_WRITER if writer is None else writer
    if writer == "auto":
        if os.name != "posix" or not _importable(store_type):
            return SQLiteSink(path, store_type)
        return ProcessSink(path, store_type, on_demand=True)
    if writer == "process":
        return ProcessSink(path, store_type)
    if writer == "thread":
        return SQLiteSink(path, store_type)
    raise ValueError(f"writer must be one of {', '.join(map(repr, WRITERS))}, not {writer!r}")


def _importable(store_type: type) -> bool:
    """Whether another process can import ``store_type`` by its module and name."""
    return store_type.__module__ != "__main__" and "<locals>" not in store_type.__qualname__


class ProcessSink:
    """The sink contract (:mod:`rtkit.sinks`), served by an SQLiteSink in a child process.

    The child takes a moment to start (a fresh interpreter and the imports writing needs,
    see :mod:`rtkit.runtime.writer_boot`: about 0.2 s, more on a busy machine), and the
    flushes must not wait for it: ``open`` opens the file here, as the writer thread
    does, and asks the child to take the run over. Until the child says it has, flushes
    are written here; from then on, there. A ``close`` before that ends the child at
    once, so ``stop()`` never waits for it.

    With ``on_demand`` (writer="auto") no child is started until ``start_child``: the
    writer thread calls it when rows come fast (AUTO_ROWS_PER_S); until then, and for a
    collector that never gets there, it writes as the thread's sink does.
    """

    def __init__(self, path: str | Path, store_type: type[TickStore] = TickStore, *,
                 on_demand: bool = False) -> None:
        #: the writing connection in this process until the child takes over; also
        #: ``probe()`` and ``reader()``
        self.local = SQLiteSink(path, store_type)
        self.path = self.local.path
        self.where = self.local.where
        self.store_type = store_type
        name = f"{store_type.__module__}:{store_type.__qualname__}"
        if "<locals>" in name:
            raise ValueError(f"writer='process' opens the store by name in another process; "
                             f"{name} has none: define it at a module's top level")
        self._child: WriterChild | None = None
        self._run: RunInfo | None = None
        self._open = False
        self._asked = False  # the child was asked to take the run over, no answer read yet
        self._opened = 0  # how many times the run was opened here (a reopen: a new file)
        self._asked_for = 0  # ... when the child was asked: an answer to an older is stale
        self._asked_at = 0.0  # time.monotonic() of that ask
        self._child_writes = False  # it has taken over: flushes go to it
        self._refusals = 0  # take-overs in a row that failed
        self._resume_run_id: int | None = None  # the run a lost child was writing
        self._on_demand = on_demand
        self._wanted = not on_demand  # a child is to write (on demand: once rows come fast)
        self._pace = FeedPace()  # a slower feed's flushes go in small messages

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs (for tests and ``ps``)."""
        return self._child.pid if self._child is not None else None

    def probe(self) -> None:
        self.local.probe()

    def reader(self) -> TickStore:
        return self.local.reader()

    @property
    def is_open(self) -> bool:
        return self._open

    @property
    def starting(self) -> bool:
        """Whether the child is still starting to take the run over: the writer thread
        lets an early flush wait for it, up to its interval, and looks every few ms
        whether it is up. With ``on_demand`` too, though this process has been writing:
        a 50k-tick flush written here while the child starts costs the receive loop the
        interpreter lock for ~0.2 s, and the child, up ~0.1 s after it was asked, would
        wait for it (200k-frame bursts, the default writer: 1.64× a bare WebSocketApp
        loop until stored over wss:// when this process wrote meanwhile, 1.79× when the
        flush waited; about the same over ws://, 1.87×, 1.88×)."""
        return self._open and not self._ready() and self._asked

    @property
    def writing_in(self) -> str:
        """Where the flushes are written now, for ``stats`` (any thread may ask: it reads
        no answer): "process", "starting" (a child is asked to take over and is not up
        yet; this process writes once a flush has waited an interval) or "thread"."""
        if self._child_writes:
            return "process"
        return "starting" if self._open and self._asked else "thread"

    @property
    def undecided(self) -> bool:
        """Whether it waits to be told to start its child (writer="auto", rows slow so far)."""
        return not self._wanted

    def start_child(self) -> None:
        """Have a child take the writing over (now if the run is open, else when it opens)."""
        self._wanted = True
        if self._open and not self._asked and not self._child_writes:
            self._hand_over()

    @property
    def in_child(self) -> bool:
        """Whether the child writes the flushes now (it has taken the run over)."""
        return self._child_writes

    def open(self, run: RunInfo) -> None:
        # raises SinkRefused, as the thread's sink does
        self.local.open(run, self._resume_run_id)
        self._resume_run_id = None
        self._run, self._open, self._child_writes = run, True, False
        self._opened += 1
        self._pace.restart()  # the first flush's pace is from now, as the thread's sink's
        if self._wanted and not self._asked:  # else its answer is stale when it comes, and
            self._hand_over()  # it is asked again

    def check(self) -> str | None:
        if not self._open:
            return None
        if self._ready():
            try:
                problem = self._call(("check",))
            except SinkRefused as exc:
                problem = str(exc)
        else:
            problem = self.local.check()
        if problem:
            self._open = self._child_writes = False
            self.local.close()
        return problem

    def write(self, batch, refused: list):
        """One flush, in one transaction (in the child once it has taken over); raises
        what the write raised."""
        if not self._open:
            raise SinkRefused(f"the database '{self.path}' is not open")
        slow = self._pace.slow(len(batch[0]))
        if not self._ready():
            return self.local.write(batch, refused)
        assert self._child is not None  # it writes
        lists = batch_lists(batch)
        try:
            self._child.send_rows(list(batch[3] or {}) if len(batch) > 3 else [], lists,
                                  ANSWER_TIMEOUT_S, slow)
        except ChildLost:
            self._drop_child()
            raise
        except Exception as exc:  # a row pickle cannot take: no row of it was written
            self._drop_child()
            raise SinkRefused(f"{type(exc).__name__}: {exc}") from exc
        try:
            inserted, positions = self._child.answer(ANSWER_TIMEOUT_S)
        except ChildLost:
            self._drop_child()
            raise
        for table, where, error in positions:
            refused.append((table, where if type(where) is not tuple  # a copy, when not found
                            else lists[where[0]][where[1]], error))
        return inserted

    def close(self, end: RunEnd | None = None) -> None:
        """Close the run, where it is written; end the child (at once if it has not
        taken over; killed if it has not ended within ``CLOSE_WAIT_S``)."""
        child = self._child
        if self._open and self._ready() and child is not None:
            deadline = time.monotonic() + CLOSE_WAIT_S
            with contextlib.suppress(Exception):  # lost, or its close failed: it ends
                child.call(("close", end), CLOSE_WAIT_S)
            child.end(max(0.0, deadline - time.monotonic()))
            self._child = None
        else:
            self._end_child()
            self.local.close(end)
        self._open = self._child_writes = False

    # --- the take-over ----------------------------------------------------------------
    def _hand_over(self) -> None:
        """Ask the child (started now if there is none) to take the open run over."""
        if self._refusals >= MAX_REFUSED_HANDOVERS:
            return  # it cannot: this process writes, as the writer thread would
        try:
            if self._child is None or not self._child.running:
                self._end_child()
                self._child = WriterChild(self.path, self.store_type)
            self._child.send(("open", self._run, self.local.run_id, self.local.identity))
            self._asked, self._asked_for = True, self._opened
            self._asked_at = time.monotonic()
        except SinkRefused as exc:
            self._refused_handover(str(exc))

    def _ready(self) -> bool:
        """Whether the child writes now; reads its answer to the take-over once it is
        there (without waiting), and asks again after a refusal or a reopen."""
        child = self._child
        if self._child_writes or not self._asked or child is None:
            return self._child_writes
        if not child.has_answer():
            if time.monotonic() - self._asked_at < START_TIMEOUT_S:
                return False
            self._lost_before_take_over(f"the writer process did not answer within "
                                        f"{START_TIMEOUT_S:g} s")  # hung
            return False
        self._asked = False
        try:
            child.answer(0)
        except ChildLost as exc:  # died (or could not start)
            self._lost_before_take_over(str(exc))
            return False
        except Exception as exc:  # it could not open the file: ask again, a few times (the
            self._refused_handover(str(exc))  # writer thread looks every few ms: not for
            self._hand_over()  # ever, 100 opens a second, nor wait for it for ever)
            return False
        if self._asked_for != self._opened:  # the run was opened again since: ask again
            self._hand_over()
            return False
        self._refusals = 0
        self._child_writes = True
        self.local.close()  # the run stays open: the child finishes it
        return True

    def _lost_before_take_over(self, why: str) -> None:
        """A child that died or hung before it took over: ended, and a new one asked, a
        few times (MAX_REFUSED_HANDOVERS)."""
        self._end_child()
        self._refused_handover(why)
        self._hand_over()

    def _refused_handover(self, why: str) -> None:
        """A child that could not start or died before taking over: after a few, this
        process keeps writing."""
        self._asked = False
        self._refusals += 1
        if self._refusals == MAX_REFUSED_HANDOVERS:
            log.warning("rtkit: the writer process for '%s' could not take over (%s); "
                        "this process writes instead, as with writer='thread'", self.where, why)
            self._end_child()

    # --- the child ----------------------------------------------------------------------
    def _call(self, message: tuple) -> Any:
        """A call on the child that writes; a lost child closes this sink (see below)."""
        assert self._child is not None
        try:
            return self._child.call(message, ANSWER_TIMEOUT_S)
        except ChildLost:
            self._drop_child()
            raise

    def _drop_child(self) -> None:
        """The child is gone; if it was writing, the sink is closed, to be opened again
        here with the same run (and a new child to take it over)."""
        if self._child_writes:
            self._open = self._child_writes = False
            self._resume_run_id = self.local.run_id
        self._end_child()

    def _end_child(self) -> None:
        child, self._child = self._child, None
        self._asked = False
        if child is not None:
            child.end()
