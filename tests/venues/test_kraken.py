"""Kraken v2 (and what it shares with v1): symbols, requests, keep-alive, snapshots."""

import orjson
import pytest

import rtkit
from rtkit.buffer import RingBuffer
from rtkit.pipeline import Pipeline
from rtkit.sim import Market, Simulator, get_dialect
from rtkit.sim.dialects import Session
from rtkit.validate import BUY, SELL
from rtkit.venues import Control, get_adapter
from tests.conftest import wait_for


@pytest.mark.parametrize("form", ["BTC-USD", "BTC/USD", "XBT/USD", "xbtusd", "btc_usd", "XBT-USD"])
def test_symbol_forms_normalise_xbt_to_btc(form):
    assert get_adapter("kraken").normalise_symbol(form) == "BTC-USD"


def test_native_symbols_use_btc():
    a = get_adapter("kraken")
    assert a.native_symbol("XBT-EUR") == "BTC/EUR"
    assert a.native_symbol("ETH-XBT") == "ETH/BTC"
    assert a.native_symbol("XDG/USD") == "DOGE/USD"


@pytest.mark.parametrize("bad", ["BTC-", "BTC/US D", "", "BTCXYZQ", None])
def test_bad_symbol_says_what_is_expected(bad):
    with pytest.raises(ValueError, match=r"not in kraken form \(expected e.g. 'BTC-USDT' or "
                                         r"'BTC/USD'\)"):
        get_adapter("kraken").normalise_symbol(bad)


def test_one_subscribe_request_for_all_symbols_with_snapshot():
    a = get_adapter("kraken")
    (msg,) = [orjson.loads(m) for m in a.subscribe_messages(["BTC-USD", "ETH-USD", "SOL-EUR"])]
    assert msg["method"] == "subscribe"
    assert msg["params"] == {"channel": "trade", "symbol": ["BTC/USD", "ETH/USD", "SOL/EUR"],
                             "snapshot": True}
    (again,) = [orjson.loads(m) for m in a.subscribe_messages(["BTC-USD"])]
    assert again["req_id"] != msg["req_id"]
    (quiet,) = get_adapter("kraken", snapshot=False).subscribe_messages(["BTC-USD"])
    assert orjson.loads(quiet)["params"]["snapshot"] is False


def test_options_are_checked():
    with pytest.raises(ValueError, match="kraken snapshot must be True or False, not 'yes'"):
        get_adapter("kraken", snapshot="yes")
    with pytest.raises(TypeError):
        get_adapter("kraken", depth=10)


def test_ping_keeps_the_connection_within_the_idle_limit():
    a = get_adapter("kraken")
    assert a.ping_interval_s is not None and a.ping_interval_s < 60
    first, second = orjson.loads(a.ping_message()), orjson.loads(a.ping_message())
    assert first["method"] == "ping" and second["req_id"] == first["req_id"] + 1


def test_flags_and_side_convention():
    a = get_adapter("kraken")
    assert a.ids_consecutive and a.default_url == "wss://ws.kraken.com/v2"
    frame = ('{"channel":"trade","type":"update","data":['
             '{"symbol":"BTC/USD","side":"buy","price":1,"qty":1,"trade_id":1,'
             '"timestamp":"2024-01-01T00:00:00Z"},'
             '{"symbol":"BTC/USD","side":"sell","price":1,"qty":1,"trade_id":2,'
             '"timestamp":"2024-01-01T00:00:00Z"}]}')
    assert [t[5] for t in a.parse(frame, 0)] == [BUY, SELL]  # the taker's side, as sent


def _v2_trades(kind, ids):
    data = ",".join('{"symbol":"BTC/USD","side":"buy","price":100.5,"qty":0.1,"trade_id":%d,'
                    '"timestamp":"2024-01-01T00:00:00.%06dZ"}' % (i, i) for i in ids)
    return '{"channel":"trade","type":"%s","data":[%s]}' % (kind, data)


def test_snapshot_after_a_reconnect_fills_the_hole_without_a_gap():
    """The 50-trade snapshot on resubscribe brings back what was missed while away;
    what was already seen counts as duplicates, and no gap is reported."""
    pipeline = Pipeline(get_adapter("kraken"), RingBuffer(100))
    pipeline.connection_opened(1)
    pipeline.process(_v2_trades("update", [1, 2, 3]), 2)
    pipeline.connection_opened(3)
    pipeline.process(_v2_trades("snapshot", [7, 6, 5, 4, 3, 2]), 4)  # order not promised
    pipeline.process(_v2_trades("update", [8]), 5)
    assert [int(i) for i in pipeline.ring.snapshot()["trade_id"]] == list(range(1, 9))
    s = pipeline.stats()
    assert (s["gaps"], s["duplicates"], s["reconnect_marks"]) == (0, 2, 1)


def test_a_hole_bigger_than_the_snapshot_is_a_gap_across_the_reconnect():
    pipeline = Pipeline(get_adapter("kraken"), RingBuffer(100))
    pipeline.connection_opened(1)
    pipeline.process(_v2_trades("update", [1, 2]), 2)
    pipeline.connection_opened(3)
    pipeline.process(_v2_trades("snapshot", [60, 61]), 4)
    batch = pipeline.take()
    assert [g[2:5] + g[6:7] for g in batch.gaps if g[6] != "reconnect"] == [
        ("3", "59", 57, "ids_across_reconnect")]


def test_dialect_speaks_what_the_adapter_reads():
    adapter, dialect, session = get_adapter("kraken"), get_dialect("kraken"), Session()
    (greeting,) = dialect.greeting(session)
    assert adapter.parse(greeting, 0).kind == "info"
    (request,) = adapter.subscribe_messages(["BTC-USD", "ETH-USD"])
    acks = [adapter.parse(reply, 0) for reply in dialect.on_message(request, session)]
    assert [c.kind for c in acks] == ["ack", "ack"] and session.symbols == ["BTC-USD", "ETH-USD"]
    bad = dialect.on_message('{"method":"subscribe","params":{"channel":"trade",'
                             '"symbol":["BTC"]},"req_id":9}', session)
    assert [adapter.parse(r, 0).kind for r in bad] == ["error"]
    pong = adapter.parse(dialect.on_message(adapter.ping_message(), session)[0], 0)
    assert pong == Control("pong", "req_id=2")  # req_id 1 went to the subscribe request
    assert adapter.parse(dialect.heartbeat(session), 0).kind == "heartbeat"
    assert adapter.parse(dialect.subscription_error("BTC-USD"), 0).kind == "error"


def test_dialect_resends_the_last_50_trades_as_a_snapshot():
    market = Market(seed=2)
    trades = [market.trade("BTC-USD") for _ in range(60)]
    (snapshot,) = get_dialect("kraken").encode_overlap(trades)
    assert orjson.loads(snapshot)["type"] == "snapshot"
    assert [t[1] for t in get_adapter("kraken").parse(snapshot, 0)] == list(range(11, 61))


@pytest.mark.usefixtures("no_thread_leak")
@pytest.mark.parametrize("venue", ["kraken", "kraken-v1"])
def test_collector_pings_and_reads_the_pong(venue, db):
    with Simulator(venue, rate=50, count=20, seed=1) as sim:
        c = rtkit.Collector(venue, ["BTC-USD"], url=sim.url, db=db)
        c.adapter.ping_interval_s = 0.2  # the real interval is 20 s
        c.start()
        try:
            wait_for(lambda: getattr(c.pipeline.last_control, "kind", "") == "pong", 10)
        finally:
            c.stop()
    assert c.stats["rejected"] == 0
