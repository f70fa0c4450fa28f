"""The writer thread: pending rows into the sink every interval, through refusals.

It is the only user of the sink. Every ``flush_interval_s`` (sooner when the
receive thread says the batch is large) it takes what the pipeline has
pending and writes it in one go. While the sink refuses (busy, locked, full,
moved away) everything stays in memory, the refusal is what ``.status``
shows, and the write is retried with a pause that doubles up to
``RETRY_MAX_S``. Rows the sink refuses one by one are set aside and counted.
While a sink says it is ``starting`` (its writer process was asked to take the
run over and is not up yet), a flush asked early by the receive thread waits for
it, up to the interval, and goes as soon as it is up: the loss window stays the
interval, and the rows go where writing is cheapest. Once the child writes,
flushes follow one another while ticks come fast enough to keep it busy.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections import deque
from collections.abc import Callable

from rtkit.pipeline import Pipeline, quote
from rtkit.runtime.status import Status
from rtkit.runtime.writer_process import AUTO_FAST_WINDOWS, AUTO_ROWS_PER_S, AUTO_WINDOW_S
from rtkit.sinks import RunEnd, RunInfo, Sink, SinkRefused

log = logging.getLogger("rtkit")

#: pause after a refused write, doubled up to the maximum while refusals go on
RETRY_FIRST_S, RETRY_MAX_S = 0.1, 2.0
#: while the sink's writer process starts, how often the writer thread looks whether it
#: is up: the first flush goes to it at once, not at the receive thread's next ask (which
#: came 0.13 s after the child was up in a 200k-frame burst, issue 17)
STARTING_POLL_S = 0.01
#: ticks that came while a flush was written in the writer process, from which the next
#: flush goes at once: the child would wait idle for the next ask, and what is left to
#: write when a burst ends is what came during one short flush, not during a long one
BACK_TO_BACK_TICKS = 4096
#: the share of ``pending_limit`` from which a flush no longer waits for a starting writer
#: process: rows past the limit are dropped, and a wait of an interval must not cost any
WAIT_PENDING_SHARE = 0.5
#: the shortest time between two of the samples ``stats`` measures its rates over: flushes
#: that come every few ms (back to back, or flush_interval_s=0.01) would otherwise leave
#: the newest samples within 0.2 s, a rate ``stats`` shows as 0
RATE_SAMPLE_S = 0.05


class Writer:
    """The loop of the writer thread and what it knows about the sink's health."""

    def __init__(self, pipeline: Pipeline, sink: Sink, *, name: str, flush_interval_s: float,
                 stop: threading.Event, flush_now: threading.Event,
                 receiving: Callable[[], bool], run_info: Callable[[], RunInfo],
                 run_end: Callable[[], tuple[str, dict]],
                 report: Callable[[str], None]) -> None:
        self.pipeline = pipeline
        self.sink = sink
        self.name = name
        self.flush_interval_s = flush_interval_s
        self._stop, self._flush_now = stop, flush_now
        self._receiving, self._run_info, self._run_end = receiving, run_info, run_end
        self._report = report  # the collector's last_error
        self.flush_failures = 0
        self.problem = ""  # what the sink said, while it refuses writes
        self.verdict: Status | None = None  # the writer's final word, when it failed
        self.stopped_at_ns: int | None = None
        #: (monotonic time, frames, ticks) at the newest flushes: the rates in ``stats``
        self.rates: deque[tuple[float, int, int]] = deque(maxlen=11)
        self._refused_tables: set[str] = set()  # tables whose refused rows were logged
        self._flushed_at = time.monotonic()  # the last flush (or the start)
        #: writer="auto": (rows seen, monotonic time) at the end of the last rate window,
        #: and how many windows in a row were fast
        self._window = (0, time.monotonic())
        self._fast_windows = 0

    def run(self) -> None:
        """Flush every interval until the receive thread has ended and all is written
        (or a stop was asked and the sink still refuses)."""
        sink = self.sink
        retry_s = RETRY_FIRST_S
        wait_s = self.flush_interval_s
        try:
            self._flushed_at = time.monotonic()
            self._window = (self._rows_seen(), self._flushed_at)
            self._open()
            while True:
                receiving = self._receiving()
                self._wait(wait_s if receiving else 0.05)
                self._flush_now.clear()
                self._sample_rates()
                moved = sink.check()
                if moved:
                    self._failed(moved)
                if not sink.is_open:
                    self._open()
                waits = sink.is_open and self._waits(receiving)
                ok = waits or (sink.is_open and self._flush())
                # a flush that waits is due when its interval is up, not an interval later
                wait_s = (max(0.0, self._flushed_at + self.flush_interval_s - time.monotonic())
                          if waits else 0.0 if ok and receiving and self._back_to_back()
                          else self.flush_interval_s)
                if not receiving and (ok or self._stop.is_set()):
                    break
                if ok:
                    retry_s = RETRY_FIRST_S
                else:
                    self._stop.wait(retry_s)
                    retry_s = min(retry_s * 2, RETRY_MAX_S)
        except Exception as exc:  # a bug: say so in .status instead of dying silently
            log.exception("rtkit: writer thread of %s failed", self.name)
            self.verdict = Status("failed", f"storage: {type(exc).__name__}: {exc}")
        finally:
            self._finish()

    def _sample_rates(self) -> None:
        """Where the counters stand now, for the rates in ``stats``: the newest samples,
        RATE_SAMPLE_S apart at least."""
        now = time.monotonic()
        if not self.rates or now - self.rates[-1][0] >= RATE_SAMPLE_S:
            self.rates.append((now, self.pipeline.frames, self.pipeline.ticks))

    def _wait(self, wait_s: float) -> None:
        """Wait ``wait_s`` or until the receive thread asks for a flush. A sink that starts
        a writer process on demand (writer="auto") is watched meanwhile: once rows have
        come at AUTO_ROWS_PER_S or faster for AUTO_FAST_WINDOWS windows in a row, it is
        told to start it."""
        if getattr(self.sink, "starting", False):
            self._wait_while_starting(wait_s)
            return
        start_child = getattr(self.sink, "start_child", None)
        if start_child is None or not getattr(self.sink, "undecided", False):
            self._flush_now.wait(wait_s)
            return
        deadline = time.monotonic() + wait_s
        while True:
            asked = self._flush_now.wait(max(0.0, min(deadline - time.monotonic(),
                                                      AUTO_WINDOW_S)))
            now = time.monotonic()
            if self._fast_for_long(now):
                start_child()
                return
            if asked or now >= deadline:
                return

    def _wait_while_starting(self, wait_s: float) -> None:
        """Wait ``wait_s``, or until the receive thread asks for a flush, or until the
        sink's writer process is up (it was asked to take over and has answered)."""
        deadline = time.monotonic() + wait_s
        while getattr(self.sink, "starting", False):
            left = deadline - time.monotonic()
            if left <= 0 or self._flush_now.wait(min(left, STARTING_POLL_S)):
                return

    def _back_to_back(self) -> bool:
        """Whether the next flush goes at once: the sink's writer process wrote the last
        one, and BACK_TO_BACK_TICKS or more came meanwhile."""
        return (getattr(self.sink, "in_child", False)
                and self.pipeline.pending >= BACK_TO_BACK_TICKS)

    def _fast_for_long(self, now: float) -> bool:
        """Whether the window that ends now (if it is one: AUTO_WINDOW_S at least) ends
        AUTO_FAST_WINDOWS fast ones in a row. A window runs from the end of the last one,
        across flushes and waits alike, so it measures the rate rows arrive at whatever
        the writer did meanwhile (a writer that falls behind still sees it), and one burst
        (a book's snapshot, a backfilled gap) fills one window, not the run."""
        rows, at = self._window
        if now - at < AUTO_WINDOW_S:  # a sliver of a window proves nothing: it goes on
            return False
        seen = self._rows_seen()
        fast = seen - rows >= AUTO_ROWS_PER_S * (now - at)
        self._window = (seen, now)
        self._fast_windows = self._fast_windows + 1 if fast else 0
        return self._fast_windows >= AUTO_FAST_WINDOWS

    def _rows_seen(self) -> int:
        """Trades queued for the sink (a repeat a second connection brought is not: it is
        not written) and rows of the other kinds received, so far."""
        pipeline = self.pipeline
        return pipeline.queued + sum(c.received for c in pipeline.records.counts.values())

    def _open(self) -> None:
        try:
            self.sink.open(self._run_info())
        except SinkRefused as exc:
            self._failed(str(exc))

    def _waits(self, receiving: bool) -> bool:
        """True when this flush waits for a sink that is starting: asked before the
        interval is up, while ticks still come, and not so many that some could be dropped."""
        return (receiving and time.monotonic() - self._flushed_at < self.flush_interval_s
                and not self._filling() and getattr(self.sink, "starting", False))

    def _filling(self) -> bool:
        """Whether so many rows wait (WAIT_PENDING_SHARE of ``pending_limit``) that waiting
        on could drop some."""
        pipeline = self.pipeline
        waiting = max(pipeline.pending, pipeline.records.most_pending())
        return waiting >= pipeline.pending_limit * WAIT_PENDING_SHARE

    def _flush(self) -> bool:
        """Write what is pending; False (and everything kept) when the sink refuses."""
        self._flushed_at = time.monotonic()
        pipeline = self.pipeline
        batch = pipeline.take()
        if any(batch):
            refused: list[tuple] = []
            try:
                inserted = self.sink.write(batch, refused)
            except Exception as exc:  # busy, locked, disk full, read-only: keep it all, retry
                pipeline.give_back()
                self._failed(f"{type(exc).__name__}: {exc}")
                return False
            if refused:  # rows the sink cannot store: counted, never retried
                batch = pipeline.set_aside(batch, refused)
                self._log_refused_rows(refused)
            pipeline.done(batch, inserted)
        if self.problem:
            log.warning("rtkit: %s: storage works again after %s", self.name, self.problem)
            self.problem = ""
        return True

    def _log_refused_rows(self, refused: list[tuple]) -> None:
        """Say once per table that the sink refused rows of it; the counts are in ``.stats``."""
        for table, _, error in refused:
            if table not in self._refused_tables:
                self._refused_tables.add(table)
                key = "unstorable" if table == "ticks" else f"{table}_unstorable"
                log.warning("rtkit: %s: SQLite refused a row of '%s' (%s); such rows are set "
                            "aside and counted in stats[%r], the rest is written", self.name,
                            table, quote(error), key)

    def _failed(self, text: str) -> None:
        """A write was refused: ``.status`` is ``storage_error`` until one works again."""
        if text != self.problem:
            log.warning("rtkit: %s: storage: %s; ticks are kept in memory and the write retried",
                        self.name, text)
        self.problem = text
        self.flush_failures += 1
        self._report(f"storage: {text}")

    def _finish(self) -> None:
        """Close the run; stopping with ticks the sink never took is a failure, with
        their number in the reason."""
        self.stopped_at_ns = time.time_ns()
        unwritten = self.pipeline.pending
        if unwritten and self.verdict is None:
            self.verdict = Status(
                "failed", f"stopped with {unwritten:,} ticks not written to "
                f"'{self.sink.where}': {self.problem}")
        end = None
        if self.sink.is_open:
            with contextlib.suppress(Exception):
                end = RunEnd(self.stopped_at_ns, *self._run_end())
        self.sink.close(end)
