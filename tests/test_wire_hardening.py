"""What a hostile server can do on the wire (issue #11): bad frame headers after good
frames, a handshake that never ends, redirects to cleartext. Each server here is a
bare TCP socket on 127.0.0.1, so it can say what no WebSocket library would."""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import websocket

import rtkit
from rtkit.compat import connect_to_websocket
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


def accept_upgrade(conn: socket.socket, request: bytes | None = None) -> None:
    """Answer the client's upgrade request (read here unless given) with a correct 101."""
    request = request or read_request(conn)
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



def test_the_connection_ends_even_while_the_server_streams_on_after_the_error(db):
    """After a protocol error the collector sends its close frame (1002) and cuts the
    socket. Before, websocket-client's close() read on with its own frame parser, which
    waits for a frame's whole payload: bytes 0x7f (a 2^63-ish length at any alignment)
    held it for as long as the server sent them, memory growing, stop() unable to cut."""
    client_sent = []

    def serve(server, conn, n):
        accept_upgrade(conn)
        if n:
            return
        conn.sendall(b"".join(frame(trade(i)) for i in range(1, 11)) + b"\x83\x00")
        conn.settimeout(0.01)
        while server.open:
            with contextlib.suppress(TimeoutError):
                data = conn.recv(65536)
                if not data:
                    return
                client_sent.append(data)
            conn.sendall(b"\x7f" * 16384)  # ~1.6 MB/s: bounded, should it be read

    with RawServer(serve) as server:
        c = rtkit.collect("binance", ["BTC-USDT"], url=f"ws://127.0.0.1:{server.port}/ws",
                          db=db, backoff_initial_s=30)
        try:
            wait_for(lambda: c.status == "backoff", 5)
        finally:
            c.stop()
        assert c.status == "stopped" and c.stats["stored"] == 10
    sent = b"".join(client_sent)
    close = sent.rfind(b"\x88")  # the client's close frame: masked, code first
    assert close >= 0, sent
    mask = sent[close + 2 : close + 6]
    code = bytes(b ^ mask[i % 4] for i, b in enumerate(sent[close + 6 : close + 8]))
    assert int.from_bytes(code, "big") == 1002  # protocol error



def test_each_oversized_frame_of_one_read_is_recorded_with_its_own_size(db, tmp_path):
    """Two frames over max_frame_bytes in one TCP write: each reject row, and each
    recording line, says that frame's size (before, both said the last one's)."""
    sizes = (300, 1000)

    def serve(server, conn, n):
        accept_upgrade(conn)
        if n == 0:
            conn.sendall(b"".join(frame(b"x" * size) for size in sizes) + frame(trade(1)))
            server.hold(conn)

    record = tmp_path / "run.jsonl"
    with RawServer(serve) as server:
        c = rtkit.collect("binance", ["BTC-USDT"], url=f"ws://127.0.0.1:{server.port}/ws",
                          db=db, flush_interval_s=0.05, max_frame_bytes=256, record_raw=record)
        try:
            wait_for(lambda: c.stats["stored"] == 1 and c.stats["rejects_pending"] == 0, 5)
        finally:
            c.stop()
    with c.store() as store:
        rows = store.rejects()
    assert sorted(rows["frame_bytes"]) == list(sizes)
    assert sorted(rows["detail"]) == sorted(f"{size} bytes > 256" for size in sizes)
    lines = [json.loads(line) for line in record.read_text().splitlines()]
    assert [line["too_large"] for line in lines if "too_large" in line] == list(sizes)



def test_frames_after_a_ping_count_even_when_the_pong_cannot_be_sent(db):
    """One read: a trade, a ping, a binary frame, an oversized frame; the peer is gone,
    so the pong raises. Before, the two frames after the ping were never counted (the
    recording had them, the stats did not); now every frame is counted first and the
    failed pong then ends the connection."""
    chunk = (frame(trade(1)) + frame(b"hi", 0x9) + frame(b"\x00", 0x2)
             + frame(b"x" * 300))

    class GoneSocket:
        reads = [chunk]

        def recv(self, size):
            if self.reads:
                return self.reads.pop()
            raise ConnectionResetError("reset by peer")

        def settimeout(self, seconds):  # a short read while ticks wait for the writer
            pass

    class GoneWebSocket:
        sock = GoneSocket()

        def pong(self, payload):
            raise websocket.WebSocketConnectionClosedException("socket is already closed.")

    c = rtkit.Collector("binance", ["BTC-USDT"], db=db, url="ws://127.0.0.1:9/ws",
                        max_frame_bytes=256)
    with pytest.raises(websocket.WebSocketConnectionClosedException):
        c.receiver._read_frames(GoneWebSocket(), None)  # the receive loop, rtkit.runtime
    s = c.stats
    assert (s["frames"], s["tick_frames"], s["rejected_frames"]) == (3, 1, 2)
    assert s["rejected_by_reason"] == {"binary_frame": 1, "frame_too_large": 1}


# --- the handshake (item 10) ---------------------------------------------------------------
def answer_then(lines_every_s: float | None):
    """A server that starts a 101 answer, then trickles a header line every
    ``lines_every_s`` (well inside any per-read timeout), or with None sends one
    endless header line as fast as the client reads it."""
    def serve(server, conn, n):
        read_request(conn)
        server.started = time.monotonic()
        conn.sendall(b"HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\n")
        if lines_every_s is None:
            conn.sendall(b"X-Endless: ")
            while server.open:
                conn.sendall(b"a" * 65536)
        while server.open:
            conn.sendall(b"X-Trickle: 1\r\n")
            server.stopped.wait(lines_every_s)
    return serve


def test_a_trickled_handshake_ends_after_connect_timeout(db):
    """Before: each header line reset websocket-client's per-read timeout, and the
    collector stayed 'connecting' for as long as the server kept talking."""
    timeout_s = 1.0
    with RawServer(answer_then(lines_every_s=0.1)) as server:
        c = rtkit.collect("binance", ["BTC-USDT"], url=f"ws://127.0.0.1:{server.port}/ws",
                          db=db, connect_timeout_s=timeout_s, backoff_initial_s=30)
        try:
            wait_for(lambda: c.status != "connecting", 4 * timeout_s)
            took = time.monotonic() - server.started
        finally:
            c.stop()
    assert c.status == "stopped" and "within 1s (connect_timeout_s)" in c.last_error
    assert took < 2.5 * timeout_s  # the whole handshake, not each read


def test_connect_to_websocket_gives_up_on_a_trickled_handshake():
    timeout_s = 1.0
    with RawServer(answer_then(lines_every_s=0.1)) as server:
        t = time.monotonic()
        with pytest.raises(websocket.WebSocketTimeoutException, match="within 1s"):
            connect_to_websocket(f"ws://127.0.0.1:{server.port}/ws", timeout_s=timeout_s)
        assert time.monotonic() - t < 2.5 * timeout_s


_CHILD = """
import json, sys, time
from tests.conftest import peak_rss_kib
import rtkit
c = rtkit.Collector("binance", ["BTC-USDT"], url=sys.argv[1], db=sys.argv[2],
                    connect_timeout_s=600, backoff_initial_s=600)
base = peak_rss_kib()
c.start()
deadline = time.monotonic() + float(sys.argv[3])
while c.status == "connecting" and time.monotonic() < deadline:
    time.sleep(0.02)
status = c.status
grew = peak_rss_kib() - base
c.stop()
print(json.dumps({"grew_kib": grew, "status": str(status), "reason": status.reason}))
"""


def test_an_endless_header_line_is_refused_with_bounded_memory(db):
    """Before: websocket-client kept every byte of the line (as a list of 1-byte
    objects, ~40 bytes each): the child grew by hundreds of MiB in seconds."""
    with RawServer(answer_then(lines_every_s=None), lifetime_s=30) as server:
        run = subprocess.run(
            [sys.executable, "-c", _CHILD, f"ws://127.0.0.1:{server.port}/ws", str(db), "8"],
            capture_output=True, text=True, timeout=60, cwd=Path(__file__).parent.parent)
    assert run.returncode == 0, run.stderr[-2000:]
    result = json.loads(run.stdout.strip().splitlines()[-1])
    assert result["status"] == "backoff" and "longer than 64 KiB" in result["reason"], result
    assert result["grew_kib"] < 50 * 1024, result


# --- redirects (item 14) -----------------------------------------------------------------
def test_a_redirect_from_wss_to_cleartext_is_refused(db, tls_server_context):
    """A verified wss:// endpoint answering 301 to ws://: before, websocket-client
    followed it and the collector went live in cleartext while runs.url said wss://."""
    context, pem = tls_server_context

    def redirect(server, conn):
        read_request(conn)
        conn.sendall(b"HTTP/1.1 301 Moved Permanently\r\nLocation: ws://127.0.0.1:%d"
                     b"/plain?token=SECRET\r\nContent-Length: 0\r\n\r\n" % server.port)

    def serve(server, conn, n):
        if n == 0:  # the wss:// endpoint: TLS, then a redirect to cleartext
            with context.wrap_socket(conn, server_side=True) as tls:
                redirect(server, tls)
            return
        request = conn.recv(4096, socket.MSG_PEEK)
        if not request.startswith(b"GET /plain"):
            redirect(server, conn)
            return
        accept_upgrade(conn)  # the cleartext endpoint
        conn.sendall(b"".join(frame(trade(i)) for i in range(1, 11)))
        server.hold(conn)

    with RawServer(serve) as server:
        url = f"wss://127.0.0.1:{server.port}/ws"
        c = rtkit.collect("binance", ["BTC-USDT"], url=url, db=db, sslopt={"ca_certs": pem},
                          backoff_initial_s=30)
        try:
            wait_for(lambda: c.status not in ("connecting", "live") or c.stats["ticks"], 5)
            status = c.status
        finally:
            c.stop()
        with pytest.raises(websocket.WebSocketException, match="redirect"):
            connect_to_websocket(f"ws://127.0.0.1:{server.port}/again")
        assert server.connections == 2  # the collector's, then connect_to_websocket's
    assert status == "backoff" and c.stats["ticks"] == 0 and c.connections == 0
    assert f"HTTP 301) to ws://127.0.0.1:{server.port}/plain;" in status.reason
    assert "SECRET" not in status.reason  # a query string may carry a token


def test_a_refused_redirect_does_not_show_a_key_in_its_location():
    """connect_to_websocket has no collector to redact its errors: the refusal itself
    must not quote a path token (Infura's /v3/<key>) or user info of the Location."""
    token = "0123456789abcdef0123456789abcdef"

    def serve(server, conn, n):
        read_request(conn)
        conn.sendall(b"HTTP/1.1 302 Found\r\nLocation: wss://bob:pw1234567@node.example/v3/"
                     + token.encode() + b"\r\nContent-Length: 0\r\n\r\n")

    with RawServer(serve) as server, pytest.raises(websocket.WebSocketException,
                                                   match="redirect") as refused:
        connect_to_websocket(f"ws://127.0.0.1:{server.port}/ws")
    text = str(refused.value)
    assert "to wss://node.example/v3/***;" in text
    assert token not in text and "pw1234567" not in text
