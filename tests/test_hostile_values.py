"""Hostile but well-formed values: an overflowing time. It becomes a reject of
its own trade with a reason; the frame's good trades are kept and the log is
not flooded."""

from __future__ import annotations

import logging

import orjson
import pytest

from rtkit.buffer import RingBuffer
from rtkit.pipeline import Pipeline
from rtkit.venues import get_adapter
from rtkit.venues.base import Adapter

NOW = 1_764_000_000_000_000_000
T_MS = 1_764_000_000_000


def run(venue: str, frames: list, **options) -> Pipeline:
    pipeline = Pipeline(get_adapter(venue, **options), RingBuffer(1000))
    pipeline.process_frames([orjson.dumps(f) if not isinstance(f, bytes) else f for f in frames],
                            NOW)
    return pipeline


def binance(t=1, p="1.5", q="2", T=T_MS, s="BTCUSDT", e="trade") -> dict:  # noqa: N803
    return {"e": e, "E": T_MS, "s": s, "t": t, "a": t, "p": p, "q": q, "T": T, "m": False}


def bybit(i="a1", p="1.5", v="2", T=T_MS, s="BTCUSDT") -> dict:  # noqa: N803
    return {"T": T, "s": s, "S": "Buy", "v": v, "p": p, "i": i}


def bybit_frame(*trades) -> dict:
    return {"topic": "publicTrade.BTCUSDT", "type": "snapshot", "ts": T_MS, "data": list(trades)}


def okx(trade_id="5", ts=str(T_MS)) -> dict:
    return {"instId": "BTC-USDT", "tradeId": trade_id, "px": "1.5", "sz": "2", "side": "buy",
            "ts": ts, "count": "1"}


def kraken_v1(time="1764000000.5", price="1.5") -> list:
    return [price, "2", time, "b", "l", ""]


def generic(**fields) -> dict:
    return {"symbol": "BTC-USDT", "price": "1.5", "volume": "2", "timestamp": T_MS, **fields}


def reasons(pipeline: Pipeline) -> dict:
    return pipeline.stats()["rejected_by_reason"]


def ids(pipeline: Pipeline) -> list:
    return list(pipeline.ring.snapshot()["trade_id"])


# --- item 5: a time that overflows when scaled to ns ------------------------------------------
@pytest.mark.parametrize("time", [1e308, -1e308, 1.7e308])
def test_an_overflowing_time_rejects_its_trade_and_keeps_the_frames_good_trades(time):
    cases = {
        "binance": [binance(1, T=time), binance(2)],
        "binance-futures": [binance(1, T=time, e="aggTrade"), binance(2, e="aggTrade")],
        "bybit": [bybit_frame(bybit("bad", T=time), bybit("good"))],
        "okx": [{"arg": {"channel": "trades", "instId": "BTC-USDT"},
                 "data": [okx("5", ts=time), okx("6")]}],
        "kraken-v1": [[0, [kraken_v1(time=time), kraken_v1(price="2.5")], "trade", "XBT/USD"]],
        "bitstamp": [{"event": "trade", "channel": "live_trades_btcusd", "data": {
            "id": k, "price_str": "1.5", "amount_str": "2", "type": 0,
            "microtimestamp": time if k == 1 else T_MS * 1000} } for k in (1, 2)],
        "generic": [[generic(trade_id=1, timestamp=time), generic(trade_id=2)]],
    }
    for venue, frames in cases.items():
        p = run(venue, frames)
        assert reasons(p) == {"bad_timestamp": 1}, venue
        assert p.stats()["ticks"] == 1, venue  # the good trade of the frame (or the next frame)


def test_an_adapter_bug_logs_one_traceback_not_one_per_frame(caplog):
    class Broken(Adapter):
        name = "broken"

        def parse(self, frame, received_at_ns):
            raise OverflowError("cannot convert float infinity to integer")

    pipeline = Pipeline(Broken(), RingBuffer(10))
    with caplog.at_level(logging.DEBUG, logger="rtkit"):
        for _ in range(1000):
            pipeline.process(b"{}", NOW)
    assert pipeline.stats()["rejected_by_reason"] == {"adapter_error": 1000}
    records = [r for r in caplog.records if r.name == "rtkit"]
    assert len(records) == 4  # at the 1st (with its traceback), 10th, 100th and 1000th
    assert records[0].exc_info and not any(r.exc_info for r in records[1:])
    assert "failed on 1000 frames so far; the latest: OverflowError" in records[-1].getMessage()
