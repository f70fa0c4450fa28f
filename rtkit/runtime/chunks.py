"""Reading one connection's chunk: frames split, recorded, counted, controls acted on.

A mixin of :class:`rtkit.runtime.receiver.Receiver` (the hot path of its loop),
apart so that the class that connects, backs off and watches stays about that.
"""

from __future__ import annotations

import ssl
import time
from typing import Any

import websocket

from rtkit.pipeline import quote
from rtkit.recording import RecordingWriter
from rtkit.runtime.connections import RECV_TIMEOUT_S, Conn, ConnectionSet
from rtkit.wsframes import BINARY, CLOSE, PING, TEXT, TOO_LARGE, Oversized

#: pending ticks that wake the writer before its interval is up. Each flush costs the
#: receive thread some GIL time; few large flushes measured a lower p99 receive
#: latency at 20k frames/s (0.2-0.8 ms) than many small ones (5k: 2.3-2.6 ms)
FLUSH_BATCH = 50_000
#: a pause of the feed this long, with ticks the writer was not woken for, wakes it:
#: a burst is on disk as soon as it ends, not up to an interval later, and the writer
#: works while the receive thread has nothing to do (issue 17)
IDLE_FLUSH_S = 0.02
#: unwritten ticks from which a pause wakes the writer: fewer wait for the interval, as
#: a trickle feed pauses after every frame (a flush each wrote a transaction and, with a
#: lake, a Parquet file per symbol for every trade: 30 files/s at 30 trades/s, not 1)
IDLE_FLUSH_MIN_TICKS = 500
#: bytes asked of the socket per read: hundreds of trade frames at a time
RECV_BYTES = 1 << 18


class ChunkReader(ConnectionSet):
    """``_read_chunk``: what one connection has, through the pipeline."""

    # set by the receiver this is part of
    pipeline: Any
    venue: str
    handover: bool
    _flush_mark: int
    _woken_at: int  # pipeline.queued when the writer was last woken from here
    _flush_now: Any

    def _read_chunk(self, conn: Conn, conns: list[Conn],
                    recorder: RecordingWriter | None) -> bool:
        """Read and handle what one connection has; True when it ended."""
        pipeline, venue = self.pipeline, self.venue
        sock = conn.sock
        if sock is None:
            raise websocket.WebSocketConnectionClosedException("socket closed")
        # ticks the writer was not woken for: a short read, and a pause wakes it (the
        # timeout is put back at once: a pong or a subscribe sent on this socket may
        # block longer than a pause lasts)
        waiting = self._burst_waiting()
        if waiting:
            sock.settimeout(IDLE_FLUSH_S)
        try:
            chunk = sock.recv(RECV_BYTES)
        except TimeoutError:
            if waiting:
                self._wake_writer()
            return False
        finally:
            if waiting:
                sock.settimeout(RECV_TIMEOUT_S)
        if chunk and isinstance(sock, ssl.SSLSocket):
            chunk = more_records(sock, chunk, conn)
        if not chunk:  # b"": the peer closed the TCP connection
            raise websocket.WebSocketConnectionClosedException("connection closed by peer")
        conn.last_data = time.monotonic_ns()
        now = time.time_ns()
        messages = conn.reader.feed(chunk)
        texts = [p for op, p in messages if op == TEXT]
        if recorder:
            for opcode, payload in messages:
                if opcode in (TEXT, BINARY):
                    recorder.frame(now, venue, payload, opcode == BINARY, conn.number)
                elif opcode == TOO_LARGE:
                    recorder.too_large(now, venue, payload, oversized_size(payload))
        end = handover = False
        if texts:
            pipeline.dup_watch = self._watch(conn, conns)
            pipeline.feeding_connection = conn.number or None  # its books' one source
            if conn.number and (reading := getattr(self.adapter, "reading_connection",
                                                   None)) is not None:
                reading(conn.number)  # Coinbase numbers each connection's frames
            try:
                controls = pipeline.process_frames(texts, now)
            finally:
                pipeline.dup_watch = pipeline.feeding_connection = None
            conn.got_data = True
            for control in controls:
                action = self._on_control(control)
                end = end or action == "end"
                handover = handover or action == "handover"
            if pipeline.books is not None:  # snapshots taken in, resubscribes sent
                self._send_book_frames(conns, now, conn)
        pings = []  # answered after the loop: a pong that fails (the peer gone)
        # must not cost the frames after the ping in this read their count
        if len(texts) < len(messages):
            for opcode, payload in messages:
                if opcode == BINARY:
                    pipeline.process(payload, now, True)
                elif opcode == PING:
                    pings.append(payload)
                elif opcode == CLOSE:
                    code = (int.from_bytes(payload[:2], "big") if len(payload) >= 2
                            else None)
                    reason = payload[2:].decode("utf-8", "replace")
                    self._error(f"venue closed the connection (code {code} "
                                f"{quote(reason)})")
                    end = True
                elif opcode == TOO_LARGE:
                    pipeline.reject_oversized(payload, oversized_size(payload), now)
        if pipeline.queued >= self._flush_mark:
            self._wake_writer()
        for payload in pings:
            conn.ws.pong(payload)
        if conn.reader.error is not None:  # the frames before it were counted above
            raise conn.reader.error
        if conn.failed is not None:  # met by the TLS read-ahead, after those frames
            raise conn.failed
        asked = False
        if handover and not end:
            if self.handover and conn.successor is None:
                conn.handover_at = 0  # due now: its successor is opened just below
                asked = True
            elif not self.handover:
                end = True
        if asked or conn.predecessor is not None or conn.successor is not None:
            # at once, not at the loop's next look at its clocks: that may come after a
            # blocking read times out, later than the venue's notice lasts; a handover
            # ended here also lets the successor's own pending notice open its successor
            self._handovers(conns, recorder, time.monotonic_ns())
        return end  # only now: every frame of the chunk was counted first

    def _burst_waiting(self) -> bool:
        """Ticks came since the writer was last woken, and enough are unwritten that a
        pause of the feed is the end of a burst worth a flush of its own."""
        pipeline = self.pipeline
        return (pipeline.queued > self._woken_at
                and pipeline.pending >= IDLE_FLUSH_MIN_TICKS)

    def _wake_writer(self) -> None:
        """Have the writer flush now: FLUSH_BATCH more ticks came, or the feed paused."""
        queued = self.pipeline.queued
        self._woken_at = queued
        self._flush_mark = queued + FLUSH_BATCH
        self._flush_now.set()


def more_records(sock: ssl.SSLSocket, chunk: bytes, conn: Conn | None = None) -> bytes:
    """``chunk`` and the TLS records that have arrived after it, up to RECV_BYTES.

    A TLS read returns one record (16 KiB at most, ~90 trade frames) where a plain
    read returns all that has come: without this, a wss:// feed pays the per-read
    costs fifteen times as often. Only what is there now is read (a record still
    arriving is left for the next read); the end of the stream is left for it too. An
    error is kept in ``conn.failed``, raised after the frames before it are counted."""
    parts, size = [chunk], len(chunk)
    sock.setblocking(False)
    try:
        while size < RECV_BYTES:
            try:
                more = sock.recv(RECV_BYTES - size)
            except (ssl.SSLWantReadError, ssl.SSLWantWriteError, BlockingIOError):
                break  # nothing more now
            except OSError as exc:  # an error: raised once what came before it is counted
                if conn is not None:  # (the TLS layer would only say the end of the
                    conn.failed = exc  # stream at the next read)
                break
            if not more:  # closed: the next read says so
                break
            parts.append(more)
            size += len(more)
        else:  # the cap cut a record: its rest is decrypted inside the TLS layer, where
            # the poll of several connections (select) cannot see it; it comes now
            if left := sock.pending():
                parts.append(sock.recv(left))
    finally:
        sock.settimeout(RECV_TIMEOUT_S)
    return b"".join(parts) if len(parts) > 1 else chunk


def oversized_size(payload: bytes) -> int:
    """The whole size of an oversized message (its payload is only its first bytes)."""
    return payload.size if isinstance(payload, Oversized) else len(payload)
