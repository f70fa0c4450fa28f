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


def test_a_subscribed_symbol_with_an_unknown_quote_is_read_right():
    a = get_adapter("binance")
    frame = ('{"e":"trade","s":"BTCEURI","t":1,"p":"1","q":"1","T":1672515782136,'
             '"m":false}')
    from rtkit.validate import Reject

    with pytest.raises(Reject):  # EURI is not a quote the split knows...
        get_adapter("binance").parse(frame, 1)
    a.subscribe_messages(["BTC-EURI"])  # ...but a subscribed symbol is taught
    assert a.parse(frame, 1)[0][0] == "BTC-EURI"


def test_a_recording_carries_its_symbols_so_replay_reads_them_alike(tmp_path):
    from rtkit.recording import encode_event, encode_frame
    from rtkit.replay import replay

    path = tmp_path / "r.jsonl"
    frame = ('{"e":"trade","s":"BTCEURI","t":1,"p":"1","q":"1","T":1672515782136,'
             '"m":false}')
    path.write_bytes(encode_event("open", 1, "binance", ["BTC-EURI"])
                     + encode_frame(2, "binance", frame))
    s = replay(path, db=tmp_path / "db.sqlite")
    assert s["stored"] == 1 and s["rejected"] == 0
