"""Opening a WebSocket: the HTTP upgrade within one deadline, size-capped, no redirects.

websocket-client reads the server's answer to the upgrade a byte at a time with a
timeout per read, keeps header lines of any length, and follows up to three
redirects wherever they point. So a server that trickles header lines holds a
connect forever, an endless header line grows memory without bound, and a
``wss://`` endpoint answering ``301 Location: ws://...`` moves the feed to
cleartext. Here websocket-client still opens the socket (proxies, TLS) and
speaks the upgrade, but reads through a guard that ends it at the deadline or
past ``MAX_HANDSHAKE_BYTES``, and a redirect is refused, saying where it pointed.
"""

from __future__ import annotations

import time
from urllib.parse import urlsplit

import websocket
from websocket._http import connect as _open_socket
from websocket._http import proxy_info

from rtkit.redact import redact_url

#: bytes of the server's answer to the upgrade (status line, headers, the body of a
#: refusal) read before giving up on it; real answers are a few hundred bytes
MAX_HANDSHAKE_BYTES = 64 * 1024


class _HandshakeSocket:
    """The socket as websocket-client sees it during the upgrade: each read and write
    waits at most until the deadline, and reads count against MAX_HANDSHAKE_BYTES."""

    def __init__(self, sock, deadline: float, timeout_s: float) -> None:
        self._sock = sock
        self._deadline = deadline
        self._timeout_s = timeout_s
        self._received = 0

    def _arm(self) -> None:
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise self._too_late()
        self._sock.settimeout(left)

    def _too_late(self) -> websocket.WebSocketTimeoutException:
        return websocket.WebSocketTimeoutException(
            f"the server did not complete the WebSocket handshake within "
            f"{self._timeout_s:g}s (connect_timeout_s)")

    def recv(self, size: int) -> bytes:
        self._arm()
        try:
            data = self._sock.recv(min(size, MAX_HANDSHAKE_BYTES + 1 - self._received))
        except TimeoutError:  # the read waited until the deadline
            raise self._too_late() from None
        self._received += len(data)
        if self._received > MAX_HANDSHAKE_BYTES:
            raise websocket.WebSocketException(
                f"the server's answer to the WebSocket upgrade is longer than "
                f"{MAX_HANDSHAKE_BYTES // 1024} KiB; refused (not a WebSocket endpoint?)")
        return data

    def send(self, data: bytes) -> int:
        self._arm()
        try:
            return self._sock.send(data)
        except TimeoutError:
            raise self._too_late() from None

    def __getattr__(self, name: str):  # fileno, gettimeout, shutdown, close, ...
        return getattr(self._sock, name)


def _without_secrets(url: str) -> str:
    """``url`` without its user info, query and fragment, and with token-like path
    segments hidden (they may all carry keys: Infura's ``/v3/<key>``)."""
    try:
        parts = urlsplit(url)
        host = parts.hostname or ""
        port = f":{parts.port}" if parts.port else ""
    except ValueError:
        return "an unparsable address"
    if ":" in host:
        host = f"[{host}]"
    return redact_url(f"{parts.scheme}://{host}{port}{parts.path}" if parts.scheme
                      else parts.path)


def _refuse_redirect(ws: websocket.WebSocket) -> None:
    """Raise a clear error if the server answered the upgrade with a redirect."""
    response = ws.handshake_response
    if response is None or not 300 <= response.status < 400:
        return
    ws.shutdown()
    location = (response.headers or {}).get("location")
    target = f"to {_without_secrets(location)}" if location else "without a Location"
    raise websocket.WebSocketException(
        f"the server answered the upgrade with a redirect (HTTP {response.status}) {target}; "
        "rtkit does not follow redirects (one could move a wss:// feed to cleartext ws://): "
        "if you trust that address, pass it as url")


def open_websocket(ws: websocket.WebSocket, url: str, timeout_s: float) -> None:
    """Connect ``ws`` to ``url``, giving up after ``timeout_s`` for the upgrade as a whole.

    ``ws`` is made by the caller, so another thread can cut its socket (``ws.sock``)
    during the upgrade. The TCP connect and the TLS handshake are each bounded by
    ``timeout_s`` as a socket timeout; the HTTP upgrade ends by the deadline counted
    from the start. Afterwards ``ws.sock`` is the plain socket, its timeout ``timeout_s``.
    """
    deadline = time.monotonic() + timeout_s
    ws.sock_opt.timeout = timeout_s
    sock, _ = _open_socket(url, ws.sock_opt, proxy_info(), None)
    try:
        guard = _HandshakeSocket(sock, deadline, timeout_s)
        try:
            ws.connect(url, socket=guard, redirect_limit=0, timeout=timeout_s)
        except websocket.WebSocketException:
            _refuse_redirect(ws)
            raise
        _refuse_redirect(ws)  # a websocket-client that returns with the redirect
        ws.sock = sock
        sock.settimeout(timeout_s)
    except BaseException:
        ws.sock = None
        sock.close()
        raise
