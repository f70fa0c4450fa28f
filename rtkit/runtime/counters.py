"""``Collector.stats``: the pipeline's counters with the threads' beside them."""

from __future__ import annotations

import time


def collector_stats(collector) -> dict:
    """The pipeline's counters (the keys of ``rtkit replay --json``), then the
    connection's, the writer's, the rates over the newest flushes and the ring's size."""
    pipeline, receiver, writer = collector.pipeline, collector.receiver, collector.writer
    out = pipeline.stats()
    now = time.monotonic()
    fps = tps = 0.0
    rates = writer.rates
    if rates:
        t0, f0, k0 = rates[0]
        if now - t0 > 0.2:
            fps = (out["frames"] - f0) / (now - t0)
            tps = (out["ticks"] - k0) / (now - t0)
    last = pipeline.last_frame_ns
    status = collector.status
    recorder = receiver.recorder
    out.update(
        reconnects=receiver.reconnects,
        connections=receiver.connections,
        handovers=receiver.handovers,
        status=str(status),
        status_reason=status.reason,
        last_error=collector.last_error,
        flush_failures=writer.flush_failures,
        sqlite_writer=_sqlite_writer(collector.sink),
        venue_error=collector.redact(pipeline.last_venue_error),
        refused_symbols=list(receiver.refused),
        recording_error=recorder.failed if recorder else None,
        frames_per_s=round(fps, 1),
        ticks_per_s=round(tps, 1),
        last_message_age_s=round((time.time_ns() - last) / 1e9, 3) if last else None,
        ring_rows=len(collector.ring),
        completeness=_completeness(pipeline, out),
    )
    return out


def _sqlite_writer(sink) -> str:
    """Where SQLite is written now: "process" (a writer process has taken over),
    "starting" (one is starting; the thread writes meanwhile) or "thread"."""
    return getattr(sink, "writing_in", "thread")


def _completeness(pipeline, stats: dict) -> float | None:
    """Trades kept / trades the ids say existed (None where the venue's ids cannot say)."""
    if pipeline.gap_detector is None:
        return None
    kept = stats["ticks"] - pipeline.duplicates_seen
    return round(kept / max(1, kept + stats["missing_trades"] - stats["backfilled"]), 6)
