"""An outside review's attacks on backfill: a venue's REST history with values no frame
could carry is a counted reject, as a frame's would be, never an exception that ends
the backfill thread."""

from __future__ import annotations

import pytest

from rtkit.backfill import feed_rest_trades
from rtkit.buffer import RingBuffer
from rtkit.pipeline import Pipeline
from rtkit.venues import get_adapter

NOW = 1_700_000_000 * 10**9


@pytest.mark.parametrize(("trade_id", "ts_ns", "reason"), [
    (5, 2**63, "bad_timestamp"),        # past int64: the ring's column
    (5, 10**13 * 10**6, "bad_timestamp"),  # Binance's ``T`` of 10**13 ms: year 2286
    (5, 1, "bad_timestamp"),            # 1970: a frame's check refuses it
    (2**63, NOW, "out_of_range"),       # past int64
    (-5, NOW, "out_of_range"),
])
def test_rest_trades_out_of_range_are_rejects(trade_id, ts_ns, reason):
    p = Pipeline(get_adapter("binance"), RingBuffer(100))
    kept = feed_rest_trades(p, "BTC-USDT", [[trade_id, ts_ns, "1", "1", "buy"],
                                            [7, NOW, "1", "1", "buy"]], NOW)
    assert kept == 1  # the good one is kept, the bad one is a reject
    assert p.rejected_by_reason[reason] == 1


@pytest.mark.parametrize(("ct_val", "ct_type", "price", "size"), [
    (1e15, "linear", "1", "1000"),                         # 1e18 base units: past MAX_VALUE
    (1e-300, "linear", "1", "0.0000000000000000000000001"),  # 0 base units: underflow
    (1e15, "inverse", "0.000000001", "1000"),              # 1e27 base units
])
def test_rest_trades_of_contracts_out_of_range_are_rejects(ct_val, ct_type, price, size):
    """A live frame's contract size is checked once converted (``okx._base_units``); a
    backfilled one stored whatever the product was: 0, or past every bound."""
    from rtkit.instruments import Contract

    adapter = get_adapter("okx")
    symbol = "BTC-USD-SWAP" if ct_type == "inverse" else "BTC-USDT-SWAP"
    ccy = "USD" if ct_type == "inverse" else "BTC"
    adapter.set_contracts([Contract("okx", symbol, "swap", ct_val, ccy, ct_type)])
    p = Pipeline(adapter, RingBuffer(100))
    kept = feed_rest_trades(p, symbol, [[5, NOW, price, size, "buy"]], NOW)
    assert kept == 0
    assert p.rejected_by_reason["out_of_range"] + p.rejected_by_reason["non_positive"] == 1
