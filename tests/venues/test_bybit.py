"""Bybit: what the fixture frames cannot show (symbols, options, subscribe limits,
keep-alive, the simulator's UUID ids), and both categories over a real socket."""

import re
import sqlite3

import orjson
import pytest

import rtkit
from rtkit.sim import Faults, SimTrade, Simulator, get_dialect
from rtkit.sim.dialects import Session
from rtkit.validate import BUY, SELL
from rtkit.venues import Control, get_adapter
from rtkit.venues.base import chunks
from tests.conftest import wait_for

UUID = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def sim_trade(symbol="BTC-USDT", trade_id=1, side="buy"):
    return SimTrade(symbol, trade_id, 1_700_000_000_123_000_000, "65000.5", "0.010000", side)


def test_symbol_forms():
    a = get_adapter("bybit")
    for form in ["BTC-USDT", "btcusdt", "BTCUSDT", "btc/usdt", "BTC_USDT"]:
        assert a.normalise_symbol(form) == "BTC-USDT"
    assert a.native_symbol("eth-btc") == "ETHBTC"
    assert a.native_symbol("1000PEPEUSDT") == "1000PEPEUSDT"


@pytest.mark.parametrize("bad", ["BTC-", "BTCPERP", "", "BTC USDT", None])
def test_bad_symbol_says_what_is_expected(bad):
    with pytest.raises(ValueError, match=r"not in bybit form \(expected e.g. 'BTC-USDT' or "
                                         r"'BTCUSDT'\)"):
        get_adapter("bybit").normalise_symbol(bad)


def test_category_picks_the_endpoint_and_is_checked():
    assert get_adapter("bybit").url(None, []) == "wss://stream.bybit.com/v5/public/spot"
    linear = get_adapter("bybit", category="linear")
    assert linear.url(None, []) == "wss://stream.bybit.com/v5/public/linear"
    assert linear.url("ws://127.0.0.1:1/x", []) == "ws://127.0.0.1:1/x"
    inverse = get_adapter("bybit", category="inverse")
    assert inverse.url(None, []) == "wss://stream.bybit.com/v5/public/inverse"
    for bad in ["option", "SPOT", None]:
        with pytest.raises(ValueError, match=r"category must be 'spot', 'linear' or 'inverse' "
                                             r"\(pass e.g. category='linear'\), not"):
            get_adapter("bybit", category=bad)
    with pytest.raises(TypeError):
        get_adapter("bybit", channel="trade")


def test_spot_subscribes_at_most_10_topics_per_request():
    msgs = [orjson.loads(m) for m in
            get_adapter("bybit").subscribe_messages([f"C{i}-USDT" for i in range(25)])]
    assert [len(m["args"]) for m in msgs] == [10, 10, 5]
    assert msgs[0]["op"] == "subscribe" and msgs[0]["args"][0] == "publicTrade.C0USDT"
    assert [t for m in msgs for t in m["args"]] == [f"publicTrade.C{i}USDT" for i in range(25)]
    assert len({m["req_id"] for m in msgs}) == 3


def test_linear_requests_stay_well_under_the_args_character_limit():
    symbols = [f"LONGNAMEDCOIN{i}-USDT" for i in range(3000)]
    texts = get_adapter("bybit", category="linear").subscribe_messages(symbols)
    msgs = [orjson.loads(m) for m in texts]
    assert len(msgs) > 1 and all(len(m["args"]) <= 500 for m in msgs)
    assert max(len(orjson.dumps(m["args"])) for m in msgs) <= 10_500  # Bybit allows 21,000
    assert sum(len(m["args"]) for m in msgs) == 3000


def test_chunks_keeps_order_and_puts_an_oversized_item_alone():
    assert chunks(["a" * 50, "b", "c", "d"], 2, 20) == [["a" * 50], ["b", "c"], ["d"]]
    assert chunks([], 10, 100) == []


def test_ping_is_the_app_level_op_every_20_s():
    a = get_adapter("bybit")
    assert orjson.loads(a.ping_message())["op"] == "ping" and a.ping_interval_s <= 20
    assert a.stale_after_s > a.ping_interval_s  # pongs keep a quiet stream from looking stale
    assert not a.ids_consecutive


def test_simulated_trade_ids_are_stable_uuids_shared_by_frames_and_expectations():
    dialect = get_dialect("bybit")
    trade = sim_trade()
    tid = dialect.expected_trade_id(trade)
    assert UUID.match(tid) and tid == get_dialect("bybit").expected_trade_id(sim_trade())
    assert tid != dialect.expected_trade_id(sim_trade(trade_id=2))
    assert tid != dialect.expected_trade_id(sim_trade(symbol="ETH-USDT"))
    [tick] = get_adapter("bybit").parse(dialect.encode([trade])[0], 0)
    assert tick == ("BTC-USDT", tid, trade.ts_ns, 65000.5, 0.01, BUY)


def test_simulator_batches_runs_of_one_symbol_up_to_1024_trades():
    dialect, adapter = get_dialect("bybit"), get_adapter("bybit")
    trades = [sim_trade(trade_id=i, side="sell") for i in range(1, 2501)]
    trades.append(sim_trade(symbol="ETH-USDT"))
    frames = dialect.encode(trades)
    parsed = [adapter.parse(f, 0) for f in frames]
    assert [len(p) for p in parsed] == [1024, 1024, 452, 1]
    assert {t[5] for p in parsed[:3] for t in p} == {SELL}  # S is the taker's side
    assert [t[1] for p in parsed for t in p] == [dialect.expected_trade_id(t) for t in trades]


@pytest.mark.parametrize(("category", "ack"), [("spot", "subscribe"), ("linear", "")])
def test_simulator_answers_in_the_category_shape(category, ack):
    dialect = get_dialect("bybit", category=category)
    session = Session()
    sub = {"req_id": "r1", "op": "subscribe", "args": ["publicTrade.BTCUSDT"]}
    [reply] = dialect.on_message(orjson.dumps(sub).decode(), session)
    assert orjson.loads(reply)["ret_msg"] == ack and session.symbols == ["BTC-USDT"]
    [pong] = dialect.on_message('{"req_id":"p","op":"ping"}', session)
    assert ("req_id" in orjson.loads(pong)) == (category == "linear")
    assert get_adapter("bybit").parse(pong, 0) == Control("pong", "ping: pong")
    eleven = dict(sub, args=[f"publicTrade.C{i}USDT" for i in range(11)])
    [reply] = dialect.on_message(orjson.dumps(eleven).decode(), session)
    assert (orjson.loads(reply)["ret_msg"] == "args size >10") == (category == "spot")


def ticks_in(db):
    return sqlite3.connect(db).execute("SELECT count(*) FROM ticks").fetchone()[0]


@pytest.mark.usefixtures("no_thread_leak")
@pytest.mark.parametrize("category", ["spot", "linear"])
def test_many_symbols_and_keep_alive_over_a_socket(category, db):
    """25 symbols: spot needs three subscribe requests, or the simulator refuses them."""
    symbols = [f"C{i}-USDT" for i in range(25)]
    with Simulator("bybit", rate=2000, count=500, seed=5, category=category) as sim:
        c = rtkit.Collector("bybit", symbols, url=sim.url, db=db, flush_interval_s=0.1,
                            category=category)
        c.adapter.ping_interval_s = 0.2  # the real 20 s, shortened so a pong comes back soon
        with c:
            wait_for(lambda: c.stats["stored"] >= 500, 10)
            wait_for(lambda: c.pipeline.last_control == Control("pong", "ping: pong"), 5)
        subscribed = {t.symbol for t in sim.trades}
    assert subscribed == set(symbols)
    assert c.stats["venue_error"] == "" and c.stats["rejected"] == 0
    assert ticks_in(db) == 500


@pytest.mark.usefixtures("no_thread_leak")
def test_refused_topic_is_reported_and_the_rest_still_flows(db):
    faults = Faults(reject_symbols=("ETH-USDT",))
    with (Simulator("bybit", rate=2000, count=200, seed=5, faults=faults) as sim,
          rtkit.collect("bybit", ["BTC-USDT", "ETH-USDT"], url=sim.url, db=db,
                        flush_interval_s=0.1) as c):
        wait_for(lambda: c.stats["stored"] >= 200, 10)
    assert c.stats["venue_error"] == "subscribe: error:handler not found,topic:publicTrade.ETHUSDT"
    assert sqlite3.connect(db).execute("SELECT DISTINCT symbol FROM ticks").fetchall() == [
        ("BTC-USDT",)]
