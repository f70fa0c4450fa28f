"""The gap ledger: each gap row says what became of it (pending, filled, partial,
unfillable, and why), a backfiller can claim one, old files gain the columns in
place, and completeness per symbol is trades stored / trades the ids say existed."""

from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import rtkit
from rtkit.analysis import completeness, quality
from rtkit.buffer import RingBuffer
from rtkit.gaps import CANNOT_FILL, GapDetector, GapLedger
from rtkit.pipeline import Pipeline
from rtkit.sim import Faults, Simulator
from rtkit.store import TickStore
from rtkit.venues import get_adapter
from tests.conftest import wait_for

#: the schema of a file rtkit made before the ledger (captured from main)
OLD_SCHEMA = json.loads((Path(__file__).parent / "sqlite_schema_before.json").read_text())["trades"]


def ledger(db) -> list[tuple]:
    return sqlite3.connect(db).execute(
        "SELECT kind, status, why, filled, filled_at FROM gaps ORDER BY id").fetchall()


def test_id_gaps_of_a_venue_that_can_fill_are_pending(db):
    """Binance skips ids (the simulator's skip_id_every): every id gap is ``pending``
    with nothing filled yet, and ``c.stats`` counts them open."""
    with Simulator("binance", rate=4000, count=2000, seed=3,
                   faults=Faults(skip_id_every=250)) as sim:
        c = rtkit.collect("binance", ["BTC-USDT"], url=sim.url, db=db, flush_interval_s=0.1,
                          backfill=False)  # the ledger as it is before a backfill
        wait_for(lambda: c.stats["ticks"] >= 2000, 20)
        c.stop()
    rows = ledger(db)
    assert len(rows) == sim.market.skipped_ids == 8
    assert set(rows) == {("ids", "pending", None, 0, None)}
    s = c.stats
    assert s["gaps_open"] == s["gaps"] == 8 and s["backfilled"] == 0
    assert s["completeness"] == pytest.approx(s["stored"] / (s["stored"] + 8))


@pytest.mark.parametrize("venue", ["bybit", "bitstamp"])
def test_a_venue_that_cannot_fill_says_so_per_gap(db, venue):
    """A reconnect on Bybit or Bitstamp (no ids to fill by) is ``unfillable``, with why:
    never a silent gap; nothing is counted open."""
    symbol = "BTC-USD" if venue == "bitstamp" else "BTC-USDT"
    with Simulator(venue, rate=2000, seed=4, faults=Faults(drop_every=100)) as sim:
        c = rtkit.collect(venue, [symbol], url=sim.url, db=db, flush_interval_s=0.1,
                          backoff_initial_s=0.05)
        wait_for(lambda: sim.connections >= 3 and c.stats["reconnect_marks"] >= 2, 20)
        c.stop()
    rows = ledger(db)
    assert len(rows) == c.stats["reconnect_marks"] >= 2
    assert set(rows) == {("reconnect", "unfillable", CANNOT_FILL, 0, None)}
    assert c.stats["gaps_open"] == 0 and c.stats["completeness"] is None


def test_a_reconnect_where_the_ids_tell_is_a_mark_without_status(db):
    p = Pipeline(get_adapter("binance"), RingBuffer(100))
    p.connection_opened(1)
    p.connection_opened(2)
    p.connection_opened(3, covered=True)  # a handover's successor: no hole to mark
    with TickStore(db) as store:
        store.write(*p.take())
    assert ledger(db) == [("reconnect", None, None, None, None)]


def make_old_file(path) -> None:
    conn = sqlite3.connect(path)
    for _kind, _, _, sql in sorted(OLD_SCHEMA, key=lambda row: row[0] != "table"):
        if sql:
            conn.execute(sql)
    conn.executemany("INSERT INTO gaps (venue, symbol, first_missing, last_missing, missing, "
                     "seen_at, kind) VALUES (?, ?, ?, ?, ?, ?, ?)", [
                         ("binance", "BTC-USDT", "5", "9", 5, 1, "ids"),
                         ("okx", "ETH-USDT", "7", "7", 1, 2, "ids_across_reconnect"),
                         ("binance", "*", None, None, None, 3, "reconnect"),
                         ("generic", "X-Y", "1", "2", 2, 4, "ids")])
    conn.commit()
    conn.close()


def test_a_file_from_before_the_ledger_is_migrated_in_place(db):
    make_old_file(db)
    TickStore(db).close()
    TickStore(db).close()  # a second open changes nothing more
    columns = [r[1] for r in sqlite3.connect(db).execute("PRAGMA table_info(gaps)")]
    assert columns[-5:] == ["status", "why", "filled_at", "filled", "claimed_at"]
    assert ledger(db) == [("ids", "pending", None, 0, None),
                          ("ids_across_reconnect", "pending", None, 0, None),
                          ("reconnect", None, None, None, None),
                          ("ids", "unfillable", CANNOT_FILL, 0, None)]


def test_a_backfiller_claims_each_pending_gap_once_and_records_the_outcome(db):
    make_old_file(db)
    with TickStore(db) as store:
        book = GapLedger(store.conn, stale_claim_s=60)
        first = book.claim(now_ns=10**18)
        second = book.claim(now_ns=10**18)
        assert (first.venue, first.first_missing, first.last_missing, first.missing) == \
            ("binance", "5", "9", 5)
        assert second.venue == "okx"
        assert book.claim(now_ns=10**18) is None  # both taken, the rest not pending
        assert book.claim(now_ns=10**18 + 61 * 10**9).id == first.id  # abandoned: again
        book.finish(first.id, "partial", filled=3, why="older than the venue keeps", at_ns=7)
        book.release(second.id)
        assert [g.id for g in book.pending()] == [second.id]
        book.finish(second.id, "filled", filled=1, at_ns=8)
        with pytest.raises(ValueError, match="say why"):
            book.finish(second.id, "unfillable", filled=0)
        with pytest.raises(ValueError, match="filled, partial or unfillable"):
            book.finish(second.id, "pending", filled=0)
    assert ledger(db)[:2] == [("ids", "partial", "older than the venue keeps", 3, 7),
                              ("ids_across_reconnect", "filled", None, 1, 8)]


def test_stats_count_what_a_backfiller_closed():
    p = Pipeline(get_adapter("binance"), RingBuffer(100))
    for tid in (1, 2, 6, 7, 20):
        p.process(b'{"e":"trade","s":"BTCUSDT","t":%d,"p":"1","q":"1","T":1764000000000,'
                  b'"m":true}' % tid, 1)
    assert (p.stats()["gaps_open"], p.stats()["backfilled"]) == (2, 0)
    p.gap_closed(3)
    assert (p.stats()["gaps_open"], p.stats()["backfilled"]) == (1, 3)


def test_completeness_per_symbol_is_stored_over_what_the_ids_say_existed():
    ticks = pd.DataFrame({
        "venue": ["binance"] * 6 + ["bybit"] * 2, "symbol": ["BTC-USDT"] * 4 + ["ETH-USDT"] * 2
        + ["BTC-USDT"] * 2,
        "timestamp": pd.to_datetime(np.arange(8), unit="s", utc=True),
        "received_at": pd.to_datetime(np.arange(8) + 1, unit="s", utc=True)})
    gaps = pd.DataFrame({
        "venue": ["binance", "binance", "binance", "bybit"],
        "symbol": ["BTC-USDT", "BTC-USDT", "*", "*"],
        "kind": ["ids", "ids_across_reconnect", "reconnect", "reconnect"],
        "missing": [4, 2, None, None], "status": ["partial", "pending", None, "unfillable"],
        "filled": [2, 0, None, 0]})
    out = completeness(ticks, gaps)
    assert out.loc[("binance", "BTC-USDT")].tolist() == [4, 4, 0.5]  # 2 + 2 still missing
    assert out.loc[("binance", "ETH-USDT"), "completeness"] == 1.0
    assert np.isnan(out.loc[("bybit", "BTC-USDT"), "completeness"])  # the ids cannot say
    q = quality(ticks, gaps=gaps)
    assert q.loc["binance", "completeness"] == 6 / 10 and np.isnan(q.loc["bybit", "completeness"])
    assert q.loc["binance", "gaps_open"] == 1


def test_unseen_runs_are_what_a_gap_still_misses():
    d = GapDetector()
    d.check("S", 1, 1)
    d.check("S", 20, 20)  # gap 2..19
    for late in (2, 3, 7, 8, 9, 19):
        assert d.check("S", late, late) == "late"
    assert d.unseen_runs("S", 2, 19) == [(4, 6), (10, 18)]
    assert d.unseen_runs("S", 7, 9) == []


def test_a_gap_the_other_connection_fills_is_no_gap_row(db):
    """With two connections feeding the pipeline, an id one of them skipped is held, and
    only what neither brought within GAP_HOLD_S becomes a gaps row."""
    p = Pipeline(get_adapter("binance"), RingBuffer(100))
    p.connection_opened(1)
    p.connection_opened(2, covered=True)
    p.live_sources = 2  # as the receiver counts them

    def frame(tid: int) -> bytes:
        return (b'{"e":"trade","s":"BTCUSDT","t":%d,"p":"1","q":"1","T":1764000000000,'
                b'"m":true}' % tid)

    for tid in (1, 2, 5, 6, 3):  # 3 and 4 skipped by the first; 3 comes on the other
        p.process(frame(tid), 1)
    assert p.stats()["gaps"] == 0  # held, not written
    p.release_held_gaps(force=True)
    s = p.stats()
    assert (s["gaps"], s["missing_trades"], s["gaps_open"]) == (1, 1, 1)
    with TickStore(db) as store:
        store.write(*p.take())
    assert sqlite3.connect(db).execute(
        "SELECT first_missing, last_missing, missing, status FROM gaps").fetchall() == [
            ("4", "4", 1, "pending")]
