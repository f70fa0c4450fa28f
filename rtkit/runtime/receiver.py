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
import socket
import threading
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import urlsplit

import websocket

from rtkit.pipeline import Pipeline, quote
from rtkit.recording import RecordingWriter
from rtkit.runtime.refusals import symbols_named
from rtkit.runtime.status import LastError, StatusMachine
from rtkit.venues import Adapter
from rtkit.wsconnect import open_websocket
from rtkit.wsframes import (
    BINARY,
    CLOSE,
    PING,
    TEXT,
    TOO_LARGE,
    FrameReader,
    Oversized,
    ProtocolError,
)

log = logging.getLogger("rtkit")

#: pending ticks that wake the writer before its interval is up. Each flush costs the
#: receive thread some GIL time; few large flushes measured a lower p99 receive
#: latency at 20k frames/s (0.2-0.8 ms) than many small ones (5k: 2.3-2.6 ms)
FLUSH_BATCH = 50_000
#: how long the receive socket blocks before the loop looks at its clocks
RECV_TIMEOUT_S = 0.5
#: bytes asked of the socket per read: hundreds of trade frames at a time
RECV_BYTES = 1 << 18
#: connections in a row that end with a venue error and no tick before giving up
MAX_FUTILE_CONNECTIONS = 3


class Receiver:
    """The loop of the receive thread, and its connection counters."""

    def __init__(self, adapter: Adapter, pipeline: Pipeline, *, url: str, symbols: list[str],
                 status: StatusMachine, last_error: LastError, stop: threading.Event,
                 flush_now: threading.Event, stale_after_s: float, backoff_initial_s: float,
                 backoff_max_s: float, connect_timeout_s: float, sslopt: dict | None,
                 record_raw: Path | None, name: str) -> None:
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
        self.reconnects = 0
        self.connections = 0
        self._ws: websocket.WebSocket | None = None
        self._futile = 0
        self._venue_errors = 0
        #: symbols the venue refused (named in its error) → its message, in order
        self.refused: dict[str, str] = {}
        self._refused_here: set[str] = set()  # on this connection
        #: run on this thread before the first connect (the collector's contract values,
        #: rtkit.instruments.ContractSetup): returns why the collector cannot start, or ""
        self.before_connect: Callable[[RecordingWriter | None], str] | None = None

    def abort(self) -> None:
        """Cut the socket now (from ``stop()``): a blocked read or connect returns."""
        ws = self._ws
        if ws is not None and ws.sock is not None:
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
                delay = min(self.backoff_max_s, self.backoff_initial_s * 2 ** min(attempt, 16))
                delay *= random.uniform(0.5, 1.0)
                self.status.move("backoff", f"retry in {delay:.1f}s after: {self.last_error.text}")
                self._stop.wait(delay)
        except Exception as exc:  # a bug: say so in .status instead of dying silently
            log.exception("rtkit: receive thread of %s failed", self.name)
            self.status.move("failed", f"{type(exc).__name__}: {exc}")
        finally:
            if recorder is not None:
                recorder.close()
            self._flush_now.set()

    def _error(self, message: str) -> None:
        self.last_error.report(message)

    def _session(self, recorder: RecordingWriter | None) -> bool:
        """One connection from connect to drop; returns whether it carried ticks."""
        pipeline = self.pipeline
        ticks_before = pipeline.ticks
        self._venue_errors = 0
        self._refused_here.clear()
        self.status.move("connecting", self.url)
        ws = websocket.WebSocket(skip_utf8_validation=True, sslopt=self.sslopt)
        self._ws = ws
        close_code = 1000  # normal closure
        opened = False
        try:
            open_websocket(ws, self.url, self.connect_timeout_s)
            opened = True
            if self._stop.is_set():
                return False
            self.connections += 1
            now = time.time_ns()
            pipeline.connection_opened(now)
            if recorder:
                recorder.event("open", now, self.venue, self.symbols)
            for message in self.adapter.subscribe_messages(self.symbols):
                ws.send(message)
            if ws.sock is None:  # closed under us (stop() cut it)
                raise websocket.WebSocketConnectionClosedException("socket closed")
            ws.sock.settimeout(RECV_TIMEOUT_S)
            self.status.move("live", self._refused_reason())
            self._read_frames(ws, recorder)
        except (websocket.WebSocketException, OSError, ProtocolError) as exc:
            if isinstance(exc, ProtocolError):
                close_code = 1002  # RFC 6455: fail the connection, saying why
            if not self._stop.is_set():
                self._error(f"connection lost: {type(exc).__name__}: {quote(str(exc))}" if opened
                            else _unreachable(self.url, exc))
        finally:
            self._ws = None
            # our close frame, then the socket is cut without waiting for the server's:
            # websocket-client's close() would read on with its own parser, which waits
            # for a frame's whole payload however long the server streams it
            with contextlib.suppress(Exception):
                if not self._stop.is_set() and ws.connected:
                    ws.send_close(close_code)
            with contextlib.suppress(Exception):
                ws.shutdown()
            if recorder:
                recorder.event("close", time.time_ns(), self.venue)
        got_ticks = pipeline.ticks > ticks_before
        self._futile = 0 if got_ticks or not self._venue_errors else self._futile + 1
        return got_ticks

    def _read_frames(self, ws: websocket.WebSocket, recorder: RecordingWriter | None) -> None:
        """The hot loop: read the socket in large chunks, split frames, feed the pipeline.

        Returns when the venue closes, asks to reconnect, goes silent, or on stop;
        raises on a dropped connection.
        """
        pipeline, venue, adapter = self.pipeline, self.venue, self.adapter
        sock = ws.sock
        if sock is None:
            raise websocket.WebSocketConnectionClosedException("socket closed")
        reader = FrameReader(pipeline.max_frame_bytes)
        feed, recv = reader.feed, sock.recv
        process, process_frames = pipeline.process, pipeline.process_frames
        books = pipeline.books is not None  # snapshots to take in, resubscribes to send
        ping_every_ns = int((adapter.ping_interval_s or 0) * 1e9)
        stale_ns = int(self.stale_after_s * 1e9)
        # timers run on the monotonic clock (a wall-clock step must not fake silence
        # or stop the pings); the wall clock only stamps received_at
        last_data = next_check = time.monotonic_ns()
        next_ping = last_data + ping_every_ns
        flush_mark = pipeline.queued + FLUSH_BATCH
        while True:
            try:
                chunk = recv(RECV_BYTES)
            except TimeoutError:
                chunk = None
            tick = time.monotonic_ns()
            if chunk:
                last_data = tick
                now = time.time_ns()
                messages = feed(chunk)
                texts = [p for op, p in messages if op == TEXT]
                if recorder:
                    for opcode, payload in messages:
                        if opcode in (TEXT, BINARY):
                            recorder.frame(now, venue, payload, opcode == BINARY)
                        elif opcode == TOO_LARGE:
                            recorder.too_large(now, venue, payload, _size(payload))
                reconnect = False
                if texts:
                    for control in process_frames(texts, now):
                        reconnect = self._on_control(control) or reconnect
                    if books:
                        for frame in pipeline.book_tick(now):
                            ws.send(frame)
                pings = []  # answered after the loop: a pong that fails (the peer gone)
                # must not cost the frames after the ping in this read their count
                if len(texts) < len(messages):
                    for opcode, payload in messages:
                        if opcode == BINARY:
                            process(payload, now, True)
                        elif opcode == PING:
                            pings.append(payload)
                        elif opcode == CLOSE:
                            code = (int.from_bytes(payload[:2], "big") if len(payload) >= 2
                                    else None)
                            reason = payload[2:].decode("utf-8", "replace")
                            self._error(f"venue closed the connection (code {code} "
                                        f"{quote(reason)})")
                            reconnect = True
                        elif opcode == TOO_LARGE:
                            pipeline.reject_oversized(payload, _size(payload), now)
                if pipeline.queued >= flush_mark:
                    flush_mark = pipeline.queued + FLUSH_BATCH
                    self._flush_now.set()
                for payload in pings:
                    ws.pong(payload)
                if reader.error is not None:  # the frames before it were counted above
                    raise reader.error
                if reconnect:  # only now: every frame of the chunk was counted first
                    return
            elif chunk is not None:  # b"": the peer closed the TCP connection
                raise websocket.WebSocketConnectionClosedException("connection closed by peer")
            if tick >= next_check:
                next_check = tick + 250_000_000
                if self._stop.is_set():
                    return
                if tick - last_data > stale_ns:
                    self.status.move("stale", f"no data for {self.stale_after_s:g}s")
                    self._error(f"no data for {self.stale_after_s:g}s; reconnecting")
                    return
                if self.status.current != "live":
                    self.status.move("live", self._refused_reason())
                if books:
                    for frame in pipeline.book_tick(time.time_ns()):
                        ws.send(frame)
                if ping_every_ns and tick >= next_ping:
                    next_ping = tick + ping_every_ns
                    message = adapter.ping_message()
                    if message:
                        ws.send(message)

    def _on_control(self, control) -> bool:
        """React to a venue's control message; True means reconnect now."""
        if control.kind == "error":
            self._venue_errors += 1
            self._error(f"venue error: {quote(control.detail)}")
            named = symbols_named(self.adapter, self.symbols, control.detail)
            for symbol in named:
                self.refused[symbol] = control.detail
            self._refused_here.update(named)
            if named and len(self._refused_here) == len(self.symbols):
                # every symbol refused on this connection, each error read: nothing more
                # will come, so end it now and MAX_FUTILE_CONNECTIONS ends the collector
                # in seconds, not after three no-data timeouts
                self.status.move("live", self._refused_reason())
                return True
            self.status.move("live", self._refused_reason() if named
                             else f"venue error: {quote(control.detail)}")
        elif control.kind == "reconnect":
            self.last_error.set(f"venue asked to reconnect: {quote(control.detail)}")
            return True
        return False


    def _refused_reason(self) -> str:
        """``venue refused FOO-BAR: <message>; the rest are live`` ("" when none was)."""
        if not self.refused:
            return ""
        by_message: dict[str, list[str]] = {}
        for symbol, message in self.refused.items():
            by_message.setdefault(message, []).append(symbol)
        said = "; ".join(f"{', '.join(symbols)}: {quote(message)}"
                         for message, symbols in by_message.items())
        rest = ("no symbol is left" if len(self.refused) == len(self.symbols)
                else "the rest are live")
        return f"venue refused {said} ({rest})"


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


def _size(payload: bytes) -> int:
    """The whole size of an oversized message (its payload is only its first bytes)."""
    return payload.size if isinstance(payload, Oversized) else len(payload)
