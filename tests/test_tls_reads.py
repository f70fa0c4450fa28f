"""Over TLS a read returns one record (16 KiB at most): the receive loop takes the
records that have already arrived with it, so a wss:// feed is read in chunks as large
as a ws:// one (issue 17), and nothing is lost or reordered on the way."""

from __future__ import annotations

import fcntl
import socket
import ssl
import struct
import termios
import threading

import pytest

import rtkit
from rtkit.runtime.chunks import RECV_BYTES, more_records
from rtkit.sim import Simulator
from tests.conftest import wait_for

RECORD = 16 * 1024


def queued_bytes(sock: socket.socket) -> int:
    """Bytes the kernel holds for ``sock``, not yet read (still encrypted)."""
    return struct.unpack("i", fcntl.ioctl(sock.fileno(), termios.FIONREAD, b"\0\0\0\0"))[0]


def connected_tls_pair(context: ssl.SSLContext, pem: str, receive_buffer: int | None = None):
    """A connected (server, client, listener) of TLS sockets on loopback; the client's
    kernel receive buffer set to ``receive_buffer`` bytes when given."""
    listener = socket.create_server(("127.0.0.1", 0))
    accepted: list[ssl.SSLSocket] = []
    thread = threading.Thread(target=lambda: accepted.append(
        context.wrap_socket(listener.accept()[0], server_side=True)), daemon=True)
    thread.start()
    raw = socket.socket()
    if receive_buffer is not None:
        raw.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    raw.connect(listener.getsockname())
    client = ssl.create_default_context(cafile=pem).wrap_socket(
        raw, server_hostname="127.0.0.1")
    thread.join(10)
    return accepted[0], client, listener


@pytest.fixture
def tls_pair(tls_server_context):
    """A connected (server, client) pair of TLS sockets on loopback."""
    server, client, listener = connected_tls_pair(*tls_server_context)
    yield server, client
    for s in (server, client, listener):
        s.close()


def test_the_records_that_have_come_are_read_together(tls_pair):
    server, client = tls_pair
    payload = bytes(range(256)) * (4 * RECORD // 256)  # four full records
    server.sendall(payload)
    wait_for(lambda: queued_bytes(client) >= len(payload), 10)  # all of it has arrived
    client.settimeout(0.5)
    first = client.recv(RECV_BYTES)
    assert len(first) <= RECORD  # one record: what TLS gives a read
    chunk = more_records(client, first)
    assert len(chunk) > 2 * RECORD  # records that had come, in the same read
    assert client.gettimeout() == 0.5  # blocking reads again for the next one
    while len(chunk) < len(payload):  # (the last one may still have been arriving)
        chunk += client.recv(RECV_BYTES)
    assert chunk == payload  # nothing lost, nothing out of order
    server.sendall(b"next")
    assert client.recv(RECV_BYTES) == b"next"


def test_a_quiet_socket_gives_back_the_first_record_alone(tls_pair):
    server, client = tls_pair
    server.sendall(b"one frame")
    client.settimeout(0.5)
    first = client.recv(RECV_BYTES)
    assert more_records(client, first) == b"one frame"  # nothing waited for


def test_the_end_of_the_stream_is_left_for_the_next_read(tls_pair):
    server, client = tls_pair
    server.sendall(b"last words")
    server.close()
    wait_for(lambda: queued_bytes(client) > 0, 10)
    client.settimeout(0.5)
    first = client.recv(RECV_BYTES)
    assert more_records(client, first) == b"last words"
    assert client.recv(RECV_BYTES) == b""  # the close, seen by the loop's next read


def test_a_burst_over_wss_is_counted_and_stored_exactly(db, tls_server_context):
    context, pem = tls_server_context
    with Simulator("binance", rate=50_000, count=20_000, seed=4, tls=context) as sim:
        c = rtkit.collect("binance", ["BTC-USDT", "ETH-USDT"], url=sim.url, db=db,
                          sslopt={"ca_certs": pem}, backfill=False)
        try:
            wait_for(lambda: sim.all_sent and c.stats["frames"] >= sim.frames_sent, 30)
            wait_for(lambda: c.stats["stored"] == 20_000, 10)
            s = c.stats
            assert s["frames"] == sim.frames_sent and s["rejected_frames"] == 0
            assert s["duplicates"] == 0 and s["pending"] == 0
        finally:
            c.stop()
