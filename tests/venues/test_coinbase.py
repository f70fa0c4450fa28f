"""Coinbase Advanced Trade (``coinbase``) and Exchange (``coinbase-exchange``): what the
fixture frames cannot show — symbols, subscribe messages, sides, ordering inside a
batch, the snapshot on resubscribe and the heartbeats that keep a quiet feed open."""

import orjson
import pytest
import websocket

import rtkit
from rtkit.buffer import RingBuffer
from rtkit.pipeline import Pipeline
from rtkit.sim import Market, Simulator, get_dialect
from rtkit.sim.dialects import Session
from rtkit.validate import BUY, SELL
from rtkit.venues import Control, get_adapter
from tests.conftest import wait_for

VENUES = ["coinbase", "coinbase-exchange"]
SIDES = {"buy": BUY, "sell": SELL}


def expected_ticks(trades):
    return [(t.symbol, t.trade_id, t.ts_ns, float(t.price), float(t.volume), SIDES[t.side])
            for t in trades]


def at_frame(*trades):
    """An Advanced Trade ``update`` frame of (trade_id, maker side) for BTC-USD."""
    return orjson.dumps({"channel": "market_trades", "events": [{"type": "update", "trades": [
        {"trade_id": str(tid), "product_id": "BTC-USD", "price": "100", "size": "1",
         "side": side, "time": "2026-01-02T03:04:05.123456Z"} for tid, side in trades]}]})


@pytest.mark.parametrize("venue", VENUES)
def test_symbol_forms(venue):
    a = get_adapter(venue)
    for form in ["BTC-USD", "btc-usd", "btc/usd", "BTC_USD", "BTCUSD"]:
        assert a.normalise_symbol(form) == "BTC-USD"
    assert a.native_symbol("eth-eur") == "ETH-EUR"


@pytest.mark.parametrize("venue", VENUES)
@pytest.mark.parametrize("bad", ["BTC-", "BTC USD", "", 7])
def test_bad_symbol_says_what_is_expected(venue, bad):
    with pytest.raises(ValueError, match=rf"not in {venue} form \(expected e.g. .*'BTC-USD'"):
        get_adapter(venue).normalise_symbol(bad)


def test_advanced_trade_refuses_usdc_products_and_names_the_usd_one(db):
    with pytest.raises(ValueError, match=r"no -USDC trades.*collect 'BTC-USD' instead"):
        get_adapter("coinbase").normalise_symbol("btc/usdc")
    with pytest.raises(ValueError, match="collect 'ETH-USD' instead"):
        rtkit.Collector("coinbase", ["BTC-USD", "ETH-USDC"], db=db)  # fails in the user's cell
    a = get_adapter("coinbase")
    assert [a.normalise_symbol(s) for s in ("USDT-USDC", "EURC-USDC")] == ["USDT-USDC",
                                                                           "EURC-USDC"]
    assert get_adapter("coinbase-exchange").normalise_symbol("BTC-USDC") == "BTC-USDC"


def test_advanced_trade_subscribes_trades_and_heartbeats():
    symbols = [f"C{i}-USD" for i in range(300)]
    msgs = [orjson.loads(m) for m in get_adapter("coinbase").subscribe_messages(symbols)]
    assert msgs == [
        {"type": "subscribe", "product_ids": symbols, "channel": "market_trades"},
        {"type": "subscribe", "channel": "heartbeats"},
    ]


def test_exchange_subscribes_matches_and_heartbeat_in_one_message():
    msgs = get_adapter("coinbase-exchange").subscribe_messages(["BTC-USD", "eth-eur"])
    assert [orjson.loads(m) for m in msgs] == [{
        "type": "subscribe", "product_ids": ["BTC-USD", "ETH-EUR"],
        "channels": ["matches", "heartbeat"]}]


@pytest.mark.parametrize("venue", VENUES)
def test_no_options_no_ping(venue):
    with pytest.raises(TypeError):
        get_adapter(venue, channel="ticker")
    a = get_adapter(venue)
    assert a.ids_consecutive and a.ping_interval_s is None and a.ping_message() is None
    assert a.default_url.startswith("wss://")


def test_side_is_the_makers_so_the_aggressor_is_the_opposite():
    at = get_adapter("coinbase").parse(at_frame((1, "BUY"), (2, "SELL")), 0)
    assert [t[5] for t in at] == [SELL, BUY]
    match = {"type": "match", "trade_id": 1, "product_id": "BTC-USD", "price": "1", "size": "1",
             "time": "2026-01-02T03:04:05Z"}
    ex = get_adapter("coinbase-exchange")
    assert ex.parse(orjson.dumps({**match, "side": "buy"}), 0)[0][5] == SELL
    assert ex.parse(orjson.dumps({**match, "side": "sell"}), 0)[0][5] == BUY


def test_newest_first_batches_are_not_gaps_and_a_snapshot_replay_is_duplicates():
    pipeline = Pipeline(get_adapter("coinbase"), RingBuffer(100))
    pipeline.process(at_frame((2, "BUY"), (1, "BUY")), 1)
    pipeline.process(at_frame((5, "BUY"), (4, "SELL"), (3, "BUY")), 2)
    assert (pipeline.gaps, pipeline.duplicates_seen, len(pipeline.ring)) == (0, 0, 5)
    pipeline.process(at_frame((6, "BUY"), (5, "BUY"), (4, "BUY")), 3)  # a snapshot's overlap
    assert (pipeline.gaps, pipeline.duplicates_seen, len(pipeline.ring)) == (0, 2, 6)
    pipeline.process(at_frame((9, "BUY")), 4)
    assert (pipeline.gaps, pipeline.missing_trades) == (1, 2)


@pytest.mark.parametrize("venue", VENUES)
def test_dialect_frames_read_back_as_the_trades(venue):
    market = Market(seed=1)
    trades = market.trades_for(["BTC-USD", "ETH-USD", "SOL-USD"], 60)
    dialect, adapter = get_dialect(venue), get_adapter(venue)
    for frames in (dialect.encode(trades), dialect.encode_overlap(trades)):
        ticks = [t for f in frames for t in adapter.parse(f, 0)]
        assert sorted(ticks) == sorted(expected_ticks(trades))
    if venue == "coinbase":  # several trades and products per frame, never more than max_batch
        frames = [orjson.loads(f) for f in dialect.encode(trades)]
        sizes = [len(f["events"][0]["trades"]) for f in frames]
        assert 1 < len(frames) < len(trades) and max(sizes) <= dialect.max_batch
        assert any(len({t["product_id"] for t in f["events"][0]["trades"]}) > 1 for f in frames)


def test_advanced_trade_overlap_is_a_snapshot_per_product_newest_first():
    trades = Market(seed=2).trades_for(["BTC-USD", "ETH-USD"], 20)
    (frame,) = get_dialect("coinbase").encode_overlap(trades)
    events = orjson.loads(frame)["events"]
    assert [e["type"] for e in events] == ["snapshot", "snapshot"]
    for event in events:
        ids = [int(t["trade_id"]) for t in event["trades"]]
        assert len({t["product_id"] for t in event["trades"]}) == 1
        assert ids == sorted(ids, reverse=True)


def test_exchange_overlap_starts_each_product_with_last_match():
    trades = Market(seed=2).trades_for(["BTC-USD", "ETH-USD"], 20)
    kinds = [(m["product_id"], m["type"]) for m in map(orjson.loads,
             get_dialect("coinbase-exchange").encode_overlap(trades))]
    firsts = {}
    for product, kind in kinds:
        firsts.setdefault(product, kind)
    assert firsts == {"BTC-USD": "last_match", "ETH-USD": "last_match"}
    assert [k for _, k in kinds].count("last_match") == 2


@pytest.mark.parametrize("venue", VENUES)
def test_dialect_acks_heartbeats_and_errors_read_as_controls(venue):
    dialect, adapter, session = get_dialect(venue), get_adapter(venue), Session()
    assert dialect.heartbeat(session) is None  # nothing before the heartbeat channel
    replies = [r for m in adapter.subscribe_messages(["BTC-USD", "ETH-USD"])
               for r in dialect.on_message(m, session)]
    assert [adapter.parse(r, 0).kind for r in replies] == ["ack"] * len(replies)
    assert session.symbols == ["BTC-USD", "ETH-USD"]
    assert adapter.parse(dialect.heartbeat(session), 0).kind == "heartbeat"
    assert adapter.parse(dialect.subscription_error("NOPE-USD"), 0).kind == "error"
    (refusal,) = dialect.on_message('{"type":"subscribe","channel":"level9"}', session)
    assert adapter.parse(refusal, 0).kind == "error"


def test_exchange_error_carries_the_reason():
    error = get_adapter("coinbase-exchange").parse(
        get_dialect("coinbase-exchange").subscription_error("GIBBERISH-USD"), 0)
    assert error == Control("error", "Failed to subscribe: GIBBERISH-USD is not a valid product")


@pytest.mark.usefixtures("no_thread_leak")
def test_advanced_trade_resubscribe_starts_with_a_snapshot_of_recent_trades():
    adapter = get_adapter("coinbase")

    def subscribe(url):
        ws = websocket.create_connection(url, timeout=5)
        for message in adapter.subscribe_messages(["BTC-USD", "ETH-USD"]):
            ws.send(message)
        return ws

    with Simulator("coinbase", rate=2000, count=30, seed=4) as sim:
        ws = subscribe(sim.url)
        got = []
        while len(got) < 30:
            out = adapter.parse(ws.recv(), 0)
            got += out if isinstance(out, list) else []
        ws.close()
        ws = subscribe(sim.url)
        frame = ws.recv()
        while orjson.loads(frame).get("channel") != "market_trades":
            frame = ws.recv()
        ws.close()
        assert {e["type"] for e in orjson.loads(frame)["events"]} == {"snapshot"}
        snapshot = adapter.parse(frame, 0)
        assert sorted(got) == sorted(snapshot) == sorted(expected_ticks(sim.trades))
        assert [t[1] for t in snapshot] == sorted(t[1] for t in snapshot)


@pytest.mark.usefixtures("no_thread_leak")
@pytest.mark.parametrize("venue", VENUES)
def test_heartbeats_keep_a_quiet_subscription_live(venue, db):
    with Simulator(venue, count=0) as sim:  # subscribed, but no trade ever
        c = rtkit.collect(venue, ["BTC-USD"], url=sim.url, db=db, stale_after_s=1.5)
        acks = len(c.adapter.subscribe_messages(c.symbols))
        wait_for(lambda: c.pipeline.control >= acks + 2, 6)  # two heartbeats, 2 s of no trade
        c.stop()
    assert c.stats["reconnects"] == 0 and c.pipeline.last_control.kind == "heartbeat"
