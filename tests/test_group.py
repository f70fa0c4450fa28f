"""Several venues at once (CollectorGroup) against simulators whose prices move together."""

import socket
import statistics
import time

import pandas as pd
import pytest

import rtkit
from rtkit.analysis import spread
from rtkit.sim import CommonFactor, Market, Simulator
from tests.conftest import wait_for

SPEC = {"binance": ["BTC-USDT", "ETH-USDT"], "coinbase": ["BTC-USD"]}


def test_markets_sharing_a_factor_stay_together_where_independent_ones_drift():
    def spreads_bps(one, other):
        out = []
        for step in range(4000):  # 40 s of trades, 10 ms apart, on an explicit clock
            now = 1_800_000_000 * 10**9 + step * 10**7
            a, b = float(one.trade("BTC-USDT", now).price), float(other.trade("BTC-USD", now).price)
            out.append((a - b) / b * 1e4)
        return out

    factor = CommonFactor(seed=1)
    together = spreads_bps(Market(1, common=factor), Market(2, common=factor))
    apart = spreads_bps(Market(1), Market(2))
    assert statistics.pstdev(together) < 30 and max(map(abs, together)) < 100
    assert statistics.pstdev(apart) > 5 * statistics.pstdev(together)


def test_a_factor_moves_with_time_not_with_calls():
    factor = CommonFactor(seed=3)
    first = factor.price("BTC", 10**18)
    assert factor.price("BTC", 10**18) == first  # same instant, same price
    assert factor.price("BTC", 10**18 + 60 * 10**9) != first


@pytest.mark.usefixtures("no_thread_leak")
def test_two_venues_one_database_one_view_one_stop(db):
    factor = CommonFactor(seed=7)
    with Simulator("binance", rate=2000, count=800, seed=1, common=factor) as binance, \
            Simulator("coinbase", rate=2000, count=400, seed=2, common=factor) as coinbase:
        g = rtkit.collect_many(SPEC, db=db, flush_interval_s=0.1, name="arb",
                               urls={"binance": binance.url, "coinbase": coinbase.url})
        assert g.running and set(g.collectors) == {"binance", "coinbase"}
        wait_for(lambda: g.stats["binance"]["stored"] >= 800
                 and g.stats["coinbase"]["stored"] >= 400, 15)
        df = g.df
        started = time.monotonic()
        g.stop()
        stop_s = time.monotonic() - started
    assert stop_s < 2.0 and not g.running
    assert {venue: str(status) for venue, status in g.status.items()} == {
        "binance": "stopped", "coinbase": "stopped"}
    assert g["binance"].name == "arb:binance"
    # one combined view, tick dtypes kept, in trade-time order
    assert len(df) == 1200 and df["timestamp"].is_monotonic_increasing
    assert df.groupby("venue", observed=True).size().to_dict() == {"binance": 800, "coinbase": 400}
    assert set(df["symbol"].cat.categories) == {"BTC-USDT", "ETH-USDT", "BTC-USD"}
    assert (df["venue"].dtype, df["trade_id"].dtype) == ("category", "int64")
    assert g.tail(5)["timestamp"].is_monotonic_increasing and len(g.tail(5)) == 5
    # per-venue counters, and one database holding both
    assert (g.stats["binance"]["ticks"], g.stats["coinbase"]["ticks"]) == (800, 400)
    with g.store() as store:
        assert store.count() == 1200 and set(store.runs()["venue"]) == {"binance", "coinbase"}
    # prices that share a factor give spreads of a few basis points, not a drift
    s = spread(df, ("binance", "BTC-USDT"), ("coinbase", "BTC-USD"), "100ms",
               quote_map={"USDT": "USD"})
    assert not s.empty and s["spread_bps"].abs().median() < 50


@pytest.mark.usefixtures("no_thread_leak")
def test_with_block_stops_every_venue(db, unused_port):
    urls = {v: f"ws://127.0.0.1:{unused_port}/ws" for v in SPEC}
    with rtkit.CollectorGroup(SPEC, db=db, urls=urls, backoff_initial_s=5.0) as g:
        wait_for(lambda: all(s == "backoff" for s in g.status.values()))
        started = time.monotonic()
    assert time.monotonic() - started < 2.0 and not g.running


@pytest.fixture
def unused_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.parametrize("spec, options, match", [
    ({}, {}, "as a dict"),
    (SPEC, {"urls": {"kraken": "ws://127.0.0.1:1"}}, "urls names venue"),
    (SPEC, {"record_raw": "x.jsonl"}, "one recording per venue"),
    ({"binance": ["BTCUSD?"]}, {}, "not in binance form"),
])
def test_bad_groups_say_what_to_do(db, spec, options, match):
    with pytest.raises(ValueError, match=match):
        rtkit.CollectorGroup(spec, db=db, **options)


def test_combined_ids_become_strings_when_a_venue_has_text_ids(db):
    g = rtkit.CollectorGroup({"binance": ["BTC-USDT"], "bybit": ["BTC-USDT"]}, db=db)
    ring = g["bybit"].ring
    ring.append("bybit", 5, [("BTC-USDT", "a1b2", 5, 1.0, 1.0, 0)])
    g["binance"].ring.append("binance", 6, [("BTC-USDT", 7, 6, 1.0, 1.0, 1)])
    df = g.df
    assert list(df["trade_id"]) == ["a1b2", "7"] and df["trade_id"].dtype == "string"
    assert list(df["venue"]) == ["bybit", "binance"]
    assert isinstance(df["timestamp"].dtype, pd.DatetimeTZDtype)
