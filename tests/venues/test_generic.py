import sqlite3

import orjson
import pytest

import rtkit
from rtkit.sim import Faults, Simulator
from rtkit.validate import BUY, SELL, UNKNOWN_SIDE, Reject
from rtkit.venues import Control, get_adapter
from tests.conftest import wait_for

SYMBOLS = ["BTC-USDT", "ETH-USDT"]


def parse(frame, received_at_ns=1_764_000_000_000_000_000, **options):
    return get_adapter("generic", **options).parse(orjson.dumps(frame), received_at_ns)


def reason(frame, **options):
    with pytest.raises(Reject) as info:
        parse(frame, **options)
    return info.value.reason


# --- url ------------------------------------------------------------------------
def test_there_is_no_default_endpoint(db):
    with pytest.raises(ValueError, match=r"no default endpoint; pass url='wss://…'"):
        get_adapter("generic").url(None, SYMBOLS)
    with pytest.raises(ValueError, match="no default endpoint"):
        rtkit.Collector("generic", SYMBOLS, db=db)


def test_url_comes_from_the_collector_or_the_adapter_option():
    a = get_adapter("generic", url="wss://feed.example/ws")
    assert a.url(None, SYMBOLS) == "wss://feed.example/ws"
    assert a.url("ws://127.0.0.1:9/feed", SYMBOLS) == "ws://127.0.0.1:9/feed"
    with pytest.raises(ValueError, match="url must start with ws:// or wss://"):
        get_adapter("generic", url="https://feed.example")


# --- field mapping ---------------------------------------------------------------
def test_dotted_paths_index_lists_and_envelopes():
    frame = {"topic": "trade", "data": [{"p": "10.5", "q": "2", "t": 1764000000001, "S": "Sell",
                                         "s": "SOLUSDT", "i": 99, "tags": ["x", "last"]}]}
    paths = dict(price="data.0.p", volume="data.0.q", timestamp="data.0.t", side="data.0.S",
                 symbol="data.0.s", trade_id="data.-1.i")
    assert parse(frame, **paths) == [("SOL-USDT", 99, 1764000000001000000, 10.5, 2.0, SELL)]
    batch = parse(frame, trades="data", price="p", volume="q", timestamp="t", side="S",
                  symbol="s", trade_id="tags.-1")
    assert batch == [("SOL-USDT", "last", 1764000000001000000, 10.5, 2.0, SELL)]


def test_functions_read_fields_and_trades_can_carry_the_envelope_symbol():
    def trades(frame):
        return [{**t, "sym": frame["topic"].split(".")[1]} for t in frame["data"]]

    frame = {"topic": "trades.BTCUSDT", "data": [{"px": "1.5", "sz": "2"}, {"px": "2", "sz": "1"}]}
    ticks = parse(frame, trades=trades, price="px", volume=lambda t: t["sz"], symbol="sym",
                  side=None, trade_id=None)
    assert [(t[0], t[3], t[4], t[5]) for t in ticks] == [("BTC-USDT", 1.5, 2.0, UNKNOWN_SIDE),
                                                         ("BTC-USDT", 2.0, 1.0, UNKNOWN_SIDE)]


def test_a_failing_function_is_a_reject_never_an_exception():
    frame = {"price": "1", "volume": "1"}
    assert reason(frame, default_symbol="X-USD", volume=lambda t: t["nope"]) == "missing_field"
    assert reason(frame, default_symbol="X-USD", volume=lambda t: 1 / 0) == "adapter_error"


def test_paths_are_only_keys_never_attributes_or_code():
    frame = {"price": "1", "volume": "1", "symbol": "BTC-USDT"}
    assert reason(frame, price="__class__.__name__") == "missing_field"
    assert reason(frame, price="__import__('os').getcwd()") == "missing_field"


def test_named_fields_are_required_default_ones_fall_back():
    bare = {"price": "1", "volume": "2"}
    [tick] = parse(bare, received_at_ns=1_764_000_000_000_000_007, default_symbol="eth/usd")
    assert tick[0] == "ETH-USD" and tick[2] == 1_764_000_000_000_000_007 and tick[5] == UNKNOWN_SIDE
    assert isinstance(tick[1], str) and len(tick[1]) == 16  # synthetic id
    for name, path in [("side", "side"), ("timestamp", "ts"), ("trade_id", "id"),
                       ("symbol", "symbol")]:
        assert reason(bare, default_symbol="ETH-USD", **{name: path}) == "missing_field"


def test_the_lone_subscribed_symbol_is_the_fallback():
    a = get_adapter("generic")
    a.subscribe_messages(["ETH-USDT"])
    assert a.parse(b'{"price":"1","volume":"1"}', 1)[0][0] == "ETH-USDT"
    a.subscribe_messages(["ETH-USDT", "BTC-USDT"])
    with pytest.raises(Reject, match="default_symbol"):
        a.parse(b'{"price":"1","volume":"1"}', 1)


def test_side_values_are_configurable():
    frame = [{"price": "1", "volume": "1", "type": 0}, {"price": "1", "volume": "1", "type": 1}]
    ticks = parse(frame, side="type", buy_values=(0,), sell_values=(1,), default_symbol="A-USD")
    assert [t[5] for t in ticks] == [BUY, SELL]
    words = parse({"price": "1", "volume": "1", "d": "Taker_Buy"}, side="d",
                  buy_values=("taker_buy",), sell_values=("taker_sell",), default_symbol="A-USD")
    assert words[0][5] == BUY
    with pytest.raises(ValueError, match="cannot be in both buy_values and sell_values"):
        get_adapter("generic", buy_values=("buy", "B"), sell_values=("b",))
    with pytest.raises(ValueError, match="collections"):
        get_adapter("generic", buy_values="buy")


def test_timestamp_units():
    frame = {"price": "1", "volume": "1", "symbol": "A-USD", "t": 1764000000}
    assert parse(frame, timestamp="t", timestamp_unit="s")[0][2] == 1764000000 * 10**9
    assert reason(frame, timestamp="t", timestamp_unit="ms") == "bad_timestamp"  # 1970 in ms
    iso = {**frame, "t": "2025-11-24T16:00:00Z"}
    assert parse(iso, timestamp="t", timestamp_unit="iso")[0][2] == 1764000000 * 10**9
    with pytest.raises(ValueError, match="timestamp_unit must be one of s, ms, us, ns, iso, auto"):
        get_adapter("generic", timestamp_unit="minutes")


# --- ids ---------------------------------------------------------------------
def test_synthetic_ids_are_stable_and_tell_trades_apart():
    frame = [{"price": "1", "volume": "1", "timestamp": 1764000000000}] * 2 + [
        {"price": "1.5", "volume": "1", "timestamp": 1764000000000}]
    first = [t[1] for t in parse(frame, default_symbol="A-USD")]
    again = [t[1] for t in parse(frame, received_at_ns=1_800_000_000_000_000_000,
                                 default_symbol="A-USD")]
    assert first == again  # a replayed frame dedups, whenever it arrives
    assert len(set(first)) == 3
    alone = parse(frame[0], default_symbol="A-USD")[0][1]
    assert alone == first[0]  # the same trade alone in a frame keeps its id
    other = parse(frame[0], default_symbol="B-USD")[0][1]
    assert other != alone


def test_consecutive_ids_must_be_whole_numbers():
    options = dict(ids_consecutive=True, default_symbol="A-USD")
    a = get_adapter("generic", **options)
    assert a.ids_consecutive
    assert parse({"price": "1", "volume": "1", "trade_id": "123"}, **options)[0][1] == 123
    assert reason({"price": "1", "volume": "1", "trade_id": "12a"}, **options) == "bad_number"
    with pytest.raises(ValueError, match="ids_consecutive=True needs trade_id="):
        get_adapter("generic", ids_consecutive=True, trade_id=None)


# --- messages -------------------------------------------------------------------------
def test_subscribe_and_ping_forms():
    def per_symbol(symbols):
        return [{"sub": s} for s in symbols]

    assert get_adapter("generic").subscribe_messages(SYMBOLS) == []
    assert get_adapter("generic", subscribe="hello").subscribe_messages(SYMBOLS) == ["hello"]
    assert get_adapter("generic", subscribe={"op": "sub"}).subscribe_messages(SYMBOLS) == [
        '{"op":"sub"}']
    assert get_adapter("generic", subscribe=per_symbol).subscribe_messages(SYMBOLS) == [
        '{"sub":"BTC-USDT"}', '{"sub":"ETH-USDT"}']
    with pytest.raises(ValueError, match="must be JSON text or a dict"):
        get_adapter("generic", subscribe=42)
    with pytest.raises(ValueError, match="must be JSON text or a dict"):
        get_adapter("generic", subscribe=lambda s: 42).url("ws://h/", SYMBOLS)
    pinging = get_adapter("generic", ping={"op": "ping"})
    assert (pinging.ping_message(), pinging.ping_interval_s) == ('{"op":"ping"}', 20.0)
    assert get_adapter("generic").ping_message() is None
    with pytest.raises(ValueError, match="comes with ping="):
        get_adapter("generic", ping_interval_s=5)


@pytest.mark.parametrize(("options", "match"), [
    ({"price": None}, "price and volume are what a trade is made of"),
    ({"volume": "data..q"}, "volume must be a dotted path"),
    ({"side": 3}, "side must be a dotted path"),
    ({"default_symbol": "BTC USDT"}, "is not usable"),
])
def test_bad_options_say_what_to_do(options, match):
    with pytest.raises(ValueError, match=match):
        get_adapter("generic", **options)


def test_non_trade_objects_are_controls():
    assert parse({"event": "subscribed"}) == Control("info", '{"event":"subscribed"}')
    assert parse({"type": "error", "reason": "x"}).kind == "error"
    assert parse({"ok": True}, trades="data").kind == "info"


# --- end to end ---------------------------------------------------------------------
@pytest.mark.usefixtures("no_thread_leak")
def test_venue_options_reach_the_adapter_and_consecutive_ids_show_gaps(db):
    with Simulator("generic", rate=3000, count=400, seed=5,
                   faults=Faults(skip_id_every=100)) as sim:
        c = rtkit.collect("generic", SYMBOLS, url=sim.url, db=db, price="price",
                          volume=lambda t: t["volume"], timestamp_unit="ms", side="side",
                          trade_id="trade_id", ids_consecutive=True)
        wait_for(lambda: c.stats["stored"] >= 400, 20)
        c.stop()
    assert c.url == sim.url
    assert sim.market.skipped_ids == 4 and c.stats["gaps"] == 4 and c.stats["missing_trades"] == 4
    assert c.stats["rejected"] == 0


@pytest.mark.usefixtures("no_thread_leak")
def test_an_optional_subscribe_narrows_the_feed_and_pings_are_answered(db):
    with Simulator("generic", rate=500, seed=2) as sim:
        c = rtkit.collect("generic", ["ETH-USDT"], url=sim.url, db=db,
                          subscribe={"op": "subscribe", "symbols": ["ETH-USDT"]},
                          ping={"op": "ping"}, ping_interval_s=0.1)
        try:
            wait_for(lambda: c.stats["stored"] >= 150, 10)
            wait_for(lambda: c.pipeline.last_control == Control("info", '{"event":"pong"}'), 5)
        finally:
            c.stop()
    newest = sqlite3.connect(db).execute(
        "SELECT DISTINCT symbol FROM (SELECT symbol FROM ticks ORDER BY timestamp DESC LIMIT 100)")
    assert newest.fetchall() == [("ETH-USDT",)]  # the feed streams both until the subscribe lands
    assert c.stats["rejected"] == 0
