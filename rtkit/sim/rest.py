"""The simulator's HTTP side: each venue's REST endpoints on 127.0.0.1, answered
from the simulator's own state, with the venue's rate limit and faults on request.

Why a server of its own next to the WebSocket port, not websockets'
``process_request`` on the same port: websockets answers a plain HTTP request
and then closes the connection (``send_eof`` after any non-101 response), so a
REST client could never keep a connection alive there, and connection reuse is
half of what this side must prove. A ``ThreadingHTTPServer`` speaking HTTP/1.1
keeps connections open, counts them, and needs no event loop. A simulator's
REST address is registered (``rtkit.rest.endpoints.SIMULATED_REST``) under its
WebSocket address while it runs, so a collector given ``url=sim.url`` finds it
without ``rest_url=``.

Usage::

    with Simulator("binance-futures") as sim, SimRest(sim) as rest:
        client = RestClient("binance-futures", rest.url)

Trade history comes from a bounded tape (``TAPE_SIZE`` a symbol) of the trades
the simulator generated; depth snapshots from the simulator's own books (the
sequence its book stream carries) where its dialect has them, else from a provider
hook (``depth_provider=``, ``set_depth_provider``), a steady default book otherwise.
"""

from __future__ import annotations

import contextlib
import math
import socket
import threading
import time
from collections import Counter, deque
from collections.abc import Iterable
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING
from urllib.parse import parse_qsl, urlsplit

import orjson

from rtkit.rest.endpoints import SIMULATED_REST, venue_rest
from rtkit.sim.market import Market
from rtkit.sim.rest_answers import TAPE_SIZE, Answer, DepthProvider, Tape, Venue, default_depth

if TYPE_CHECKING:
    from rtkit.sim.server import Simulator

#: seconds an idle kept-alive connection stays open at the server
IDLE_TIMEOUT_S = 5.0


@dataclass
class RestFault:
    """One injected answer: ``status`` (429, 418, 5xx; 200 with ``delay_s`` is a slow
    but good answer), ``Retry-After`` seconds, a delay before answering, and the path
    prefix it applies to (None: any)."""

    status: int
    retry_after_s: float | None = None
    delay_s: float = 0.0
    path: str | None = None


class SimRest:
    """A venue's REST API on 127.0.0.1, answered from a simulator's state.

    ``sim``: the :class:`~rtkit.sim.Simulator` whose trades and venue it serves (or
    give ``venue`` and ``market`` for a REST-only simulator). ``limit`` per
    ``window_s``: the rate limit the server enforces with 429s (default: the
    venue's published one; a test compresses time with a shorter window).

    Counters: ``connections`` (TCP connections accepted), ``requests`` (by path),
    ``statuses`` (by HTTP status), ``used_peak`` (most cost in one window),
    ``log`` (``(monotonic time, path, status)`` of the last requests).
    """

    def __init__(self, sim: Simulator | None = None, *, venue: str | None = None,
                 market: Market | None = None, port: int = 0, limit: float | None = None,
                 window_s: float | None = None, depth_provider: DepthProvider | None = None,
                 symbols: Iterable[str] = (), tape_size: int = TAPE_SIZE) -> None:
        if sim is None and venue is None:
            raise ValueError("give the Simulator to serve, or venue= (and market=)")
        self.sim = sim
        self.venue = venue or (sim.venue if sim is not None else "")
        spec = venue_rest(self.venue)
        self.market = market or (sim.market if sim is not None else Market())
        self.host = "127.0.0.1"  # never anything but loopback
        self.port = port
        self.limit = spec.limit if limit is None else limit
        self.window_s = spec.window_s if window_s is None else window_s
        self._extra_symbols = list(symbols)
        example = sim.dialect.example_symbols if sim is not None else ("BTC-USDT", "ETH-USDT")
        self._example_symbols = list(example)
        # a simulator with books answers from them (the sequence its stream carries)
        books = sim.books.depth_snapshot if sim is not None and sim.dialect.has_books else None
        self._depth: DepthProvider = depth_provider or books or default_depth
        self.tape = Tape(tape_size)
        self._taped = 0
        self._lock = threading.Lock()
        self._answers = Venue(self.venue, self.tape, self.symbols, lambda: self._depth)
        self._faults: deque[RestFault] = deque()
        self._window_start = 0.0
        self._window_used = 0.0
        self.used_peak = 0.0
        self.connections = 0
        self.requests: Counter[str] = Counter()
        self.statuses: Counter[int] = Counter()
        self.log: deque[tuple[float, str, int]] = deque(maxlen=10_000)
        self._sockets: set[socket.socket] = set()
        self._server: ThreadingHTTPServer | None = None
        self._thread: threading.Thread | None = None

    # --- what it serves ------------------------------------------------------------------
    @property
    def url(self) -> str:
        """The base URL to give as ``rest_url=``."""
        return f"http://{self.host}:{self.port}"

    def symbols(self) -> list[str]:
        """The markets the simulated venue lists: its examples, those given, those traded."""
        self._sync_tape()
        return list(dict.fromkeys([*self._example_symbols, *self._extra_symbols,
                                   *self.tape.trades]))

    def add_symbols(self, symbols: Iterable[str]) -> None:
        with self._lock:
            self._extra_symbols.extend(symbols)

    def set_depth_provider(self, provider: DepthProvider | None) -> None:
        """Snapshots come from ``provider(venue, symbol, limit)`` from now on (None: the
        default steady book)."""
        self._depth = provider or default_depth

    def inject(self, status: int, count: int = 1, *, retry_after_s: float | None = None,
               delay_s: float = 0.0, path: str | None = None) -> None:
        """The next ``count`` requests (to ``path``… when given) get ``status`` (with a
        ``Retry-After`` when given) after ``delay_s``; status 200 with a delay is a slow
        good answer."""
        with self._lock:
            self._faults.extend(RestFault(status, retry_after_s, delay_s, path)
                                for _ in range(count))

    def _sync_tape(self) -> None:
        with self._lock:
            trades = self.market.trades
            for trade in trades[self._taped:len(trades)]:
                self.tape.add(trade)
            self._taped = len(trades)

    # --- one request (handler threads) ------------------------------------------------------
    def _take_fault(self, path: str) -> RestFault | None:
        with self._lock:
            for fault in self._faults:
                if fault.path is None or path.startswith(fault.path):
                    self._faults.remove(fault)
                    return fault
        return None

    def _charge(self, cost: float) -> float | None:
        """Spend ``cost`` in the current fixed window; seconds until it ends when the
        venue's limit is exceeded (a 429), else None."""
        with self._lock:
            now = time.monotonic()
            if now - self._window_start >= self.window_s:
                self._window_start, self._window_used = now, 0.0
            if self._window_used + cost > self.limit:
                return self._window_start + self.window_s - now
            self._window_used += cost
            self.used_peak = max(self.used_peak, self._window_used)
            return None

    def handle(self, target: str) -> tuple[Answer, float]:
        """The answer to GET ``target`` and the seconds to wait before sending it."""
        parts = urlsplit(target)
        path, query = parts.path, dict(parse_qsl(parts.query))
        with self._lock:
            self.requests[path] += 1
        fault = self._take_fault(path)
        if fault is not None and fault.status != 200:
            headers = {}
            if fault.retry_after_s is not None:
                headers["Retry-After"] = f"{fault.retry_after_s:g}"
            return Answer(fault.status, self._answers.error(fault.status, "simulated fault")[1],
                          headers), fault.delay_s
        self._sync_tape()
        answer, cost = self._answers.answer(path, query)
        over = self._charge(cost)
        if over is not None:
            return Answer(429, self._answers.error(429, "too many requests")[1],
                          {"Retry-After": str(max(1, math.ceil(over)))}), 0.0
        if self.venue.startswith("binance"):
            answer[2]["X-MBX-USED-WEIGHT-1M"] = str(int(self._window_used))
        return answer, fault.delay_s if fault is not None else 0.0

    # --- lifecycle ------------------------------------------------------------------------
    def start(self) -> SimRest:
        if self._server is not None:
            return self
        if self.sim is not None and not self.sim.port:
            raise RuntimeError("start the Simulator before its REST side (SimRest registers "
                               "under the simulator's address): `with Simulator(...) as sim, "
                               "SimRest(sim) as rest:`")
        server = ThreadingHTTPServer((self.host, self.port), _handler(self))
        server.daemon_threads = True
        self._server = server
        self.port = server.server_address[1]
        self._thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                                        name=f"rtkit-sim-rest-{self.venue}", daemon=True)
        self._thread.start()
        if self.sim is not None:
            SIMULATED_REST[f"{self.sim.host}:{self.sim.port}"] = self.url
        return self

    def stop(self) -> None:
        if self.sim is not None:
            SIMULATED_REST.pop(f"{self.sim.host}:{self.sim.port}", None)
        if self._server is None:
            return
        self._server.shutdown()
        self._server.server_close()
        with self._lock:
            open_sockets = list(self._sockets)
        for sock in open_sockets:  # kept-alive connections: end them now
            with contextlib.suppress(OSError):
                sock.shutdown(socket.SHUT_RDWR)
        if self._thread is not None:
            self._thread.join(5.0)
        self._server = self._thread = None

    def __enter__(self) -> SimRest:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


def _handler(rest: SimRest) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"  # keep-alive: a client reuses its connection
        timeout = IDLE_TIMEOUT_S

        def setup(self) -> None:
            super().setup()
            with rest._lock:
                rest.connections += 1
                rest._sockets.add(self.connection)

        def finish(self) -> None:
            with rest._lock:
                rest._sockets.discard(self.connection)
            with contextlib.suppress(OSError):
                super().finish()

        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            (status, body, headers), delay_s = rest.handle(self.path)
            if delay_s > 0:
                time.sleep(delay_s)  # a slow venue: this connection's thread waits
            payload = orjson.dumps(body)
            with rest._lock:
                rest.statuses[status] += 1
                rest.log.append((time.monotonic(), urlsplit(self.path).path, status))
            try:
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(payload)
            except OSError:  # the client gave up (its timeout): nothing to answer
                self.close_connection = True

        def log_message(self, format: str, *args) -> None:  # noqa: A002
            pass  # quiet: the counters say what happened

    return Handler
