import orjson
import pytest

from rtkit.sim import get_dialect
from rtkit.sim.dialects import Session
from rtkit.sim.market import SimTrade
from rtkit.validate import BUY, SELL
from rtkit.venues import get_adapter


def test_endpoint_is_the_market_path_that_serves_aggtrade():
    a = get_adapter("binance-futures")
    assert a.url(None, ["BTC-USDT"]) == "wss://fstream.binance.com/market/ws"
    assert a.url("ws://127.0.0.1:9/market/ws", ["BTC-USDT"]) == "ws://127.0.0.1:9/market/ws"
    assert get_dialect("binance-futures").path == "/market/ws"


def test_subscribes_aggtrade_streams_in_batches():
    a = get_adapter("binance-futures")
    msgs = [orjson.loads(m) for m in a.subscribe_messages([f"C{i}-USDT" for i in range(250)])]
    assert [len(m["params"]) for m in msgs] == [200, 50]
    assert msgs[0]["params"][:2] == ["c0usdt@aggTrade", "c1usdt@aggTrade"]


def test_channel_option_is_aggtrade_only():
    assert get_adapter("binance-futures", channel="aggTrade").channel == "aggTrade"
    with pytest.raises(ValueError, match="binance-futures streams trades as channel 'aggTrade' "
                                         "only, not 'trade'"):
        get_adapter("binance-futures", channel="trade")
    with pytest.raises(TypeError):
        get_adapter("binance-futures", category="linear")


def test_symbols_are_perpetuals():
    a = get_adapter("binance-futures")
    for form in ["BTC-USDT", "btcusdt", "BTCUSDT"]:
        assert a.normalise_symbol(form) == "BTC-USDT"
    assert a.native_symbol("1000PEPE-USDT") == "1000pepeusdt"
    with pytest.raises(ValueError, match="dated futures are not supported; collect perpetuals"):
        a.normalise_symbol("BTCUSDT_260327")
    with pytest.raises(ValueError, match="not in binance-futures form"):
        a.normalise_symbol("BTC USDT")


def test_aggregate_ids_make_gaps_visible_and_m_is_the_maker_flag():
    a, dialect = get_adapter("binance-futures"), get_dialect("binance-futures")
    assert a.ids_consecutive
    trades = [SimTrade("ETH-USDT", 41, 1764000000123000000, "3000.50", "0.100000", "buy"),
              SimTrade("ETH-USDT", 42, 1764000000124000000, "3000.40", "0.200000", "sell")]
    ticks = [a.parse(frame, 0)[0] for frame in dialect.encode(trades)]
    assert ticks == [("ETH-USDT", 41, 1764000000123000000, 3000.5, 0.1, BUY),
                     ("ETH-USDT", 42, 1764000000124000000, 3000.4, 0.2, SELL)]
    first, last = (orjson.loads(f) for f in dialect.encode(trades))
    assert first["f"] <= first["l"] < last["f"] <= last["l"]  # fills move on with the id


def test_simulator_reads_the_adapters_subscribe():
    a, dialect, session = get_adapter("binance-futures"), get_dialect("binance-futures"), Session()
    [ack] = dialect.on_message(a.subscribe_messages(["BTC-USDT", "SOL-USDC"])[0], session)
    assert a.parse(ack, 0).kind == "ack"
    assert session.symbols == ["BTC-USDT", "SOL-USDC"]
