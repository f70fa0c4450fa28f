import orjson
import pytest

from rtkit.venues import get_adapter


def test_symbol_forms():
    a = get_adapter("binance")
    for form in ["BTC-USDT", "btcusdt", "BTCUSDT", "btc/usdt", "BTC_USDT"]:
        assert a.normalise_symbol(form) == "BTC-USDT"
    assert a.native_symbol("ETH-BTC") == "ethbtc"


@pytest.mark.parametrize("bad", ["BTC-", "BTCXYZQ", "", "BTC USDT", 42])
def test_bad_symbol_says_what_is_expected(bad):
    with pytest.raises(ValueError, match=r"not in binance form \(expected e.g. 'BTC-USDT'"):
        get_adapter("binance").normalise_symbol(bad)


def test_subscribe_messages_batch_streams():
    a = get_adapter("binance", channel="aggTrade")
    msgs = [orjson.loads(m) for m in a.subscribe_messages([f"C{i}-USDT" for i in range(450)])]
    assert [len(m["params"]) for m in msgs] == [200, 200, 50]
    assert msgs[0]["method"] == "SUBSCRIBE" and msgs[0]["params"][0] == "c0usdt@aggTrade"
    assert len({m["id"] for m in msgs}) == 3


def test_unknown_venue_and_option_errors():
    with pytest.raises(ValueError, match="unknown venue 'nope'; choose one of: .*binance"):
        get_adapter("nope")
    with pytest.raises(ValueError, match="channel must be 'trade' or 'aggTrade'"):
        get_adapter("binance", channel="depth")
    with pytest.raises(TypeError):
        get_adapter("binance", colour="red")
