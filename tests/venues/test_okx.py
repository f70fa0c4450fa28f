"""OKX: what the fixture frames cannot show (symbols, subscribe limits, the
plain-text keep-alive, gap detection over aggregated ids), and a real socket."""

import sqlite3

import orjson
import pytest

import rtkit
from rtkit.buffer import RingBuffer
from rtkit.pipeline import Pipeline
from rtkit.sim import Faults, SimTrade, Simulator, get_dialect
from rtkit.sim.dialects import Session
from rtkit.validate import SELL
from rtkit.venues import Control, get_adapter
from tests.conftest import wait_for


def push(trade_id: int, count: int, symbol: str = "BTC-USDT") -> bytes:
    """An OKX ``trades`` push of one group of ``count`` fills ending at ``trade_id``."""
    trade = {"instId": symbol, "tradeId": str(trade_id), "px": "42219.9", "sz": "0.5",
             "side": "buy", "ts": "1630048897897", "count": str(count), "source": "0",
             "seqId": trade_id}
    return orjson.dumps({"arg": {"channel": "trades", "instId": symbol}, "data": [trade]})


def run(*frames: bytes) -> Pipeline:
    pipeline = Pipeline(get_adapter("okx"), RingBuffer(16))
    pipeline.connection_opened(0)
    for at, frame in enumerate(frames, 1):
        assert pipeline.process(frame, at) is None
    return pipeline


def test_symbol_forms():
    a = get_adapter("okx")
    for form in ["BTC-USDT", "btc-usdt", "BTCUSDT", "btc/usdt", "BTC_USDT"]:
        assert a.normalise_symbol(form) == "BTC-USDT"
    assert a.native_symbol("eth/usdc") == "ETH-USDC"


@pytest.mark.parametrize("bad", ["BTC-USDT-PERP", "BTC-USD-2205", "BTC-", "", "BTC USDT", 7])
def test_bad_symbol_says_what_is_expected(bad):
    with pytest.raises(ValueError, match=r"not in okx form \(expected e.g. 'BTC-USDT'"):
        get_adapter("okx").normalise_symbol(bad)


def test_no_options_and_the_public_endpoint():
    with pytest.raises(TypeError):
        get_adapter("okx", category="spot")
    assert get_adapter("okx").url(None, []) == "wss://ws.okx.com:8443/ws/v5/public"


def test_subscribe_args_are_batched_within_the_64_kb_limit():
    symbols = [f"COIN{i}-USDT" for i in range(1200)]
    msgs = [orjson.loads(m) for m in get_adapter("okx").subscribe_messages(symbols)]
    assert len(msgs) == 3 and all(len(m["args"]) <= 500 for m in msgs)
    assert max(len(orjson.dumps(m["args"])) for m in msgs) <= 32_000  # OKX allows 64 KB
    args = [a for m in msgs for a in m["args"]]
    assert args[0] == {"channel": "trades", "instId": "COIN0-USDT"} and len(args) == 1200
    ids = [m["id"] for m in msgs]
    assert len(set(ids)) == 3 and all(i.isalnum() and len(i) <= 32 for i in ids)
    assert {m["op"] for m in msgs} == {"subscribe"}


def test_keep_alive_is_plain_text_within_30_s():
    a = get_adapter("okx")
    assert a.ping_message() == "ping" and a.ping_interval_s < 30
    assert a.stale_after_s > a.ping_interval_s
    assert a.parse(b"pong", 0) == Control("pong") == a.parse("pong", 0)


def test_group_right_after_the_last_id_is_not_a_gap():
    p = run(push(120, 1), push(123, 3))  # 123 with count 3 covers 121..123
    assert p.take().gaps == [] and p.gaps == 0
    assert p.ring.snapshot()["trade_id"].tolist() == [120, 123]  # the last id of each group


def test_group_starting_past_the_next_id_is_a_gap_of_the_ids_between():
    p = run(push(120, 1), push(127, 3))  # 127 with count 3 covers 125..127: 121..124 missing
    assert [g[1:5] + g[6:7] for g in p.take().gaps] == [("BTC-USDT", "121", "124", 4, "ids")]
    assert p.gaps == 1 and p.missing_trades == 4


def test_replayed_and_overlapping_groups_are_not_gaps():
    p = run(push(120, 1), push(123, 3), push(123, 3), push(125, 3), push(5, 1, "ETH-USDT"))
    assert p.take().gaps == [] and p.stats()["duplicates"] == 1
    assert p.ring.snapshot()["trade_id"].tolist() == [120, 123, 125, 5]


def test_simulator_keep_alive_and_per_arg_answers():
    dialect, adapter, session = get_dialect("okx"), get_adapter("okx"), Session()
    assert dialect.on_message("ping", session) == ["pong"]
    sub = {"id": "trades1", "op": "subscribe",
           "args": [{"channel": "trades", "instId": "BTC-USDT"},
                    {"channel": "trades", "instId": "btc-xyz"}, "not an arg"]}
    ack, *errors = dialect.on_message(orjson.dumps(sub).decode(), session)
    assert adapter.parse(ack, 0).kind == "ack" and session.symbols == ["BTC-USDT"]
    assert [adapter.parse(e, 0).detail[:35] for e in errors] == [
        "60018: Wrong URL or channel:trades,"] * 2
    assert adapter.parse(dialect.on_message("{", session)[0], 0).detail.startswith("60012:")


def test_simulated_trade_is_one_fill_per_push():
    trade = SimTrade("ETH-USDT", 41, 1_700_000_000_123_000_000, "3200.25", "0.010000", "sell")
    [frame] = get_dialect("okx").encode([trade])
    assert get_adapter("okx").parse(frame, 0) == [
        ("ETH-USDT", 41, trade.ts_ns, 3200.25, 0.01, SELL, 41)]


@pytest.mark.usefixtures("no_thread_leak")
def test_pong_and_refused_instrument_over_a_socket(db):
    with Simulator("okx", rate=2000, count=200, seed=5,
                   faults=Faults(reject_symbols=("ETH-USDT",))) as sim:
        c = rtkit.Collector("okx", ["BTC-USDT", "ETH-USDT"], url=sim.url, db=db,
                            flush_interval_s=0.1)
        c.adapter.ping_interval_s = 0.2  # the real 20 s, shortened so a pong comes back soon
        with c:
            wait_for(lambda: c.stats["stored"] >= 200, 10)
            wait_for(lambda: c.pipeline.last_control == Control("pong"), 5)
    assert c.stats["venue_error"].startswith("60018: Wrong URL or channel:trades,instId:ETH-USDT")
    assert c.stats["rejected"] == 0 and c.stats["gaps"] == 0
    assert sqlite3.connect(db).execute("SELECT DISTINCT symbol FROM ticks").fetchall() == [
        ("BTC-USDT",)]
