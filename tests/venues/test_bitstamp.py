import orjson
import pytest

import rtkit
from rtkit.sim import Simulator, get_dialect
from rtkit.sim.dialects import Session
from rtkit.sim.market import SimTrade
from rtkit.validate import BUY, SELL
from rtkit.venues import Control, get_adapter
from tests.conftest import wait_for


def test_symbol_forms():
    a = get_adapter("bitstamp")
    for form in ["BTC-USD", "btcusd", "BTCUSD", "btc/usd", "BTC_USD"]:
        assert a.normalise_symbol(form) == "BTC-USD"
    assert a.normalise_symbol("usdcusd") == "USDC-USD"
    assert a.native_symbol("ETH-EUR") == "etheur"


@pytest.mark.parametrize("bad", ["BTC-", "btcxyzq", "", "btc usd", 7])
def test_bad_symbol_says_what_is_expected(bad):
    with pytest.raises(ValueError, match=r"not in bitstamp form \(expected e.g. 'BTC-USDT' or "
                                         r"'btcusd'\)"):
        get_adapter("bitstamp").normalise_symbol(bad)


def test_perpetuals_are_refused_with_a_way_out():
    with pytest.raises(ValueError, match="perpetuals are not supported; collect spot pairs"):
        get_adapter("bitstamp").normalise_symbol("btcusd-perp")


def test_one_subscribe_message_per_channel_under_512_bytes():
    msgs = get_adapter("bitstamp").subscribe_messages(["BTC-USD", "ETH-EUR", "XRP-BTC"])
    assert [orjson.loads(m) for m in msgs] == [
        {"event": "bts:subscribe", "data": {"channel": f"live_trades_{pair}"}}
        for pair in ("btcusd", "etheur", "xrpbtc")
    ]
    assert all(len(m.encode()) < 512 for m in msgs)


def test_subscription_limits_fail_before_connecting(db):
    a = get_adapter("bitstamp")
    assert len(a.subscribe_messages([f"C{i}-USD" for i in range(1024)])) == 1024
    with pytest.raises(ValueError, match="1024 channels per connection, not 1025; split"):
        a.url(None, [f"C{i}-USD" for i in range(1025)])
    with pytest.raises(ValueError, match="subscribe frame of 5.. bytes; bitstamp closes"):
        rtkit.Collector("bitstamp", ["A" * 480 + "-USD"], db=db)
    assert a.url(None, ["BTC-USD"]) == "wss://ws.bitstamp.net"


def test_keep_alive_is_the_bts_heartbeat_the_simulator_answers():
    a, dialect = get_adapter("bitstamp"), get_dialect("bitstamp")
    assert a.ping_interval_s and a.ping_interval_s < a.stale_after_s
    replies = dialect.on_message(a.ping_message(), Session())
    assert [a.parse(r, 0) for r in replies] == [Control("pong", "status=success")]


def test_simulator_acks_and_refusals_read_as_controls():
    a, dialect, session = get_adapter("bitstamp"), get_dialect("bitstamp"), Session()
    [ack] = dialect.on_message(a.subscribe_messages(["ETH-USD"])[0], session)
    assert a.parse(ack, 0).kind == "ack" and session.symbols == ["ETH-USD"]
    upper = '{"event":"bts:subscribe","data":{"channel":"live_trades_BTCUSD"}}'
    for message in [upper, "{oops", '{"event":"bts:subscribe"}']:
        [reply] = dialect.on_message(message, session)
        assert a.parse(reply, 0).kind == "error"
    assert a.parse(dialect.subscription_error("BTC-USD"), 0).kind == "error"
    assert session.symbols == ["ETH-USD"]


def test_type_is_the_taker_side_both_ways():
    a, dialect = get_adapter("bitstamp"), get_dialect("bitstamp")
    trades = [SimTrade("BTC-USD", 7, 1764000000123000000, "65000.10", "0.500000", side)
              for side in ("buy", "sell")]
    ticks = [a.parse(frame, 0)[0] for frame in dialect.encode(trades)]
    assert [t[5] for t in ticks] == [BUY, SELL]
    assert ticks[0] == ("BTC-USD", 7, 1764000000123000000, 65000.1, 0.5, BUY)
    assert not a.ids_consecutive  # global ids: no false gaps


@pytest.mark.usefixtures("no_thread_leak")
def test_heartbeats_flow_over_a_real_connection(db):
    with Simulator("bitstamp", rate=200, seed=1) as sim:
        c = rtkit.Collector("bitstamp", ["BTC-USD"], url=sim.url, db=db)
        c.adapter.ping_interval_s = 0.1  # instead of 10 s, to see several in a test
        c.start()
        try:
            wait_for(lambda: c.pipeline.last_control == Control("pong", "status=success"), 5)
            wait_for(lambda: c.stats["control"] >= 3, 5)  # the ack and at least two pongs
        finally:
            c.stop()
    assert c.stats["rejected"] == 0 and c.stats["stored"] > 0
