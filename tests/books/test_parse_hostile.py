"""Book parsers refuse what no venue sends, with the reason a reject names."""

from __future__ import annotations

import orjson
import pytest

from rtkit.books.parse import binance, bitstamp, coinbase, coinbase_exchange, kraken, kraken_v1, okx
from rtkit.validate import Reject

R = 1_700_000_000_000_000_000
DEPTH = {"e": "depthUpdate", "E": 1672515782136, "s": "BNBBTC", "U": 157, "u": 160,
         "b": [["0.0024", "10"]], "a": [["0.0026", "100"]]}


@pytest.mark.parametrize(("level", "reason"), [
    (["1e5", "1"], "bad_number"),          # exponent text: not what Binance writes
    (["-1", "1"], "bad_number"),
    ([" 1", "1"], "bad_number"),
    (["١٢", "1"], "bad_number"),           # Arabic-Indic digits
    (["1.2.3", "1"], "bad_number"),
    (["1", None], "missing_field"),
    ([1.5, "1"], "bad_number"),
    (["1" * 41, "1"], "bad_number"),       # longer than any price
    (["1"], "unknown_message"),
])
def test_bad_levels(level, reason):
    frame = dict(DEPTH, b=[level])
    with pytest.raises(Reject) as info:
        binance.parse(orjson.dumps(frame), R)
    assert info.value.reason == reason


def test_missing_sequence_and_bad_json():
    with pytest.raises(Reject) as info:
        binance.parse(orjson.dumps({k: v for k, v in DEPTH.items() if k != "U"}), R)
    assert info.value.reason == "missing_field"
    with pytest.raises(Reject) as info:
        binance.parse(b'{"e": "depthUpdate", ', R)
    assert info.value.reason == "malformed_json"
    with pytest.raises(Reject) as info:
        kraken.parse(b'{"channel": "book", "data": [', R)
    assert info.value.reason == "malformed_json"


def test_unknown_sides_are_refused():
    frame = {"channel": "l2_data", "timestamp": "2023-02-09T20:32:50Z", "sequence_num": 1,
             "events": [{"type": "update", "product_id": "BTC-USD", "updates": [
                 {"side": "sideways", "price_level": "1", "new_quantity": "1"}]}]}
    with pytest.raises(Reject) as info:
        coinbase.parse(orjson.dumps(frame), R)
    assert info.value.reason == "bad_side"
    frame2 = {"type": "l2update", "product_id": "BTC-USD", "changes": [["hold", "1", "1"]]}
    with pytest.raises(Reject) as info:
        coinbase_exchange.parse(orjson.dumps(frame2), R)
    assert info.value.reason == "bad_side"


def test_okx_unknown_action_and_bitstamp_bad_time():
    frame = {"arg": {"channel": "books", "instId": "BTC-USDT"}, "action": "replace", "data": []}
    with pytest.raises(Reject) as info:
        okx.parse(orjson.dumps(frame), R)
    assert info.value.reason == "unknown_message"
    diff = {"event": "data", "channel": "diff_order_book_btcusd",
            "data": {"microtimestamp": "soon", "bids": [], "asks": []}}
    with pytest.raises(Reject) as info:
        bitstamp.parse(orjson.dumps(diff), R)
    assert info.value.reason == "bad_timestamp"


def test_kraken_v1_short_frames_and_negative_v2_sizes():
    with pytest.raises(Reject) as info:
        kraken_v1.parse(b'[0, "book-10"]', R)
    assert info.value.reason == "unknown_message"
    text = ('{"channel":"book","type":"update","data":[{"symbol":"BTC/USD",'
            '"bids":[{"price":45283.5,"qty":-1}],"asks":[],"checksum":1}]}')
    with pytest.raises(Reject) as info:
        kraken.parse(text, R)
    assert info.value.reason == "bad_number"


def test_quote_prices_must_be_positive():
    ticker = {"u": 1, "s": "BNBUSDT", "b": "0", "B": "1", "a": "25.3", "A": "1"}
    with pytest.raises(Reject) as info:
        binance.parse(orjson.dumps(ticker), R)
    assert info.value.reason == "non_positive"


def test_a_subscribed_symbol_the_split_does_not_know_can_be_taught():
    frame = orjson.dumps(dict(DEPTH, s="ABCXYZQ"))
    with pytest.raises(Reject) as info:
        binance.parse(frame, R)
    assert info.value.reason == "unknown_symbol"
    binance.SYMBOLS.learn("ABCXYZQ", "ABC-XYZQ")
    assert binance.parse(frame, R).book[0].symbol == "ABC-XYZQ"
