"""Replay a raw-frame recording through the whole pipeline into SQLite.

The frames meet the same adapters, validation, ring and store as live ones,
so a replay reproduces a live run's ticks exactly and is how a venue's
parsing is checked against recorded traffic.
"""

from __future__ import annotations

from pathlib import Path

from rtkit.buffer import RingBuffer
from rtkit.pipeline import DEFAULT_MAX_FRAME_BYTES, Pipeline
from rtkit.recording import Event, read_recording
from rtkit.store import DEFAULT_DB, TickStore
from rtkit.validate import AnomalyFilter
from rtkit.venues import get_adapter

#: frames between two writes to SQLite during a replay
_FLUSH_EVERY_FRAMES = 50_000


def merge_stats(pipelines) -> dict:
    """Sum the counters of several pipelines (one per venue) into one summary."""
    total: dict = {}
    for p in pipelines:
        for key, value in p.stats().items():
            if isinstance(value, dict):
                bucket = total.setdefault(key, {})
                for k, v in value.items():
                    bucket[k] = bucket.get(k, 0) + v
            else:
                total[key] = total.get(key, 0) + value
    return total


class Replay:
    """Pipelines (one per venue in the file) feeding one ring and one store."""

    #: the store the frames go to (``rtkit.onchain.ChainReplay`` names its own)
    store_type: type[TickStore] = TickStore

    def __init__(self, db: str | Path = DEFAULT_DB, *, capacity: int = 1_000_000,
                 anomaly: AnomalyFilter | None = None, venue_options: dict | None = None,
                 max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES):
        self.store = self.store_type(db)
        self.max_frame_bytes = max_frame_bytes
        self.ring = RingBuffer(capacity)
        self.anomaly = anomaly
        self.venue_options = venue_options or {}
        self.pipelines: dict[str, Pipeline] = {}
        self.connections = 0

    def pipeline(self, venue: str) -> Pipeline:
        p = self.pipelines.get(venue)
        if p is None:
            adapter = get_adapter(venue, **self.venue_options.get(venue, {}))
            p = self.pipelines[venue] = Pipeline(adapter, self.ring, anomaly=self.anomaly,
                                                 max_frame_bytes=self.max_frame_bytes)
        return p

    def run(self, path: str | Path) -> dict:
        since_flush = 0
        for entry in read_recording(path):
            if type(entry) is Event:
                if entry.event == "open":
                    self.connections += 1
                    pipeline = self.pipeline(entry.venue)
                    pipeline.connection_opened(entry.received_at)
                    if entry.symbols:  # subscribe the adapter as the live one was
                        pipeline.adapter.subscribe_messages(list(entry.symbols))
                        pipeline.subscribe(entry.symbols)
                continue
            pipeline = self.pipeline(entry.venue)
            if entry.too_large:
                pipeline.reject_oversized(entry.frame, entry.too_large, entry.received_at)
            else:
                pipeline.process(entry.frame, entry.received_at, entry.binary)
            since_flush += 1
            if since_flush >= _FLUSH_EVERY_FRAMES:
                self.flush()
                since_flush = 0
        self.flush()
        return self.summary()

    def flush(self) -> None:
        for p in self.pipelines.values():
            batch = p.take()
            p.done(batch, self.store.write(*batch))

    def summary(self) -> dict:
        out = merge_stats(self.pipelines.values())
        out["venues"] = sorted(self.pipelines)
        out["connections"] = self.connections
        out["db"] = str(self.store.path)
        return out


def replay(path: str | Path, db: str | Path = DEFAULT_DB, *, capacity: int = 1_000_000,
           anomaly: AnomalyFilter | None = None, venue_options: dict | None = None,
           max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> dict:
    """Push every frame of a recording through the pipeline into ``db``; returns the summary.

    The summary has ``frames``, ``ticks``, ``stored``, ``duplicates``,
    ``rejected``, ``rejected_by_reason`` and ``control`` (plus the detail
    counters of :class:`rtkit.pipeline.Pipeline`). ``venue_options`` maps a venue
    to its adapter options and ``max_frame_bytes`` is the collector's limit, for a
    run recorded with other than the defaults.
    """
    r = Replay(db, capacity=capacity, anomaly=anomaly, venue_options=venue_options,
               max_frame_bytes=max_frame_bytes)
    try:
        return r.run(path)
    finally:
        r.store.close()
