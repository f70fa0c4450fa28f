"""The connections of the receive thread: opening and ending one, keep-alives, and the
make-before-break handover.

Where a venue announces the end of a connection (OKX's notice 64008, Bitstamp's
``bts:request_reconnect``) or schedules it (Binance closes every connection after
24 h: ``Adapter.connection_lifetime_s``), the receiver opens the successor first,
subscribes, and closes the old connection only once a trade was seen on both for
every symbol (or after ``HANDOVER_MAX_S``): the trades in between come twice and the
pipeline keeps each once, so the switch leaves no hole. ``redundancy=2`` keeps two
connections on the same streams all along, with the same deduplication. Books and
quotes are taken from one connection per symbol instead (``rtkit.books.sources``):
each connection has a number, the pipeline is told which one a read came from, and
which one ended (``Pipeline.connection_closed``), and a book's resubscribe goes out
on the connection that feeds it.
"""

from __future__ import annotations

import contextlib
import time
from typing import Any

import websocket

from rtkit.pipeline import Pipeline, quote
from rtkit.recording import RecordingWriter
from rtkit.runtime.refusals import symbols_named
from rtkit.runtime.status import LastError, StatusMachine
from rtkit.venues import Adapter
from rtkit.wsconnect import open_websocket
from rtkit.wsframes import FrameReader, ProtocolError

#: seconds the receive socket blocks before the loop looks at its clocks
RECV_TIMEOUT_S = 0.5
#: how long before a connection's scheduled end (its lifetime, e.g. Binance's 24 h) its
#: successor is opened, at most; a short lifetime starts it a third of it before
HANDOVER_LEAD_S = 30.0
#: longest the old and the new connection both run in a handover when no trade proves
#: their overlap (a symbol without trades): then the old one is closed anyway
HANDOVER_MAX_S = 10.0


class Conn:
    """One connection of the receiver: its socket, frame reader, clocks and handover."""

    def __init__(self, ws: websocket.WebSocket, lifetime_s: float | None,
                 max_frame_bytes: int) -> None:
        self.ws = ws
        self.sock = ws.sock
        self.reader = FrameReader(max_frame_bytes)
        now = time.monotonic_ns()
        self.last_data = self.next_ping = now
        self.counted = True  # pipeline.connection_opened was called for it
        self.got_data = False
        #: when the venue will end it (its lifetime), and when to open its successor
        self.ends_at: int | None = None
        self.handover_at: int | None = None
        if lifetime_s:
            self.ends_at = now + int(lifetime_s * 1e9)
            lead = min(HANDOVER_LEAD_S, lifetime_s / 3)
            self.handover_at = self.ends_at - int(lead * 1e9)
        self.successor: Conn | None = None
        self.predecessor: Conn | None = None
        self.handover_deadline = 0
        #: symbols a duplicate proved this connection to overlap its predecessor on
        self.overlapped: set[str] = set()
        #: the receiver's count of it (1: the first opened), which the books know it by
        self.number = 0
        #: an error the TLS read-ahead met after what it read: raised once that is counted
        self.failed: OSError | None = None



class ConnectionSet:
    """What the receiver does with its connections (a part of ``Receiver``)."""

    # set by the Receiver that this is part of
    adapter: Adapter
    pipeline: Pipeline
    venue: str
    url: str
    symbols: list[str]
    sslopt: dict | None
    connect_timeout_s: float
    lifetime_s: float | None
    connections: int
    handovers: int
    handover: bool
    refused: dict[str, str]
    status: StatusMachine
    last_error: LastError
    _venue_errors: int
    _refused_here: set[str]
    _sockets: list[websocket.WebSocket]
    _stop: Any

    def _error(self, message: str) -> None:
        raise NotImplementedError

    def _open(self, conns: list[Conn], recorder: RecordingWriter | None) -> Conn:
        """Connect and subscribe one more connection, appended to ``conns`` as soon as it
        is open (so that whoever holds ``conns`` ends it); raises if it fails."""
        ws = websocket.WebSocket(skip_utf8_validation=True, sslopt=self.sslopt)
        self._sockets.append(ws)
        try:
            open_websocket(ws, self.url, self.connect_timeout_s)
        except BaseException:
            self._sockets.remove(ws)
            raise
        self.connections += 1
        now = time.time_ns()
        self.pipeline.connection_opened(now, covered=bool(conns))
        conn = Conn(ws, self.lifetime_s, self.pipeline.max_frame_bytes)
        conn.number = self.connections
        conns.append(conn)
        self.pipeline.live_sources = len(conns)
        if recorder:
            recorder.event("open", now, self.venue, self.symbols, conn.number)
        if self._stop.is_set():
            return conn
        if (reading := getattr(self.adapter, "reading_connection", None)) is not None:
            reading(conn.number)  # a venue that numbers each connection's frames
        for message in self.adapter.subscribe_messages(self.symbols):
            ws.send(message)
        if ws.sock is None:  # closed under us (stop() cut it)
            raise websocket.WebSocketConnectionClosedException("socket closed")
        ws.sock.settimeout(RECV_TIMEOUT_S)
        conn.sock = ws.sock
        return conn

    def _end(self, conn: Conn, recorder: RecordingWriter | None, close_code: int = 1000) -> None:
        """Close one connection: our close frame, then the socket is cut without waiting
        for the server's (websocket-client's close() would read on with its own parser,
        which waits for a frame's whole payload however long the server streams it)."""
        ws = conn.ws
        if ws in self._sockets:
            self._sockets.remove(ws)
        handed_over = conn.successor is not None
        if handed_over:  # the successor was live before this end
            conn.successor.predecessor = None  # type: ignore[union-attr]
            conn.successor = None
            self.handovers += 1
        closed_at, stopping = time.time_ns(), self._stop.is_set()
        if conn.number and not stopping:  # its books move to the other connection
            self.pipeline.connection_closed(conn.number, closed_at, handed_over)
        if conn.counted:
            conn.counted = False
            self.pipeline.live_sources = max(1, self.pipeline.live_sources - 1)
        with contextlib.suppress(Exception):
            if not self._stop.is_set() and ws.connected:
                ws.send_close(close_code)
        with contextlib.suppress(Exception):
            ws.shutdown()
        if recorder:  # as the books were told: a replay moves them alike
            recorder.event("close", closed_at, self.venue, (), conn.number, handed_over,
                           stopping)

    def _watch(self, conn: Conn, conns: list[Conn]) -> set | None:
        """Where the pipeline notes the symbols of duplicates in this connection's frames
        during a handover: a trade seen on both connections proves their overlap."""
        if conn.predecessor is not None and conn.predecessor in conns:
            return conn.overlapped
        successor = conn.successor
        if successor is not None and successor.got_data:
            return successor.overlapped
        return None

    def _send_book_frames(self, conns: list[Conn], now: int, default: Conn) -> None:
        """The books' resubscribes, each on the connection that feeds its book
        (``default`` for a book without one)."""
        for number, frames in self.pipeline.book_sends(now).items():
            target = next((c for c in conns if c.number == number), default)
            for frame in frames:
                target.ws.send(frame)

    def _keep_alive(self, conns: list[Conn], tick: int) -> None:
        every = int((self.adapter.ping_interval_s or 0) * 1e9)
        if not every:
            return
        for conn in conns:
            if tick >= conn.next_ping:
                conn.next_ping = tick + every
                message = self.adapter.ping_message()
                if message:
                    conn.ws.send(message)

    def _handovers(self, conns: list[Conn], recorder: RecordingWriter | None, tick: int) -> None:
        """Make-before-break: open the successor of a connection whose end is near (the
        venue announced it, or its lifetime is running out), and close the old one once
        the two overlapped on every symbol (or HANDOVER_MAX_S passed)."""
        for conn in list(conns):
            successor = conn.successor
            if successor is not None:
                if successor not in conns:  # the successor died: try again soon
                    conn.successor = None
                    conn.handover_at = tick + int(1e9)
                    continue
                need = set(self.symbols) - set(self.refused)
                # the books too: the old one's unread updates must be in the new stream
                if need <= successor.overlapped and \
                        self.pipeline.books_overlap(successor.number) \
                        or tick >= conn.handover_deadline:
                    conns.remove(conn)
                    self._end(conn, recorder)
            elif self.handover and conn.handover_at is not None \
                    and tick >= conn.handover_at \
                    and conn.predecessor is None and not self._stop.is_set():
                conn.handover_at = None
                try:
                    new = self._open(conns, recorder)
                except (websocket.WebSocketException, OSError, ProtocolError) as exc:
                    self._error(f"handover connection: {type(exc).__name__}: {quote(str(exc))}")
                    conn.handover_at = tick + int(1e9)
                    continue
                new.predecessor, conn.successor = conn, new
                # unproven, the old one reads on until the venue ends it, or until then
                conn.handover_deadline = tick + int(HANDOVER_MAX_S * 1e9)

    def _on_control(self, control) -> str | None:
        """React to a venue's control message: ``'end'`` this connection now,
        ``'handover'`` (the venue announced its end: make before break), or None."""
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
                return "end"
            self.status.move("live", self._refused_reason() if named
                             else f"venue error: {quote(control.detail)}")
        elif control.kind == "reconnect":
            self.last_error.set(f"venue asked to reconnect: {quote(control.detail)}")
            return "handover"
        return None

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
