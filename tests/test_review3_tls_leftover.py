"""Review of the TLS read-ahead (``more_records``): a read capped at RECV_BYTES must not
leave decrypted bytes inside the TLS layer, where ``select`` (the receive loop's poll of
several connections: redundancy, a handover's overlap) cannot see them: they would wait
for the venue's next message, or be lost with the connection when it goes stale."""

from __future__ import annotations

import select
import socket

import pytest

from rtkit.runtime.chunks import RECV_BYTES, more_records
from tests.conftest import wait_for
from tests.test_tls_reads import RECORD, connected_tls_pair, queued_bytes


@pytest.fixture
def roomy_tls_pair(tls_server_context):
    """A connected (server, client) pair of TLS sockets on loopback, the client's kernel
    buffer large enough to hold more than RECV_BYTES that has arrived."""
    server, client, listener = connected_tls_pair(*tls_server_context, 4 * RECV_BYTES)
    yield server, client
    for s in (server, client, listener):
        s.close()


def test_a_capped_read_leaves_nothing_that_select_cannot_see(roomy_tls_pair):
    server, client = roomy_tls_pair
    payload = bytes(range(256)) * ((RECV_BYTES + RECORD) // 256)  # then full records
    sent = 1000 + len(payload)
    if client.getsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF) // 2 < 2 * sent:
        pytest.skip("the kernel caps the receive buffer below the test's burst "
                    "(net.core.rmem_max)")
    server.sendall(b"x" * 1000)  # a short record first: the full ones then straddle the cap
    server.sendall(payload)
    wait_for(lambda: queued_bytes(client) >= sent, 10)  # all of it has arrived
    client.settimeout(0.5)
    chunk = more_records(client, client.recv(RECV_BYTES))
    assert len(chunk) < sent  # the cap was met: the rest is for the next read
    # what is left must be seen by the multi-connection poll (or there is none)
    assert client.pending() == 0
    rest = b""
    while len(chunk) + len(rest) < sent and select.select([client], [], [], 0.5)[0]:
        rest += client.recv(RECV_BYTES)
    assert chunk + rest == b"x" * 1000 + payload  # nothing lost, nothing out of order
