"""The receive thread: the WebSocket, from connect to drop, again and again.

It owns the socket (websocket-client's ``WebSocket``, driven by this loop so
reconnects, backoff, keep-alives and the no-data watchdog are ours) and feeds
every frame through the pipeline. A connection that ends is retried after an
exponential, jittered backoff; a venue that keeps refusing the subscription
ends the collector ``failed``.
"""

from __future__ import annotations

import contextlib
import logging
import random
import select
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import websocket

from rtkit.pipeline import Pipeline, quote
from rtkit.recording import LastCloses, RecordingWriter
from rtkit.runtime.chunks import FLUSH_BATCH, IDLE_FLUSH_S, ChunkReader
from rtkit.runtime.connections import RECV_TIMEOUT_S, Conn
from rtkit.runtime.status import LastError, StatusMachine
from rtkit.venues import Adapter
from rtkit.wsframes import (
    ProtocolError,
)

log = logging.getLogger("rtkit")

#: connections in a row that end with a venue error and no tick before giving up
MAX_FUTILE_CONNECTIONS = 3


class Receiver(ChunkReader):
    """The loop of the receive thread, and its connection counters."""

    def __init__(self, adapter: Adapter, pipeline: Pipeline, *, url: str, symbols: list[str],
                 status: StatusMachine, last_error: LastError, stop: threading.Event,
                 flush_now: threading.Event, stale_after_s: float, backoff_initial_s: float,
                 backoff_max_s: float, connect_timeout_s: float, sslopt: dict | None,
                 record_raw: Path | None, name: str, redundancy: int = 1,
                 handover: bool = True) -> None:
        self.adapter, self.pipeline = adapter, pipeline
        self.venue = adapter.name
        self.url, self.symbols, self.name = url, symbols, name
        self.status, self.last_error = status, last_error
        self._stop, self._flush_now = stop, flush_now
        self.stale_after_s = stale_after_s
        self.backoff_initial_s, self.backoff_max_s = backoff_initial_s, backoff_max_s
        self.connect_timeout_s, self.sslopt = connect_timeout_s, sslopt
        self.record_raw = record_raw
        self.recorder: RecordingWriter | None = None
        #: closes the recording once every thread writing it is done (two with backfill)
        self.closing = LastCloses()
        self.reconnects = 0
        self.connections = 0
        #: connections kept on the same streams (``redundancy=2``: each trade kept once)
        self.redundancy = redundancy
        #: make-before-break where the venue announces or schedules a connection's end
        self.handover = handover
        #: the venue's connection lifetime (Binance closes after 24 h), or None
        self.lifetime_s: float | None = getattr(adapter, "connection_lifetime_s", None)
        #: handovers completed (an old connection closed after its successor took over)
        self.handovers = 0
        self._sockets: list[websocket.WebSocket] = []  # open or opening, for abort()
        self._flush_mark = self._woken_at = 0
        self._futile = 0
        self._venue_errors = 0
        #: symbols the venue refused (named in its error) → its message, in order
        self.refused: dict[str, str] = {}
        self._refused_here: set[str] = set()  # on this connection
        #: run on this thread before the first connect (the collector's contract values,
        #: rtkit.instruments.ContractSetup): returns why the collector cannot start, or ""
        self.before_connect: Callable[[RecordingWriter | None], str] | None = None

    def abort(self) -> None:
        """Cut the sockets now (from ``stop()``): a blocked read or connect returns."""
        for ws in list(self._sockets):
            if ws.sock is not None:
                with contextlib.suppress(OSError):
                    ws.sock.shutdown(socket.SHUT_RDWR)

    def run(self) -> None:
        recorder = None
        try:
            if self.record_raw:
                recorder = self.recorder = RecordingWriter(self.record_raw, self.pipeline.books)
            if self.before_connect is not None:
                self.status.move("connecting", "learning the contract values first")
                if problem := self.before_connect(recorder):
                    self._error(problem)
                    self.status.move("failed", problem)
                    return
            attempt = 0
            while not self._stop.is_set():
                got_ticks = self._session(recorder)
                if self._stop.is_set():
                    break
                attempt = 0 if got_ticks else attempt + 1
                if self._futile >= MAX_FUTILE_CONNECTIONS:
                    self.status.move("failed", "venue keeps refusing the subscription: "
                                     f"{self.pipeline.last_venue_error}")
                    break
                self.reconnects += 1
                delay = self._backoff(attempt)
                self.status.move("backoff", f"retry in {delay:.1f}s after: {self.last_error.text}")
                self._stop.wait(delay)
        except Exception as exc:  # a bug: say so in .status instead of dying silently
            log.exception("rtkit: receive thread of %s failed", self.name)
            self.status.move("failed", f"{type(exc).__name__}: {exc}")
        finally:
            self.pipeline.release_held_gaps(force=True)  # the run is over: nothing more comes
            self.closing.done(recorder)
            self._flush_now.set()

    def _backoff(self, attempt: int) -> float:
        delay = min(self.backoff_max_s, self.backoff_initial_s * 2 ** min(attempt, 16))
        return delay * random.uniform(0.5, 1.0)

    def _error(self, message: str) -> None:
        self.last_error.report(message)

    def _session(self, recorder: RecordingWriter | None) -> bool:
        """From a connect until every connection is gone (a make-before-break handover
        or a redundant connection keeps it going); returns whether it carried ticks."""
        pipeline = self.pipeline
        ticks_before = pipeline.ticks
        self._venue_errors = 0
        self._refused_here.clear()
        self.status.move("connecting", self.url)
        conns: list[Conn] = []
        close_code = 1000  # normal closure
        try:
            self._open(conns, recorder)
            if not self._stop.is_set():
                self.status.move("live", self._refused_reason())
                self._serve(conns, recorder)
        except (websocket.WebSocketException, OSError, ProtocolError) as exc:
            if isinstance(exc, ProtocolError):
                close_code = 1002  # RFC 6455: fail the connection, saying why
            if not self._stop.is_set():
                self._error(f"connection lost: {type(exc).__name__}: {quote(str(exc))}" if conns
                            else _unreachable(self.url, exc))
        finally:
            for conn in conns:
                self._end(conn, recorder, close_code)
        got_ticks = pipeline.ticks > ticks_before
        self._futile = 0 if got_ticks or not self._venue_errors else self._futile + 1
        return got_ticks

    def _read_frames(self, ws: websocket.WebSocket, recorder: RecordingWriter | None) -> None:
        """Serve one connection alone (see ``_serve``); raises when it drops."""
        conn = Conn(ws, None, self.pipeline.max_frame_bytes)
        conn.counted = False
        self._serve([conn], recorder)

    def _serve(self, conns: list[Conn], recorder: RecordingWriter | None) -> None:
        """The hot loop: read the sockets in large chunks, split frames, feed the pipeline.

        One connection is read with a blocking ``recv``; during a make-before-break
        handover, or with ``redundancy`` > 1, the sockets are polled with ``select``.
        Returns when the last connection ends (the venue closes it, asks to reconnect
        without a handover, goes silent) or on stop; raises when the last one drops.
        """
        stale_ns = int(self.stale_after_s * 1e9)
        next_check = time.monotonic_ns()
        self._flush_mark = self.pipeline.queued + FLUSH_BATCH
        self._woken_at = self.pipeline.queued
        lane_attempt, reopen_at = 0, next_check
        while conns:
            if len(conns) == 1:
                ready = conns[:]  # a copy: a notice read opens a successor into conns
            else:
                socks = [c.sock for c in conns if c.sock is not None]
                waiting = self._burst_waiting()
                readable = set(select.select(
                    socks, [], [], IDLE_FLUSH_S if waiting else RECV_TIMEOUT_S)[0])
                ready = [c for c in conns if c.sock in readable]
                if waiting and not ready:  # the feed paused: the writer flushes meanwhile
                    self._wake_writer()
            for conn in ready:
                try:
                    ended = self._read_chunk(conn, conns, recorder)
                except (websocket.WebSocketException, OSError, ProtocolError) as exc:
                    if len(conns) == 1 or self._stop.is_set():
                        raise
                    self._error(f"connection lost: {type(exc).__name__}: {quote(str(exc))}")
                    ended = True
                if ended:
                    conns.remove(conn)
                    self._end(conn, recorder)
                    if not conns:
                        return
                    reopen_at = time.monotonic_ns() + int(self._backoff(lane_attempt) * 1e9)
                    next_check = 0  # a successor announced to end while this one lived:
                    # its own successor opens now, not after a blocking read times out
            tick = time.monotonic_ns()
            if tick < next_check:
                continue
            next_check = tick + 250_000_000
            for conn in conns:  # a handover due sooner is started on time
                if conn.handover_at is not None and self.handover and conn.successor is None \
                        and conn.predecessor is None:
                    next_check = min(next_check, max(conn.handover_at, tick + 10_000_000))
            if self._stop.is_set():
                return
            for conn in list(conns):
                if tick - conn.last_data > stale_ns:
                    if len(conns) == 1:
                        self.status.move("stale", f"no data for {self.stale_after_s:g}s")
                    self._error(f"no data for {self.stale_after_s:g}s; reconnecting")
                    conns.remove(conn)
                    self._end(conn, recorder)
                    if not conns:
                        return
            if self.status.current != "live":
                self.status.move("live", self._refused_reason())
            # a gap held for another connection (redundancy, a handover's overlap) is
            # written on time even when no frame comes after it
            self.pipeline.release_held_gaps()
            if self.pipeline.books is not None:  # on the newest connection, or the book's
                self._send_book_frames(conns, time.time_ns(), conns[-1])
            self._keep_alive(conns, tick)
            self._handovers(conns, recorder, tick)
            if len(conns) < self.redundancy and tick >= reopen_at:
                try:
                    self._open(conns, recorder)
                    lane_attempt = 0
                except (websocket.WebSocketException, OSError, ProtocolError) as exc:
                    self._error(f"redundant connection: {type(exc).__name__}: {quote(str(exc))}")
                    lane_attempt += 1
                    reopen_at = tick + int(self._backoff(lane_attempt) * 1e9)


def _unreachable(url: str, exc: BaseException) -> str:
    """Why a connection never opened, in words: not to be confused with one that was lost."""
    host = urlsplit(url).hostname or url
    causes = [exc, exc.__cause__, exc.__context__, *getattr(exc, "args", ())]
    kinds: list[tuple[type | tuple[type, ...], str]] = [
        (socket.gaierror, "name not resolved (no network, or a wrong host?)"),
        (ConnectionRefusedError, "connection refused"),
        ((TimeoutError, websocket.WebSocketTimeoutException), "timed out"),
    ]
    for kind, why in kinds:
        cause = next((c for c in causes if isinstance(c, kind)), None)
        if cause is not None:
            return f"cannot reach {host}: {why} ({type(cause).__name__}: {quote(str(cause))})"
    return f"cannot reach {host}: {type(exc).__name__}: {quote(str(exc))}"
