"""Kraken v1 (legacy): XBT pairs, requests, and the synthetic trade id that lets
SQLite keep a re-sent trade once."""

import orjson
import pytest

from rtkit.buffer import RingBuffer
from rtkit.pipeline import Pipeline
from rtkit.sim import Market, get_dialect
from rtkit.store import TickStore
from rtkit.validate import BUY, SELL
from rtkit.venues import get_adapter
from rtkit.venues.kraken_v1 import synthetic_trade_id

ENTRY = ["5541.20000", "0.15850568", "1534614057.321597", "s", "l", ""]


def _frame(*entries, pair="XBT/USD"):
    return orjson.dumps([0, list(entries), "trade", pair])


@pytest.mark.parametrize(("common", "native"), [("BTC-USD", "XBT/USD"), ("ETH-BTC", "ETH/XBT"),
                                                ("DOGE-EUR", "XDG/EUR"), ("ETH-USD", "ETH/USD")])
def test_pairs_use_kraken_legacy_codes(common, native):
    a = get_adapter("kraken-v1")
    assert a.native_symbol(common) == native
    assert a.normalise_symbol(native) == common


@pytest.mark.parametrize(("glued", "common"), [("XBTUSD", "BTC-USD"), ("xbtusdt", "BTC-USDT"),
                                               ("ETHXBT", "ETH-BTC"), ("xdgusd", "DOGE-USD")])
def test_glued_legacy_codes_are_read_first(glued, common):
    assert get_adapter("kraken-v1").normalise_symbol(glued) == common


def test_bad_pair_says_what_is_expected():
    with pytest.raises(ValueError, match=r"not in kraken-v1 form \(expected e.g. 'BTC-USDT' or "
                                         r"'XBT/USD'\)"):
        get_adapter("kraken-v1").normalise_symbol("XBT/")


def test_subscribe_and_ping_requests():
    a = get_adapter("kraken-v1")
    (msg,) = [orjson.loads(m) for m in a.subscribe_messages(["BTC-USD", "DOGE-USD"])]
    assert msg == {"event": "subscribe", "pair": ["XBT/USD", "XDG/USD"],
                   "subscription": {"name": "trade"}, "reqid": 1}
    assert orjson.loads(a.ping_message()) == {"event": "ping", "reqid": 2}
    assert a.ping_interval_s is not None and a.ping_interval_s < 60
    assert a.default_url == "wss://ws.kraken.com" and not a.ids_consecutive


def test_side_is_the_taker_letter():
    sell, buy = ENTRY, [*ENTRY[:3], "b", *ENTRY[4:]]
    assert [t[5] for t in get_adapter("kraken-v1").parse(_frame(sell, buy), 0)] == [SELL, BUY]


def test_synthetic_id_is_stable_across_frames_positions_and_adapters():
    other = ["6060.00000", "0.02455000", "1534614057.324998", "b", "l", ""]
    first = get_adapter("kraken-v1").parse(_frame(ENTRY), 0)[0][1]
    later = get_adapter("kraken-v1").parse(_frame(other, ENTRY), 0)[1][1]
    assert first == later == synthetic_trade_id(ENTRY)
    assert 0 < first < 2**63  # fits the ring's int64 id column


@pytest.mark.parametrize("position", range(6))
def test_synthetic_id_changes_with_any_field_as_written(position):
    changed = list(ENTRY)
    changed[position] = {0: "5541.2", 1: "0.1585057", 2: "1534614057.321598", 3: "b", 4: "m",
                         5: "i"}[position]
    assert synthetic_trade_id(changed) != synthetic_trade_id(ENTRY)


def test_identical_trades_in_one_frame_get_their_own_ids():
    ids = [t[1] for t in get_adapter("kraken-v1").parse(_frame(ENTRY, ENTRY, ENTRY), 0)]
    assert ids == [synthetic_trade_id(ENTRY, n) for n in range(3)] and len(set(ids)) == 3


def test_resent_snapshot_is_stored_once(tmp_path):
    """After a resubscribe v1 sends its last trades again: same ids, one row each."""
    market = Market(seed=5)
    trades = [market.trade("BTC-USD") for _ in range(6)]
    dialect = get_dialect("kraken-v1")
    pipeline = Pipeline(get_adapter("kraken-v1"), RingBuffer(100))
    for frame in dialect.encode(trades[:4]) + dialect.encode_overlap(trades[1:]):  # 1..3 again
        pipeline.process(frame, 1)
    with TickStore(tmp_path / "t.sqlite") as store:
        batch = pipeline.take()
        pipeline.done(batch, store.write(*batch))
        stored = sorted(store.ticks()["trade_id"].astype(str))
    assert stored == sorted(dialect.expected_trade_id(t) for t in trades)
    s = pipeline.stats()
    assert (s["stored"], s["duplicates"], s["gaps"]) == (6, 3, 0)
