"""Analysis helpers: exact values on hand-made ticks, and the same answers from the ring
snapshot and from SQLite after a real collection."""

import numpy as np
import pandas as pd
import pytest

import rtkit
from rtkit import analysis
from rtkit.frame import SIDE_CATEGORIES, empty_frame, tick_frame
from rtkit.sim import Simulator
from tests.conftest import wait_for

T0 = 1_767_225_600_000_000_000  # 2026-01-01 00:00:00 UTC in ns
SECOND = 1_000_000_000


def ticks(rows):
    """A tick frame from (venue, symbol, seconds after T0, latency ms, price, volume, side)."""
    venues = sorted({r[0] for r in rows})
    symbols = sorted({r[1] for r in rows})
    ts = np.array([T0 + int(r[2] * SECOND) for r in rows], np.int64)
    return tick_frame(
        timestamp=ts,
        received_at=ts + np.array([int(r[3] * 1e6) for r in rows], np.int64),
        venue_codes=np.array([venues.index(r[0]) for r in rows]), venues=venues,
        symbol_codes=np.array([symbols.index(r[1]) for r in rows]), symbols=symbols,
        price=np.array([r[4] for r in rows], float), volume=np.array([r[5] for r in rows], float),
        side_codes=np.array([SIDE_CATEGORIES.index(r[6]) if r[6] else -1 for r in rows], np.int8),
        trade_id=np.arange(1, len(rows) + 1, dtype=np.int64),
    )


SAMPLE = ticks([
    ("binance", "BTC-USDT", 0.1, 2.0, 100.0, 1.0, "buy"),
    ("binance", "BTC-USDT", 0.5, 4.0, 110.0, 3.0, "sell"),
    ("binance", "ETH-USDT", 0.7, 6.0, 10.0, 2.0, "buy"),
    ("binance", "BTC-USDT", 1.2, 8.0, 90.0, 2.0, None),
    ("coinbase", "BTC-USD", 1.5, 10.0, 95.0, 4.0, "buy"),
])


def at(seconds):
    return pd.Timestamp(T0 + seconds * SECOND, tz="UTC")


def test_ohlcv_bars_with_volume_trade_count_and_vwap():
    bars = analysis.ohlcv(SAMPLE, "1s")
    btc = bars.loc["BTC-USDT"]
    assert list(btc.index) == [at(0), at(1)]
    assert btc.loc[at(0)].to_dict() == {"open": 100.0, "high": 110.0, "low": 100.0,
                                        "close": 110.0, "volume": 4.0, "trades": 2,
                                        "vwap": (100 + 330) / 4}
    assert btc.loc[at(1), "trades"] == 1 and btc.loc[at(1), "close"] == 90.0
    per_venue = analysis.ohlcv(SAMPLE, "10s", by=["venue", "symbol"])
    assert per_venue.loc[("coinbase", "BTC-USD", at(0)), "volume"] == 4.0


def test_vwap_overall_and_per_bucket():
    overall = analysis.vwap(SAMPLE)
    assert overall["BTC-USDT"] == pytest.approx((100 + 330 + 180) / 6)
    assert overall["ETH-USDT"] == 10.0
    per_second = analysis.vwap(SAMPLE, "1s")
    assert per_second[("BTC-USDT", at(0))] == pytest.approx(430 / 4)
    assert per_second[("BTC-USDT", at(1))] == 90.0


def test_imbalance_counts_aggressor_volume_and_leaves_unknown_sides_out():
    out = analysis.imbalance(SAMPLE)
    btc = out.loc["BTC-USDT"]
    assert (btc["buy_volume"], btc["sell_volume"], btc["unknown_volume"]) == (1.0, 3.0, 2.0)
    assert btc["imbalance"] == pytest.approx((1 - 3) / 4)
    assert out.loc["ETH-USDT", "imbalance"] == 1.0
    only_unknown = analysis.imbalance(SAMPLE, "1s").loc[("BTC-USDT", at(1))]
    assert only_unknown["unknown_volume"] == 2.0 and np.isnan(only_unknown["imbalance"])


def test_quality_per_venue_with_rejects_gaps_and_latency_percentiles():
    rejects = pd.DataFrame({"venue": ["binance", "binance", "coinbase"],
                            "reason": ["malformed_json", "bad_number", "malformed_json"]})
    gaps = pd.DataFrame({"venue": ["binance", "binance", "binance"],
                         "kind": ["ids", "reconnect", "ids_across_reconnect"],
                         "missing": [3, None, 2]})
    q = analysis.quality(SAMPLE, rejects, gaps)
    assert list(q.index) == ["binance", "coinbase"]
    b = q.loc["binance"]
    assert (b["ticks"], b["symbols"], b["rejected"], b["rejected_malformed_json"],
            b["rejected_bad_number"]) == (4, 2, 2, 1, 1)
    assert (b["id_gaps"], b["missing_trades"], b["reconnects"]) == (2, 5, 1)
    assert b["latency_p50_ms"] == pytest.approx(5.0)
    assert b["latency_max_ms"] == pytest.approx(8.0)
    assert (b["first"], b["last"]) == (at(0.1), at(1.2))
    c = q.loc["coinbase"]
    assert (c["ticks"], c["rejected_bad_number"], c["id_gaps"], c["reconnects"]) == (1, 0, 0, 0)
    assert "rejected" not in analysis.quality(SAMPLE).columns  # unknown, not zero


def test_results_come_in_name_order_whatever_order_the_names_arrived_in():
    arrived = SAMPLE.copy()  # as if coinbase and ETH-USDT had come first
    for column in ("venue", "symbol"):
        names = arrived[column].cat.categories
        arrived[column] = arrived[column].cat.reorder_categories(sorted(names, reverse=True))
    assert list(arrived["symbol"].cat.categories) == ["ETH-USDT", "BTC-USDT", "BTC-USD"]
    expected = ["BTC-USD", "BTC-USDT", "ETH-USDT"]
    assert list(analysis.vwap(arrived).index) == expected
    assert list(analysis.imbalance(arrived).index) == expected
    assert list(analysis.ohlcv(arrived, "1h").index.get_level_values("symbol")) == expected
    assert list(analysis.quality(arrived, SAMPLE.iloc[:0].assign(reason=[])).index) == [
        "binance", "coinbase"]


def test_empty_input_gives_empty_results_with_the_same_columns():
    empty = empty_frame()
    assert list(analysis.ohlcv(empty).columns) == list(analysis.ohlcv(SAMPLE).columns)
    assert analysis.vwap(empty).empty
    assert list(analysis.imbalance(empty, "1s").columns) == list(
        analysis.imbalance(SAMPLE, "1s").columns)
    assert analysis.quality(empty).empty


def test_wrong_input_says_what_was_expected():
    with pytest.raises(ValueError, match="Collector.df or TickStore.ticks.*missing column"):
        analysis.vwap(pd.DataFrame({"price": [1.0]}))
    with pytest.raises(TypeError, match="expected a tick DataFrame"):
        analysis.imbalance([1, 2, 3])
    with pytest.raises(ValueError, match="TickStore.gaps"):
        analysis.quality(SAMPLE, gaps=pd.DataFrame({"venue": ["binance"]}))
    with pytest.raises(ValueError, match="fractions between 0 and 1"):
        analysis.quality(SAMPLE, percentiles=(50,))


@pytest.mark.usefixtures("no_thread_leak")
def test_ring_snapshot_and_sqlite_give_the_same_answers(db):
    with Simulator("binance", rate=None, count=3000, seed=4) as sim:
        c = rtkit.collect("binance", ["BTC-USDT", "ETH-USDT"], url=sim.url, db=db,
                          flush_interval_s=0.1)
        wait_for(lambda: c.stats["stored"] == 3000)
        c.stop()
    with rtkit.TickStore(db, readonly=True) as store:
        stored = store.ticks()
        rejects, gaps = store.rejects(), store.gaps()
    live = c.df
    pd.testing.assert_frame_equal(analysis.ohlcv(live, "100ms"), analysis.ohlcv(stored, "100ms"))
    pd.testing.assert_series_equal(analysis.vwap(live), analysis.vwap(stored))
    pd.testing.assert_frame_equal(analysis.imbalance(live), analysis.imbalance(stored))
    pd.testing.assert_frame_equal(analysis.quality(live, rejects, gaps),
                                  analysis.quality(stored, rejects, gaps))
    q = analysis.quality(stored, rejects, gaps).loc["binance"]
    assert (q["ticks"], q["rejected"], q["id_gaps"]) == (3000, 0, 0)
    assert analysis.ohlcv(stored, "1h")["trades"].sum() == 3000
