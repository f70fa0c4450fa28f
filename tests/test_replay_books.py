"""Replay rebuilds the books: a recording keeps the keeper's start and every REST
answer where the live keeper took it, so a replay into a fresh database makes the
same ``book_deltas``, ``book_events`` and ``quotes`` rows as the live run, with no
network and no wall clock; forged REST events are counted bad lines."""

from __future__ import annotations

import sqlite3

import orjson
import pytest

import rtkit
from rtkit.cli import main
from rtkit.recording import BooksStart, read_recording
from rtkit.replay import replay
from rtkit.sim import Faults, Simulator
from tests.conftest import wait_for

pytestmark = pytest.mark.usefixtures("no_thread_leak")

#: every column of each table: none is wall-clock by nature (the books' start is recorded)
TABLES = {
    "book_deltas": "venue, symbol, timestamp, received_at, seq, is_snapshot, side, price, size",
    "book_events": "venue, symbol, at, from_state, to_state, reason, seq, not_live_s",
    "quotes": "venue, symbol, timestamp, received_at, bid_price, bid_size, ask_price, ask_size, "
              "seq",
}


def rows(db, table: str) -> list[tuple]:
    with sqlite3.connect(db) as con:
        return sorted(con.execute(f"SELECT {TABLES[table]} FROM {table}").fetchall(),
                      key=repr)


def assert_same_books(live, replayed) -> None:
    for table in TABLES:
        assert rows(replayed, table) == rows(live, table), table


def test_a_bybit_run_with_book_faults_replays_to_the_same_books(tmp_path):
    live, recording = tmp_path / "live.sqlite", tmp_path / "run.jsonl.gz"
    sim = Simulator("bybit", rate=200, count=300, book_rate=1_000.0, book_count=1_500, seed=5,
                    faults=Faults(book_drop_every=200, book_close_every=700))
    sim.start()
    c = rtkit.Collector("bybit", ["BTC-USDT", "ETH-USDT"], url=sim.url, db=live,
                        kinds=["trades", "quotes", "book"], record_raw=recording,
                        backoff_initial_s=0.05, flush_interval_s=0.2)
    try:
        c.start()
        wait_for(lambda: sim.books.messages >= 1_500 and c.stats["book_resyncs"] >= 2
                 and c.stats["stored"] >= 300, 60)
    finally:
        c.stop()
        sim.stop()
    s = c.stats
    assert s["book_desyncs"] >= 2 and c.reconnects >= 1  # faults were seen and healed
    summary = replay(recording, tmp_path / "replayed.sqlite")
    assert summary["bad_lines"] == 0 and summary["rows_not_collected"] == 0
    assert summary["book_deltas"] == s["book_deltas"] and summary["quotes"] == s["quotes"]
    assert_same_books(live, tmp_path / "replayed.sqlite")
    with sqlite3.connect(live) as con:
        events = con.execute("SELECT count(*) FROM book_events WHERE to_state = 'desynced'")
        assert events.fetchone()[0] == s["book_desyncs"]
    starts = [e for e in read_recording(recording) if type(e) is BooksStart]
    assert [(e.venue, e.symbols, e.max_levels) for e in starts] == [
        ("bybit", ("BTC-USDT", "ETH-USDT"), 50)]


def test_replay_kinds_narrow_what_is_rebuilt(tmp_path, capsys):
    live, recording = tmp_path / "live.sqlite", tmp_path / "run.jsonl"
    sim = Simulator("bybit", rate=200, count=50, book_rate=500.0, book_count=200, seed=6)
    sim.start()
    c = rtkit.Collector("bybit", ["BTC-USDT"], url=sim.url, db=live,
                        kinds=["trades", "quotes", "book"], record_raw=recording,
                        flush_interval_s=0.2)
    try:
        c.start()
        wait_for(lambda: c.stats["book_messages"] >= 200 and c.stats["stored"] >= 50, 30)
    finally:
        c.stop()
        sim.stop()
    only = tmp_path / "trades.sqlite"
    assert main(["replay", str(recording), "--db", str(only), "--kinds", "trades", "--json"]) == 0
    summary = orjson.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert summary["stored"] == 50 and summary["rows_not_collected"] > 0
    with sqlite3.connect(only) as con:
        assert not con.execute("SELECT name FROM sqlite_master WHERE name = 'book_deltas'"
                               ).fetchall()
    books = tmp_path / "books.sqlite"
    assert main(["replay", str(recording), "--db", str(books), "--kinds", "trades,book"]) == 0
    assert rows(books, "book_deltas") == rows(live, "book_deltas")
    assert rows(books, "book_events") == rows(live, "book_events")
