"""Cross-venue spreads on hand-made ticks: as-of alignment, staleness, quotes, fees."""

import pandas as pd
import pytest

from rtkit.analysis import opportunities, spread

T0 = pd.Timestamp("2026-01-01 00:00:00", tz="UTC")
BINANCE, COINBASE = ("binance", "BTC-USDT"), ("coinbase", "BTC-USD")
USDT_IS_USD = {"USDT": "USD"}


def ticks(*rows):
    """A tick frame from ``(leg, seconds after T0, price)`` rows, in any order."""
    times = [T0 + pd.Timedelta(seconds=s) for _, s, _ in rows]
    return pd.DataFrame({
        "timestamp": pd.DatetimeIndex(times), "received_at": pd.DatetimeIndex(times),
        "venue": pd.Categorical([leg[0] for leg, _, _ in rows]),
        "symbol": pd.Categorical([leg[1] for leg, _, _ in rows]),
        "price": [p for _, _, p in rows], "volume": 1.0,
        "side": pd.Categorical(["buy"] * len(rows), categories=["buy", "sell"]),
        "trade_id": range(len(rows)),
    })


# binance trades at 0.2 s, 1.5 s, exactly 2.0 s and 3.4 s; coinbase at 0.5 s, then
# nothing until 3.9 s: over seconds 2 and 3 its last price goes stale
TICKS = ticks((BINANCE, 3.4, 103.0), (COINBASE, 0.5, 99.5), (BINANCE, 0.2, 100.0),
              (BINANCE, 1.5, 101.0), (BINANCE, 2.0, 102.0), (COINBASE, 3.9, 104.0))


def test_legs_are_aligned_as_of_each_second_without_look_ahead():
    s = spread(TICKS, BINANCE, COINBASE, "1s", quote_map=USDT_IS_USD)
    # the grid starts when both legs have traded (ceil of 0.5 s) and ends at the first
    # second at or after the last trade (3.9 s)
    assert list(s.index) == [T0 + pd.Timedelta(seconds=k) for k in (1, 2, 3, 4)]
    # at 2 s the trade made exactly then counts; at 3 s neither 103 (3.4 s) nor 104
    # (3.9 s) has happened yet
    assert list(s["price_a"]) == [100.0, 102.0, 102.0, 103.0]
    assert list(s["price_b"]) == [99.5, 99.5, 99.5, 104.0]
    assert list(s["staleness_a"].dt.total_seconds()) == pytest.approx([0.8, 0.0, 1.0, 0.6])
    assert list(s["staleness_b"].dt.total_seconds()) == pytest.approx([0.5, 1.5, 2.5, 0.1])
    assert list(s["spread"]) == [0.5, 2.5, 2.5, -1.0]
    # over the mid price: 0.5 / 99.75, 2.5 / 100.75, 2.5 / 100.75, -1 / 103.5
    assert list(s["spread_bps"]) == pytest.approx(
        [0.5 / 99.75 * 1e4, 2.5 / 100.75 * 1e4, 2.5 / 100.75 * 1e4, -1 / 103.5 * 1e4])


def test_a_finer_grid_shows_the_stale_leg_ageing():
    s = spread(TICKS, BINANCE, COINBASE, "500ms", quote_map=USDT_IS_USD)
    assert s.index[0] == T0 + pd.Timedelta("500ms")  # coinbase's first trade is on the grid
    stale = s["staleness_b"].dt.total_seconds()
    assert stale.iloc[0] == 0.0 and stale.max() == 3.0  # at 3.5 s, 3 s after 0.5 s
    assert s.loc[T0 + pd.Timedelta("3.5s"), "price_a"] == 103.0


def test_different_quotes_are_refused_unless_mapped():
    with pytest.raises(ValueError, match=r"USDT and .* USD.*quote_map=\{'USDT': 'USD'\}"):
        spread(TICKS, BINANCE, COINBASE, "1s")
    assert not spread(TICKS, BINANCE, COINBASE, "1s", quote_map={"USD": "USDT"}).empty


@pytest.mark.parametrize("leg_b, freq, error, match", [
    (("coinbase", "ETH-USD"), "1s", ValueError, "different assets"),
    (("kraken", "BTC-USD"), "1s", ValueError, "no ticks for leg"),
    (COINBASE, "every second", ValueError, "freq must be a pandas frequency"),
    ("coinbase", "1s", TypeError, "a leg is"),
])
def test_bad_arguments_say_what_to_do(leg_b, freq, error, match):
    with pytest.raises(error, match=match):
        spread(TICKS, BINANCE, leg_b, freq, quote_map=USDT_IS_USD)


def test_opportunities_net_of_fees_skipping_stale_legs():
    s = spread(TICKS, BINANCE, COINBASE, "1s", quote_map=USDT_IS_USD)
    every = opportunities(s, fees_bps=(10, 20))  # a round trip pays 30 bps
    assert len(every) == 4
    fresh = opportunities(s, fees_bps=(10, 20), max_staleness="2s")  # drops 3 s (2.5 s old)
    assert list(fresh.index.second) == [1, 2, 4]
    assert list(fresh["net_bps"]) == pytest.approx(
        [0.5 / 99.75 * 1e4 - 30, 2.5 / 100.75 * 1e4 - 30, 1 / 103.5 * 1e4 - 30])
    # binance dearer: buy coinbase, sell binance; at 4 s the other way round
    assert list(fresh["buy"]) == ["coinbase BTC-USD", "coinbase BTC-USD", "binance BTC-USDT"]
    assert list(fresh["sell"]) == ["binance BTC-USDT", "binance BTC-USDT", "coinbase BTC-USD"]
    assert list(opportunities(s, fees_bps=15, threshold_bps=60).index.second) == [2, 3, 4]
    with pytest.raises(ValueError, match="result of rtkit.analysis.spread"):
        opportunities(TICKS)
