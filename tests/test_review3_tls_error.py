"""Review of the TLS read-ahead (``more_records``): an error that the read-ahead meets
(a record that fails its integrity check, an alert) is said as that error once the
frames read before it are counted: not swallowed, which left the next read an end of
stream, reported as the peer closing the connection."""

from __future__ import annotations

import ssl

import pytest

import rtkit
from tests.conftest import wait_for
from tests.test_wire_hardening import RawServer, accept_upgrade, frame, trade

pytestmark = pytest.mark.usefixtures("no_thread_leak")
#: a TLS application-data record whose bytes are not what the session encrypted
FORGED_RECORD = b"\x17\x03\x03\x00\x20" + b"z" * 32


class BioSocket:
    """The server side of a TLS session over memory buffers, so that the test decides
    which encrypted bytes go into one TCP write (``accept_upgrade`` writes through it)."""

    def __init__(self, context: ssl.SSLContext, conn) -> None:
        self.conn, self.incoming, self.outgoing = conn, ssl.MemoryBIO(), ssl.MemoryBIO()
        self.tls = context.wrap_bio(self.incoming, self.outgoing, server_side=True)
        self._until_done(self.tls.do_handshake)
        self.conn.sendall(self.outgoing.read())

    def _until_done(self, step):
        while True:
            try:
                return step()
            except ssl.SSLWantReadError:
                self.conn.sendall(self.outgoing.read())
                data = self.conn.recv(65536)
                if not data:
                    raise ConnectionError("client went away") from None
                self.incoming.write(data)

    def recv(self, size: int) -> bytes:
        return self._until_done(lambda: self.tls.read(size))

    def sendall(self, data: bytes) -> None:
        self.tls.write(data)
        self.conn.sendall(self.outgoing.read())

    def records(self, payloads: list[bytes]) -> bytes:
        """The encrypted records of ``payloads``, one each, not sent."""
        for payload in payloads:
            self.tls.write(payload)
        return self.outgoing.read()


def trades_then_a_forged_record(context):
    """A server whose first connection gets 100 trades, a record each, then a forged
    record, all in one TCP write, and is then held open."""
    def serve(server, conn, n):
        tls = BioSocket(context, conn)
        accept_upgrade(tls)
        if n == 0:
            conn.sendall(tls.records([frame(trade(i)) for i in range(1, 101)])
                         + FORGED_RECORD)
        server.hold(conn)

    return serve


def test_a_forged_record_after_trades_is_said_once_they_are_counted(db, tls_server_context):
    context, pem = tls_server_context
    with RawServer(trades_then_a_forged_record(context)) as server:
        c = rtkit.collect("binance", ["BTC-USDT"], url=f"wss://127.0.0.1:{server.port}/ws",
                          db=db, sslopt={"ca_certs": pem}, flush_interval_s=0.05,
                          backoff_initial_s=30, backfill=False)
        try:
            wait_for(lambda: c.status == "backoff", 10)
            assert "SSLError" in c.status.reason, c.status.reason
        finally:
            c.stop()
    s = c.stats
    assert (s["frames"], s["tick_frames"], s["stored"], s["rejected"]) == (100, 100, 100, 0)


def test_a_forged_record_ends_its_connection_among_several_at_once(db, tls_server_context):
    # polled with select (redundancy=2): an error kept for "the next read" would wait
    # for a readable socket that never comes, the connection live until it went stale
    context, pem = tls_server_context
    with RawServer(trades_then_a_forged_record(context)) as server:
        c = rtkit.collect("binance", ["BTC-USDT"], url=f"wss://127.0.0.1:{server.port}/ws",
                          db=db, sslopt={"ca_certs": pem}, flush_interval_s=0.05,
                          redundancy=2, stale_after_s=60, backoff_initial_s=30,
                          backfill=False)
        try:
            wait_for(lambda: "SSLError" in c.last_error, 10)
            assert c.stats["frames"] == 100
        finally:
            c.stop()
