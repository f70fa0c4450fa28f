"""The SQLite sink: a collector's writing connection, and what can go wrong with its file.

It wraps a :class:`rtkit.store.TickStore` (or a subclass that keeps more
tables) opened in the writer thread, and owns what a long-running writer of a
file meets: another process holding the lock (each write waits at most
``BUSY_TIMEOUT_S`` before it counts as refused and is retried), a full or
read-only disk, and the file being moved, replaced or deleted under it —
checked by its (device, inode) before every write, since writes would
otherwise land in an unlinked inode nobody can read.
"""

from __future__ import annotations

import contextlib
import sqlite3
import time
from pathlib import Path

from rtkit.kinds.trades import TradeRows
from rtkit.sinks import RunEnd, RunInfo, SinkRefused
from rtkit.store import StoreError, TickParts, TickStore
from rtkit.store_schema import file_identity

#: how long one write waits for another process's lock before it counts as refused
BUSY_TIMEOUT_S = 0.5
#: trades a second below which a flush is written in parts of SMALL_FLUSH_PART_ROWS,
#: each made into rows and inserted in one statement, instead of all its rows made at
#: once and 2,048 a statement (each binding holds the interpreter lock). A slower feed's
#: receive thread has time to spare, and what counts is how long it waits for the lock
#: when a frame comes: a thread that sleeps 0.2 ms beside 20k-trade flushes woke late by
#: 5.2 ms at p99 before, 0.8 ms after, the write as fast (benchmarks/writer_holds.py).
#: A faster feed's flushes keep large statements: each gives the lock away once, and
#: taking it back waits for the busy receive thread. The same boundary as writer="auto"'s
#: (above it, a child writes)
SLOW_FEED_TICKS_PER_S = 50_000
SMALL_FLUSH_PART_ROWS = 512


class FeedPace:
    """How fast the trades a sink is given come: a flush's trades over the time since the
    last flush (or the open). A flush's size alone does not tell: flushes that follow
    one another while a writer process keeps busy are small, and the feed fast."""

    def __init__(self) -> None:
        self._at = time.monotonic()

    def restart(self) -> None:
        self._at = time.monotonic()

    def slow(self, ticks: int) -> bool:
        """Whether ``ticks`` trades, to be written now, came slower than
        SLOW_FEED_TICKS_PER_S; the clock restarts now."""
        now = time.monotonic()
        elapsed, self._at = now - self._at, now
        return ticks < SLOW_FEED_TICKS_PER_S * elapsed


class SQLiteSink:
    """Rows into the SQLite file at ``path`` (tables of ``store_type``)."""

    def __init__(self, path: str | Path, store_type: type[TickStore] = TickStore) -> None:
        self.path = Path(path)
        self.where = str(self.path)
        self.store_type = store_type
        self._store: TickStore | None = None
        self._identity: tuple[int, int] | None = None
        self._run_id: int | None = None
        self.pace = FeedPace()

    def probe(self) -> None:
        """Open and close the file now, so that a path that cannot be written fails in
        the caller's cell (raises :class:`rtkit.store.StoreError`)."""
        self.store_type(self.path).close()

    def reader(self) -> TickStore:
        """A read-only store of the same file, for another thread."""
        return self.store_type(self.path, readonly=True)

    @property
    def is_open(self) -> bool:
        return self._store is not None

    @property
    def identity(self) -> tuple[int, int] | None:
        """(device, inode) of the file it opened, once open."""
        return self._identity

    @property
    def run_id(self) -> int | None:
        """The id of the run's row in ``runs``, once open."""
        return self._run_id

    def open(self, run: RunInfo, run_id: int | None = None,
             identity: tuple[int, int] | None = None) -> None:
        """Open the file and record the run; with ``run_id``, take over the run whose
        row another connection made (the writer process takes over from the thread),
        and with ``identity`` only in that connection's file: one moved or replaced
        since is refused, for that connection to notice and say so."""
        store = None
        try:
            store = self.store_type(self.path, busy_timeout_s=BUSY_TIMEOUT_S)
            self._identity = file_identity(self.path)
            if identity is not None and self._identity != tuple(identity):
                raise OSError(f"'{self.path}' is no longer the file the run was opened in")
            self._run_id = run_id if run_id is not None else store.start_run(
                name=run.name, venue=run.venue, symbols=run.symbols, url=run.url,
                config=run.config, started_at=run.started_at)
        except (StoreError, sqlite3.Error, OSError) as exc:
            if store is not None:
                store.close()
            raise SinkRefused(f"{type(exc).__name__}: {exc}") from exc
        self._store = store
        self.pace.restart()

    def check(self) -> str | None:
        if self._store is None or file_identity(self.path) == self._identity:
            return None
        self._store.close()  # its file is gone: writes would land in an unlinked inode
        self._store = None
        return (f"the database file '{self.path}' was moved, replaced or deleted while "
                "collecting; it is made again, and what was written before is wherever the "
                "old file went (nowhere, if it was deleted)")

    def write(self, batch, refused: list):
        if self._store is None:
            raise SinkRefused(f"the database '{self.path}' is not open")
        ticks = batch[0]
        if (isinstance(ticks, TradeRows) and self.pace.slow(len(ticks))
                and type(self._store).write is TickStore.write):
            batch = (TickParts(ticks.in_parts(SMALL_FLUSH_PART_ROWS)), *batch[1:])
        return self._store.write(*batch, refused=refused)

    def close(self, end: RunEnd | None = None) -> None:
        store, self._store = self._store, None
        if store is None:
            return
        if end is not None and self._run_id is not None:
            with contextlib.suppress(Exception):
                store.finish_run(self._run_id, stopped_at=end.stopped_at, status=end.status,
                                 counters=end.counters)
        store.close()
