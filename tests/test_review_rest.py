"""An outside review's attacks on the REST client, its parsers and trade paging: a
hostile venue (or a proxy in between) must cost a counted, worded error, never a
hang, an unbounded read, or an exception that no caller expects."""

from __future__ import annotations

import subprocess
import sys
import threading
import time
from contextlib import contextmanager, suppress
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import SimpleNamespace

import pytest

from rtkit.rest import parse
from rtkit.rest.budget import Budget, RestError
from rtkit.rest.client import RestClient, retry_after_s
from rtkit.rest.endpoints import Request, RestTrade
from rtkit.rest.history import fetch_trades

pytestmark = pytest.mark.usefixtures("no_thread_leak")


@contextmanager
def serve(answer):
    """A one-trick HTTP server on 127.0.0.1: ``answer(handler)`` writes each response."""
    stop = threading.Event()

    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def do_GET(self):  # noqa: N802 - http.server's name
            with suppress(OSError):
                answer(self, stop)

        def log_message(self, *args):
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05},
                              daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}"
    finally:
        stop.set()
        server.shutdown()
        server.server_close()
        thread.join(5)


def budget() -> Budget:
    return Budget("binance", 1e9, 1.0)


# --- parsers: a body of the wrong shape is a RestShapeError, whatever the shape ---------------
@pytest.mark.parametrize(("kind", "venue", "body"), [
    ("depth", "binance", []),                                  # a list, not an object
    ("depth", "coinbase-exchange", "NaN"),
    ("depth", "kraken", {"error": [], "result": {}}),          # no book in the result
    ("depth", "kraken", {"error": [], "result": []}),
    ("depth", "kraken", {"error": [], "result": {"XBTUSD": {
        "bids": [["1", "1", 1e308]], "asks": []}}}),           # a time of 1e308 s
    ("trades", "kraken", {"error": [], "result": {}}),
    ("trades", "kraken", {"error": [], "result": None}),
    ("trades", "coinbase", {"trades": [{"trade_id": "1", "time": "2023-01-01T00:00:00Z",
                                        "price": "1", "size": "1", "side": 5}]}),
    ("instruments", "okx", {"code": "0", "data": [{"instType": None}]}),
    ("instruments", "kraken", {"error": [], "result": {"X": None}}),
    ("instruments", "bitstamp", [{"name": 5}]),
])
def test_any_wrong_shape_is_a_shape_error(kind, venue, body):
    with pytest.raises(parse.RestShapeError, match=venue):
        getattr(parse, kind)(venue, body)


# --- paging: a venue that ignores the cursor ends the walk ------------------------------------
def test_from_id_paging_that_never_advances_ends():
    """A Binance-like venue that ignores ``fromId`` and answers the same old page each time
    would have the walk ask forever (the cursor never passes the range)."""
    calls = []

    def trades_page(symbol, from_id, limit):
        calls.append(from_id)
        if len(calls) > 50:
            raise AssertionError("the walk does not end: the cursor never advances")
        return [RestTrade(i, 10**18 + i, "1", "1", "buy") for i in range(1, 11)], None

    client = SimpleNamespace(venue="binance", trades_page=trades_page,
                             spec=SimpleNamespace(paging="fromId", page_size=10))
    assert fetch_trades(client, "BTC-USDT", 100, 200) == []
    assert len(calls) <= 2


# --- Retry-After: absurd values do not freeze a venue ----------------------------------------
@pytest.mark.parametrize("value", ["1e9", "inf", "Infinity", "nan", "1e400",
                                   "Fri, 31 Dec 9999 23:59:59 GMT"])
def test_an_absurd_retry_after_is_bounded(value):
    from rtkit.rest.client import MAX_RETRY_AFTER_S

    seconds = retry_after_s(value)
    assert seconds is None or 0.0 <= seconds <= MAX_RETRY_AFTER_S


def test_close_cuts_a_429_pause_short():
    """A 429 with a long Retry-After pauses the budget; ``close()`` (a collector's stop)
    must end a ``get`` waiting in that pause within seconds, not when the pause ends."""

    def answer(handler, stop):
        handler.send_response(429)
        handler.send_header("Retry-After", "600")
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"{}")

    with serve(answer) as url:
        client = RestClient("binance", url, budget=budget(), timeout_s=2.0)
        errors = []
        t = threading.Thread(target=lambda: errors.append(_get_error(client)), daemon=True)
        t.start()
        deadline = time.monotonic() + 10
        while client.stats["http_429"] == 0 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert client.stats["http_429"] == 1
        client.close()
        t.join(5)
        assert not t.is_alive(), "get() still waits for the 600 s pause after close()"
        assert errors and isinstance(errors[0], RestError)


def _get_error(client: RestClient):
    try:
        client.get(Request("/api/v3/depth", {"symbol": "BTCUSDT"}))
    except Exception as exc:  # noqa: BLE001 - the test inspects it
        return exc
    return None


# --- bodies: a trickle or a huge answer is cut off --------------------------------------------
def test_a_trickling_answer_is_cut_off():
    """A server that sends one byte a second never trips httpx's per-read timeout: the
    request must still end within a bound of ``timeout_s``."""

    def answer(handler, stop):
        handler.send_response(200)
        handler.send_header("Content-Length", str(2 * 10**9))
        handler.end_headers()
        handler.wfile.write(b"[")
        while not stop.wait(0.2):
            handler.wfile.write(b" ")
            handler.wfile.flush()

    with serve(answer) as url:
        client = RestClient("binance", url, budget=budget(), timeout_s=1.0, max_retries=0)
        t = threading.Thread(target=_get_error, args=(client,), daemon=True)
        started = time.monotonic()
        t.start()
        t.join(15)
        alive = t.is_alive()
        client.close()
        t.join(5)
        assert not alive, "a trickling answer kept get() waiting for 15 s (timeout_s=1)"
        assert time.monotonic() - started < 15


def test_a_declared_huge_answer_is_refused_with_a_message():
    def answer(handler, stop):
        handler.send_response(200)
        handler.send_header("Content-Length", str(2 * 10**9))
        handler.end_headers()
        handler.wfile.write(b"[]")

    with serve(answer) as url, RestClient("binance", url, budget=budget(), timeout_s=2.0,
                                          max_retries=0) as client, \
            pytest.raises(RestError, match="max_body_bytes"):
        client.get(Request("/api/v3/depth", {}))


CHILD = """
import socket, sys, threading
from tests.conftest import peak_rss_kib
from rtkit.rest.budget import Budget, RestError
from rtkit.rest.client import RestClient
from rtkit.rest.endpoints import Request

head, level, chunks, tail = {head!r}, {level!r}, {chunks!r}, {tail!r}
listener = socket.socket()
listener.bind(("127.0.0.1", 0))
listener.listen(1)

def serve():
    conn, _ = listener.accept()
    conn.recv(65536)
    conn.sendall(b"HTTP/1.1 200 OK\\r\\nTransfer-Encoding: chunked\\r\\n\\r\\n")
    def send(data):  # an empty chunk would end the answer
        if data:
            conn.sendall(b"%x\\r\\n" % len(data) + data + b"\\r\\n")
    body = level * ((1 << 20) // len(level))
    try:
        send(head)
        for _ in range(chunks):
            send(body)
        send(tail)
        conn.sendall(b"0\\r\\n\\r\\n")
    except OSError:
        pass
    conn.close()

threading.Thread(target=serve, daemon=True).start()
base = peak_rss_kib()
url = "http://127.0.0.1:%d" % listener.getsockname()[1]
client = RestClient("binance", url, budget=Budget("binance", 1e9, 1.0), timeout_s=10,
                    max_retries=0, {options})
try:
    {call}
    outcome = "read"
except RestError as exc:
    outcome = "refused" if "max_body_bytes" in str(exc) else repr(exc)
except Exception as exc:
    outcome = repr(exc)
print(outcome.replace(" ", "_"), (peak_rss_kib() - base) // 1024)
"""


def child_reads(call: str, options: str = "", *, head=b"", level=b"1", chunks=200,
                tail=b"") -> tuple[str, int]:
    """What ``call`` did in a child whose server sends a chunked answer of ``chunks`` MiB
    of ``level`` (between ``head`` and ``tail``), and how many MiB its peak memory grew."""
    from pathlib import Path

    code = CHILD.format(head=head, level=level, chunks=chunks, tail=tail, options=options,
                        call=call)
    root = Path(__file__).resolve().parents[1]
    result = subprocess.run([sys.executable, "-c", code], cwd=root, capture_output=True,
                            text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    outcome, grown_mib = result.stdout.split()
    return outcome, int(grown_mib)


def test_a_huge_undeclared_answer_stays_within_bounded_memory():
    """A chunked answer of 200 MB (no Content-Length) is read up to ``max_body_bytes`` only:
    the child's peak memory does not grow by the answer's size."""
    outcome, grown_mib = child_reads('client.get(Request("/api/v3/depth", {}))',
                                     "max_body_bytes=4 << 20")
    assert outcome == "refused"
    assert grown_mib < 60, f"peak memory grew {grown_mib} MiB reading a 200 MB answer"


@pytest.mark.parametrize("call", [
    'client.depth("BTC-USDT")',
    # the books' snapshots (rtkit.venues.book_fetch), through a client of their own
    'from rtkit.venues.book_fetch import rest_book_fetch; from rtkit.books.parse import '
    'binance; rest_book_fetch("binance", url, binance.rest_snapshot)("BTC-USDT")',
])
def test_a_huge_depth_snapshot_stays_within_bounded_memory(call):
    """A depth snapshot of 30 MB of tiny levels parses into ~400 MB of Python objects: a
    snapshot is refused past MAX_DEPTH_BODY_BYTES, well below the client's general cap."""
    outcome, grown_mib = child_reads(
        call, head=b'{"lastUpdateId": 1, "asks": [], "bids": [',
        level=b'["1","1"],', chunks=30, tail=b'["1","1"]]}')
    assert outcome == "refused"
    assert grown_mib < 100, f"peak memory grew {grown_mib} MiB reading a 30 MB snapshot"


def test_html_where_json_was_expected_is_a_rest_error():
    """A captive portal or proxy answering 200 with HTML: a RestError that says so, not an
    orjson decode error."""

    def answer(handler, stop):
        body = b"<html><body>Please log in</body></html>"
        handler.send_response(200)
        handler.send_header("Content-Type", "text/html")
        handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)

    with serve(answer) as url, RestClient("binance", url, budget=budget(),
                                          max_retries=0) as client, \
            pytest.raises(RestError, match="not JSON"):
        client.get(Request("/api/v3/depth", {}))



@pytest.mark.parametrize("venue", ["binance", "bitstamp"])
def test_a_book_snapshot_in_flight_ends_with_the_collector(venue, tmp_path):
    """A venue that trickles a snapshot: ``stop()`` returns at once, and the book's fetch
    thread must end with it, not retry its request (each up to its deadline) for minutes,
    sending the venue requests from a collector that was stopped."""
    import rtkit
    from rtkit.sim import Simulator, get_dialect
    from tests.conftest import rtkit_threads, wait_for

    asked = threading.Event()

    def answer(handler, stop):
        asked.set()
        handler.send_response(200)
        handler.send_header("Content-Length", "100000")
        handler.end_headers()
        handler.wfile.write(b"{")
        while not stop.wait(0.1):
            handler.wfile.write(b" ")
            handler.wfile.flush()

    symbol = get_dialect(venue).example_symbols[0]
    with serve(answer) as url, Simulator(venue, rate=100, seed=1) as sim:
        c = rtkit.collect(venue, [symbol], url=sim.url, rest_url=url,
                          kinds=("trades", "book"), db=tmp_path / "b.sqlite")
        try:
            assert asked.wait(15)
        finally:
            c.stop()
        wait_for(lambda: not [t for t in rtkit_threads() if t.name.startswith("rtkit-book")], 5)


@pytest.mark.parametrize("used", ["\u00b2", "9" * 30])
def test_a_hostile_used_weight_header_neither_raises_nor_freezes_the_budget(used):
    """``'²'.isdigit()`` is True and ``float('²')`` raises: a ValueError out of ``get``; a
    used weight of 10**30 would fill the budget far past the venue's own limit."""

    def answer(handler, stop):
        handler.send_response(200)
        handler.send_header("X-MBX-USED-WEIGHT-1M", used)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"{}")

    b = budget()
    with serve(answer) as url, RestClient("binance", url, budget=b, max_retries=0) as client:
        assert client.get(Request("/api/v3/depth", {})) == {}
    assert b.used() <= b.limit


def test_since_paging_whose_ids_never_advance_ends():
    """A Kraken-like venue whose ``last`` cursor moves on while it answers the same old
    trades each time would have the walk ask forever."""
    calls = []

    def trades_page(symbol, since, limit):
        calls.append(since)
        if len(calls) > 50:
            raise AssertionError("the walk does not end: the ids never advance")
        page = [RestTrade(i, 10**18 + i, "1", "1", "buy") for i in range(1, 11)]
        return page, since + 1_000  # the cursor advances, the trades do not

    client = SimpleNamespace(venue="kraken", trades_page=trades_page,
                             spec=SimpleNamespace(paging="since", page_size=10))
    assert fetch_trades(client, "BTC-USD", 100, 200, since_ns=5) == []
    assert len(calls) <= 2


def test_since_paging_goes_on_through_pages_older_than_the_gap():
    """The time hint may lie many trades before the gap: pages wholly below it still
    move the ids on, so the walk goes on to the missing ones."""
    def trades_page(symbol, since, limit):
        first = since + 1
        return [RestTrade(i, 10**18 + i, "1", "1", "buy")
                for i in range(first, first + limit)], first + limit - 1

    client = SimpleNamespace(venue="kraken", trades_page=trades_page,
                             spec=SimpleNamespace(paging="since", page_size=10))
    got = fetch_trades(client, "BTC-USD", 100, 120, since_ns=1)
    assert [t.trade_id for t in got] == list(range(100, 121))
