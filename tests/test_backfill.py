"""Backfill (issue 14): the trades a gap misses come from the venue's REST history, through
the same checks into the ring and SQLite, each once; the gap ledger says what became of
each gap. Against the simulator's WebSocket and REST sides on loopback."""

from __future__ import annotations

import sqlite3

import pytest

import rtkit
from rtkit.sim import Faults, Simulator, get_dialect
from rtkit.sim.rest import SimRest
from tests.conftest import wait_for
from tests.test_redundancy import expected, stored

pytestmark = pytest.mark.usefixtures("no_thread_leak")

RATE = 4_000
COUNT = 3_000


def ledger(db) -> list[tuple]:
    return sqlite3.connect(db).execute(
        "SELECT status, why, missing, filled FROM gaps WHERE missing IS NOT NULL "
        "ORDER BY id").fetchall()


def run(venue: str, db, faults: Faults, *, done, count: int = COUNT, record=None,
        rest_faults=(), **options):
    """Collect ``venue`` from a simulator that loses frames, until ``done(c, sim)``."""
    dialect = get_dialect(venue)
    symbol = dialect.example_symbols[0]
    with Simulator(venue, rate=RATE, count=count, seed=21, faults=faults) as sim, \
            SimRest(sim) as rest:
        for status, n in rest_faults:
            rest.inject(status, n, retry_after_s=60)
        c = rtkit.collect(venue, [symbol], url=sim.url, db=db, flush_interval_s=0.05,
                          record_raw=record, **options)
        try:
            wait_for(lambda: sim.all_sent, 20)
            wait_for(lambda: done(c, sim), 30)
        finally:
            c.stop()
        trades = [t for t in sim.trades if t.symbol == symbol]
    return c, dialect, sim, trades, rest


def all_stored(c, sim) -> bool:
    return c.stats["stored"] >= len(sim.trades) and c.stats["gaps_open"] == 0


@pytest.mark.parametrize("venue", ["binance", "okx"])
def test_every_lost_trade_is_filled_and_stored_once(venue, db):
    c, dialect, sim, trades, rest = run(venue, db, Faults(lose_every=97), done=all_stored)
    assert sim.lost_frames >= 20
    assert stored(db) == expected(dialect, trades)  # every trade, with its values, once
    rows = ledger(db)
    assert len(rows) >= 20 and {r[0] for r in rows} == {"filled"}
    assert all(r[2] == r[3] for r in rows)
    s = c.stats
    assert s["backfilled"] == sum(r[3] for r in rows) == s["missing_trades"]
    assert s["gaps_open"] == 0
    assert s["ticks"] == (s["stored"] + s["duplicates"] + s["pending"] + s["dropped_overflow"]
                          + s["unstorable"])
    # a backfilled row is a live one but for when it was received: after its trade
    times = dict(sqlite3.connect(db).execute("SELECT trade_id, received_at FROM ticks"))
    assert all(times[str(dialect.expected_trade_id(t))] >= t.ts_ns for t in trades)


def test_without_backfill_gaps_stay_pending(db):
    def seen(c, sim):
        return c.stats["ticks"] + sim.lost_frames >= COUNT and c.stats["pending"] == 0

    c, dialect, sim, trades, rest = run("binance", db, Faults(lose_every=97), done=seen,
                                        backfill=False)
    assert c.backfiller is None
    assert {r[0] for r in ledger(db)} == {"pending"} and c.stats["backfilled"] == 0
    assert len(stored(db)) == COUNT - sim.lost_frames
    assert sum(rest.requests.values()) == 0


def test_a_reconnect_gap_over_backfill_max_is_filled_up_to_it(db):
    def closed(c, sim):
        return c.stats["reconnects"] >= 1 and c.stats["gaps_open"] == 0 \
            and c.stats["pending"] == 0

    dialect = get_dialect("binance")
    symbol = dialect.example_symbols[0]
    with Simulator("binance", rate=RATE, count=4000, seed=22, broadcast=True,
                   faults=Faults(drop_every=1000, faulty_connections=(1,))) as sim, SimRest(sim):
        c = rtkit.collect("binance", [symbol], url=sim.url, db=db, flush_interval_s=0.05,
                          backoff_initial_s=0.3, backfill_max=10)
        try:
            wait_for(lambda: sim.all_sent, 20)
            wait_for(lambda: closed(c, sim), 30)
        finally:
            c.stop()
    rows = [r for r in ledger(db) if r[2] > 10]
    assert rows, ledger(db)  # the reconnect lost more than 10 trades
    for status, why, _missing, filled in rows:
        assert (status, filled) == ("partial", 10)
        assert "larger than backfill_max (10)" in why


def test_a_ban_marks_the_gap_unfillable_and_says_so(db):
    def closed(c, sim):
        return c.stats["gaps_open"] == 0 and c.stats["pending"] == 0

    c, dialect, sim, trades, rest = run("binance", db, Faults(lose_every=1000), done=closed,
                                        count=2000, rest_faults=[(418, 1)])
    rows = ledger(db)
    assert rows and {r[0] for r in rows} == {"unfillable"}
    assert all("418" in r[1] and "budget exhausted" in r[1] for r in rows)
    assert c.stats["backfilled"] == 0
    assert rest.statuses[418] == 1  # no request after the ban
    assert sum(rest.requests.values()) == 1


def test_a_replay_of_a_run_that_backfilled_stores_the_same_ticks(db, tmp_path):
    record = tmp_path / "raw.jsonl"
    c, dialect, sim, trades, rest = run("okx", db, Faults(lose_every=97), done=all_stored,
                                        record=record)
    assert c.stats["backfilled"] > 0
    replayed = tmp_path / "replay.sqlite"
    summary = rtkit.replay(record, db=replayed)
    assert stored(replayed) == stored(db) == expected(dialect, trades)
    live = sqlite3.connect(db).execute("SELECT * FROM ticks ORDER BY trade_id").fetchall()
    again = sqlite3.connect(replayed).execute("SELECT * FROM ticks ORDER BY trade_id").fetchall()
    assert live == again  # received_at too: the backfilled ones as fetched
    assert summary["rejected"] == 0


def test_a_venue_that_cannot_fill_starts_no_backfill(db):
    c = rtkit.Collector("bybit", ["BTC-USDT"], db=db, url="ws://127.0.0.1:9/")
    assert c.backfiller is None


def test_backfill_options_are_checked_and_reach_the_cli(db):
    with pytest.raises(ValueError, match="backfill_max must be a whole number of trades >= 1"):
        rtkit.Collector("binance", ["BTC-USDT"], db=db, backfill_max=0)
    with pytest.raises(ValueError, match="backfill must be True or False"):
        rtkit.Collector("binance", ["BTC-USDT"], db=db, backfill="no")
    from rtkit.cli import _parser

    args = _parser().parse_args(["collect", "binance", "BTC-USDT", "--no-backfill",
                                 "--backfill-max", "7"])
    assert (args.backfill, args.backfill_max) == (False, 7)
    args = _parser().parse_args(["collect", "binance", "BTC-USDT"])
    assert (args.backfill, args.backfill_max) == (True, 50_000)


def test_stop_cuts_a_slow_fill_short_and_gives_the_gap_back(db):
    dialect = get_dialect("binance")
    with Simulator("binance", rate=RATE, count=1000, seed=23,
                   faults=Faults(lose_every=500)) as sim, SimRest(sim) as rest:
        rest.inject(200, 5, delay_s=8.0)  # a venue that answers, but slowly
        c = rtkit.collect("binance", [dialect.example_symbols[0]], url=sim.url, db=db,
                          flush_interval_s=0.05)
        try:
            wait_for(lambda: sum(rest.requests.values()) >= 1, 20)
        finally:
            c.stop()
        assert not c.running  # stop() kept its bound, the slow request notwithstanding
        thread = c._backfill_thread
        assert thread is not None
        wait_for(lambda: not thread.is_alive(), 20)  # within the request's timeout
    rows = ledger(db)
    assert rows and rows[0][0] == "pending" and c.stats["backfilled"] == 0
    claimed = sqlite3.connect(db).execute("SELECT claimed_at FROM gaps").fetchall()
    assert all(r[0] is None for r in claimed)  # given back: the next run claims it


def test_a_rest_trades_event_is_parsed_strictly():
    import orjson

    from rtkit.recording import MAX_RECORDED_REST_TRADES, parse_line

    def line(**changes):
        obj = {"event": "rest_trades", "received_at": 10**18, "venue": "okx",
               "symbol": "BTC-USDT", "trades": [[5, 10**18, "1.5", "2", "buy"]], **changes}
        return orjson.dumps(obj)

    event = parse_line(line())
    assert (event.event, event.symbol, event.trades) == (
        "rest_trades", "BTC-USDT", ((5, 10**18, "1.5", "2", "buy"),))
    hostile = [{"symbol": ""}, {"symbol": "X" * 65}, {"symbol": 3}, {"trades": []},
               {"trades": [[5, 1, "1", "1", "buy"]] * (MAX_RECORDED_REST_TRADES + 1)},
               {"trades": [[5, 1, 1.5, "1", "buy"]]}, {"trades": [[5, 1, "1", "1", "up"]]},
               {"trades": [[-1, 1, "1", "1", "buy"]]}, {"trades": [[5, 0, "1", "1", "buy"]]},
               {"trades": [[5, 1, "1", "1"]]}, {"trades": [[True, 1, "1", "1", "buy"]]},
               {"trades": [[5, 1, "9" * 65, "1", "buy"]]}, {"trades": {"a": 1}}]
    for change in hostile:
        with pytest.raises(ValueError):
            parse_line(line(**change))


def test_ids_the_venue_no_longer_keeps_are_unfillable_and_say_so(db):
    def closed(c, sim):
        return c.stats["gaps_open"] == 0 and c.stats["pending"] == 0 and c.stats["gaps"]

    dialect = get_dialect("binance")
    with Simulator("binance", rate=RATE, count=2000, seed=24,
                   faults=Faults(lose_every=300)) as sim, SimRest(sim, tape_size=5):
        c = rtkit.collect("binance", [dialect.example_symbols[0]], url=sim.url, db=db,
                          flush_interval_s=0.05)
        try:
            wait_for(lambda: sim.all_sent, 20)
            wait_for(lambda: closed(c, sim), 30)
        finally:
            c.stop()
    rows = ledger(db)  # the simulator's REST side keeps only its last 5 trades
    assert rows and {r[0] for r in rows} == {"unfillable"}
    assert all(r[1].startswith("older than the venue keeps") and r[3] == 0 for r in rows)
