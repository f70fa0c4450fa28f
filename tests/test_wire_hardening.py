"""What a hostile server can do on the wire (issue #11): bad frame headers after good
frames, a handshake that never ends, redirects to cleartext. Each server here is a
bare TCP socket on 127.0.0.1, so it can say what no WebSocket library would."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import socket
import threading
import time

import pytest

import rtkit
from tests.conftest import wait_for
from tests.test_wsframes import BAD_AFTER_GOOD, frame

pytestmark = pytest.mark.usefixtures("no_thread_leak")
_GUID = b"258EAFA5-E914-47DA-95CA-C5AB0DC85B11"  # RFC 6455 section 1.3


class RawServer:
    """A bare TCP server on 127.0.0.1 that runs ``serve(conn, n)`` for its n-th
    connection (from 0), each in a thread; everything ends by ``lifetime_s``."""

    def __init__(self, serve, lifetime_s: float = 15.0) -> None:
        self.serve = serve
        self.deadline = time.monotonic() + lifetime_s
        self.stopped = threading.Event()
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.listener.settimeout(0.05)
        self.port = self.listener.getsockname()[1]
        self.connections = 0
        self.threads = [threading.Thread(target=self._accept, name="test-raw-server")]

    def __enter__(self) -> RawServer:
        self.threads[0].start()
        return self

    def __exit__(self, *exc) -> None:
        self.stopped.set()
        for t in list(self.threads):
            t.join(5)
        self.listener.close()

    @property
    def open(self) -> bool:
        return not self.stopped.is_set() and time.monotonic() < self.deadline

    def _accept(self) -> None:
        while self.open:
            try:
                conn, _ = self.listener.accept()
            except TimeoutError:
                continue
            t = threading.Thread(target=self._handle, args=(conn, self.connections),
                                 name="test-raw-conn")
            self.connections += 1
            self.threads.append(t)
            t.start()

    def _handle(self, conn: socket.socket, n: int) -> None:
        with conn, contextlib.suppress(OSError):
            conn.settimeout(max(0.01, self.deadline - time.monotonic()))
            self.serve(self, conn, n)

    def hold(self, conn: socket.socket) -> None:
        """Keep the connection open until the client closes it or the server stops."""
        conn.settimeout(0.05)
        while self.open:
            try:
                if not conn.recv(65536):
                    return
            except TimeoutError:
                pass


def read_request(conn: socket.socket) -> bytes:
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = conn.recv(4096)
        if not chunk:
            raise ConnectionError("client went away during its request")
        data += chunk
    return data


def accept_upgrade(conn: socket.socket) -> None:
    """Answer the client's upgrade request with a correct 101."""
    request = read_request(conn)
    key = next(line.split(b":", 1)[1].strip() for line in request.split(b"\r\n")
               if line.lower().startswith(b"sec-websocket-key:"))
    accept = base64.b64encode(hashlib.sha1(key + _GUID).digest())
    conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n"
                 b"Connection: Upgrade\r\nSec-WebSocket-Accept: " + accept + b"\r\n\r\n")


def trade(i: int) -> bytes:
    return (b'{"e":"trade","E":1,"s":"BTCUSDT","t":%d,"p":"1.5","q":"0.1",'
            b'"T":1764000000000,"m":true}' % i)


# --- frame headers (items 1, 4, 24) ------------------------------------------------------
_RSV1_TRADE = bytes((frame(trade(999))[0] | 0x40,)) + frame(trade(999))[1:]


@pytest.mark.parametrize("bad", [*BAD_AFTER_GOOD.values(), _RSV1_TRADE],
                         ids=[*BAD_AFTER_GOOD.keys(), "valid-trade-with-rsv1"])
def test_trades_before_a_protocol_error_in_the_same_write_are_counted_then_it_ends(db, bad):
    """100 trades, then in the same TCP write a frame that breaks RFC 6455: the 100 are
    counted and stored, the connection ends with the error said, nothing after it is read
    (not a 2^63-byte skip that swallows the stream while the status says live)."""
    def serve(server, conn, n):
        accept_upgrade(conn)
        if n == 0:
            conn.sendall(b"".join(frame(trade(i)) for i in range(1, 101)) + bad
                         + b"".join(frame(trade(i)) for i in range(101, 106)))
            server.hold(conn)

    with RawServer(serve) as server:
        c = rtkit.collect("binance", ["BTC-USDT"], url=f"ws://127.0.0.1:{server.port}/ws",
                          db=db, flush_interval_s=0.05, backoff_initial_s=30)
        try:
            wait_for(lambda: c.status == "backoff", 5)
            assert "ProtocolError" in c.status.reason, c.status.reason
        finally:
            c.stop()
    s = c.stats
    assert (s["frames"], s["tick_frames"], s["stored"], s["rejected"]) == (100, 100, 100, 0)
