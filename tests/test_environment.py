"""What the process environment changes, as the README says: websocket-client reads
``https_proxy``/``http_proxy`` and ``WEBSOCKET_CLIENT_CA_BUNDLE``, so rtkit does too.

These tests prove the README's words true on the installed websocket-client: a
proxy named in the environment carries the connection, and a CA bundle named in
the environment changes which certificates a ``wss://`` collector trusts.
"""

from __future__ import annotations

import contextlib
import socket
import threading
from urllib.parse import urlsplit

import pytest

import rtkit
from rtkit.sim import Simulator
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("no_thread_leak")
SYMBOLS = ["BTC-USDT"]


class ConnectProxy:
    """An HTTP CONNECT proxy on 127.0.0.1 that only ever tunnels to 127.0.0.1.

    It records each CONNECT target, so a test can see the collector went through it.
    """

    def __init__(self) -> None:
        self.targets: list[str] = []
        self._server = socket.create_server(("127.0.0.1", 0))
        self._server.settimeout(0.2)
        self.port = self._server.getsockname()[1]
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._accept_thread = threading.Thread(target=self._accept, daemon=True)

    def __enter__(self) -> ConnectProxy:
        self._accept_thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._accept_thread.join(5)
        for t in self._threads:
            t.join(5)
        self._server.close()

    def _accept(self) -> None:
        while not self._stop.is_set():
            try:
                client, _ = self._server.accept()
            except TimeoutError:
                continue
            t = threading.Thread(target=self._tunnel, args=(client,), daemon=True)
            self._threads.append(t)
            t.start()

    def _tunnel(self, client: socket.socket) -> None:
        with contextlib.closing(client):
            client.settimeout(5)
            head = b""
            while b"\r\n\r\n" not in head and len(head) < 8192:
                piece = client.recv(1024)
                if not piece:
                    return
                head += piece
            target = head.split(b"\r\n", 1)[0].split()[1].decode()
            self.targets.append(target)
            host, port = target.rsplit(":", 1)
            if host != "127.0.0.1":  # never a way off this machine
                client.sendall(b"HTTP/1.1 403 Forbidden\r\n\r\n")
                return
            with contextlib.closing(socket.create_connection((host, int(port)), 5)) as up:
                client.sendall(b"HTTP/1.1 200 Connection established\r\n\r\n")
                self._pump(client, up)

    def _pump(self, a: socket.socket, b: socket.socket) -> None:
        for s in (a, b):
            s.settimeout(0.2)
        while not self._stop.is_set():
            for src, dst in ((a, b), (b, a)):
                try:
                    data = src.recv(65536)
                except TimeoutError:
                    continue
                except OSError:
                    return
                if not data:
                    return
                dst.sendall(data)


def test_http_proxy_from_the_environment_carries_the_connection(db, monkeypatch):
    with Simulator("binance", rate=2000, count=200, seed=1) as sim, ConnectProxy() as proxy:
        monkeypatch.setenv("http_proxy", f"http://127.0.0.1:{proxy.port}")
        monkeypatch.delenv("no_proxy", raising=False)
        monkeypatch.delenv("NO_PROXY", raising=False)
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1)
        try:
            wait_for(lambda: c.stats["stored"] == 200)
        finally:
            c.stop()
    assert proxy.targets == [f"127.0.0.1:{urlsplit(sim.url).port}"]


def test_ca_bundle_from_the_environment_changes_what_is_trusted(db, monkeypatch,
                                                              tls_server_context):
    context, pem = tls_server_context
    monkeypatch.setenv("WEBSOCKET_CLIENT_CA_BUNDLE", pem)
    with Simulator("binance", rate=2000, count=200, seed=1, tls=context) as sim:
        # no sslopt: the certificate is trusted only because the environment says so
        c = rtkit.collect("binance", SYMBOLS, url=sim.url, db=db, flush_interval_s=0.1)
        try:
            wait_for(lambda: c.stats["stored"] == 200)
        finally:
            c.stop()
