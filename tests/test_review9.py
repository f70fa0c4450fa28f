"""Review 9: the backfill's REST client made at the first gap (e9f5a0e), and the writer
process's smaller imports (1d20415)."""

from __future__ import annotations

import sqlite3
import subprocess
import sys
import threading

import pytest

from rtkit.backfill import Backfiller
from rtkit.buffer import RingBuffer
from rtkit.gaps import GapLedger
from rtkit.pipeline import Pipeline
from rtkit.store import TickStore
from rtkit.venues import get_adapter

#: loopback only: no request goes out in these tests, and none could reach a venue
NOWHERE = "http://127.0.0.1:9"


def _backfiller(db, stop: threading.Event) -> Backfiller:
    TickStore(db).close()  # the file, with its gaps table
    pipeline = Pipeline(get_adapter("binance"), RingBuffer(100))
    return Backfiller(pipeline, db, NOWHERE, max_trades=100, stop=stop, poll_s=0.01)


def _pending_gap(db, first: str | None, last: str | None) -> None:
    with sqlite3.connect(db) as conn:
        conn.execute("INSERT INTO gaps (venue, symbol, first_missing, last_missing, missing, "
                     "seen_at, kind, status) VALUES ('binance', 'BTC-USDT', ?, ?, 5, "
                     "1764000000000000000, 'ids', 'pending')", (first, last))


def test_a_gap_with_no_id_range_ends_unfillable_without_an_http_client(db):
    """Such a gap needs no REST request: making the client for it (importing httpx and
    loading the CA bundle, ~60 ms of the interpreter lock) is the stall the lazy client
    avoids, and it would come while the feed is busy."""
    b = _backfiller(db, threading.Event())
    _pending_gap(db, None, None)
    conn = sqlite3.connect(db)
    try:
        ledger = GapLedger(conn)
        gap = ledger.claim("binance")
        assert gap is not None
        b._fill(ledger, gap)
        assert conn.execute("SELECT status, why FROM gaps").fetchall() == \
            [("unfillable", "no id range to fill")]
    finally:
        conn.close()
    assert b.client is None


def test_a_stop_while_the_client_is_made_closes_it_and_gives_the_gap_back(db, monkeypatch):
    """abort() (after the stop event) finds no client while it is being made: the
    thread closes it itself, gives the gap back and ends, leaving no open client."""
    from rtkit.rest.client import RestClient

    making, go = threading.Event(), threading.Event()
    made = RestClient.__init__

    def slow_init(self, *args, **kwargs):
        making.set()
        assert go.wait(10)
        made(self, *args, **kwargs)

    monkeypatch.setattr(RestClient, "__init__", slow_init)
    stop = threading.Event()
    b = _backfiller(db, stop)
    _pending_gap(db, "5", "9")
    thread = threading.Thread(target=b.run, daemon=True)
    thread.start()
    try:
        assert making.wait(10)
        stop.set()
        b.abort()  # as Collector.stop does: nothing to close yet
        assert b.client is None
    finally:
        go.set()
        thread.join(10)
    assert not thread.is_alive()
    assert b.client is not None and b.client._http.is_closed
    with sqlite3.connect(db) as conn:  # still pending, and no longer claimed
        assert conn.execute("SELECT status, claimed_at FROM gaps").fetchall() == \
            [("pending", None)]


@pytest.mark.parametrize("first", ["rtkit.kinds.trades", "rtkit.validate", "rtkit.store",
                                   "rtkit.onchain", "rtkit.runtime.writer_child",
                                   "rtkit.backfill", "rtkit.venues"])
def test_each_module_imports_first_without_the_package_init(first):
    """The writer process runs the package without its __init__: a module imported first
    there (the side codes moved from validate to the trades kind) meets no import cycle,
    and validate still re-exports the side codes as the trades kind has them."""
    code = (
        "import sys\n"
        "from pathlib import Path\n"
        "sys.path.insert(0, '.')\n"
        "import runpy\n"
        "boot = runpy.run_path('rtkit/runtime/writer_boot.py')\n"
        "boot['register_package'](Path('.').resolve())\n"
        f"import {first}\n"
        "import rtkit.validate as v, rtkit.kinds.trades as t, rtkit.store as s\n"
        "assert (v.BUY, v.SELL, v.UNKNOWN_SIDE, v.SIDE_TEXT) == "
        "(t.BUY, t.SELL, t.UNKNOWN_SIDE, t.SIDE_TEXT) == (0, 1, -1, {0: 'buy', 1: 'sell', "
        "-1: None})\n"
        "assert s._stored_symbol('binance', 'btcusdt') == 'BTC-USDT'\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         timeout=60)
    assert out.stdout.strip() == "ok", out.stderr[-2000:]
