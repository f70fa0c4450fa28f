"""What a notebook reads of a running collector: its ticks, status, counters, store
and panel. A mixin of :class:`rtkit.collector.Collector`, apart so that the class
that starts and stops the threads stays about that."""

from __future__ import annotations

from typing import Any

import pandas as pd

from rtkit.runtime.counters import collector_stats
from rtkit.runtime.status import Status, shown_status
from rtkit.store import TickStore


class CollectorViews:
    """Read-only views over the collector's ring, pipeline, status and database."""

    # set by the collector this is part of
    ring: Any
    pipeline: Any
    writer: Any
    receiver: Any
    sink: Any
    hooks: Any
    name: str
    db: Any
    _machine: Any
    _stop: Any
    _last_error: Any
    running: Any

    @property
    def df(self) -> pd.DataFrame:
        """A fresh DataFrame of every tick in the ring, oldest first."""
        return self.ring.snapshot()

    def tail(self, n: int = 10) -> pd.DataFrame:
        """The newest ``n`` ticks."""
        return self.ring.tail(n)

    @property
    def status(self) -> Status:
        """One of ``rtkit.runtime.status.STATES``; ``.status.reason`` tells why.

        ``storage_error``: collection goes on but the database refuses writes (locked,
        full, gone); ticks wait in memory and the write is retried until it works or
        ``stop()``, which then ends ``failed`` with the number of ticks not written."""
        p = self.pipeline
        return shown_status(self._machine.current, stop_requested=self._stop.is_set(),
                            running=self.running, verdict=self.writer.verdict,
                            storage_problem=self.writer.problem, pending=p.pending,
                            dropped_overflow=p.dropped_overflow)

    @property
    def stats(self) -> dict:
        """Counters as a plain dict (same keys as ``rtkit replay --json`` and more)."""
        stats = collector_stats(self)
        backfiller = getattr(self, "backfiller", None)
        if backfiller is not None:  # gaps waiting for a retry, the last problem
            stats.update(backfiller.snapshot())
        if self.hooks:
            stats["hooks"] = self.hooks.stats()
        return stats

    @property
    def last_error(self) -> str:
        """The newest problem, in words, without the URL's secrets."""
        return self._last_error.text

    reconnects = property(lambda self: self.receiver.reconnects)
    connections = property(lambda self: self.receiver.connections)
    flush_failures = property(lambda self: self.writer.flush_failures)
    stopped_at_ns = property(lambda self: self.writer.stopped_at_ns)

    def store(self) -> TickStore:
        """A read-only view of this collector's database (for the notebook thread)."""
        return self.sink.reader()

    def __repr__(self) -> str:
        p = self.pipeline
        return (f"<Collector {self.name} {self.status!r}: {p.ticks:,} ticks, {p.stored:,} stored, "
                f"{p.rejected:,} rejected → {self.db}>")
