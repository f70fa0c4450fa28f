"""Hostile but well-formed values: an overflowing time, megabyte symbols and ids,
terminal escapes in ids, numbers and dates that only look plain. Each becomes a
reject of its own trade with a reason; the frame's good trades are kept, memory
stays bounded and the log is not flooded."""

from __future__ import annotations

import logging
import subprocess
import sys
from pathlib import Path

import orjson
import pytest

from rtkit.buffer import RingBuffer
from rtkit.pipeline import Pipeline
from rtkit.validate import MAX_SYMBOL_CHARS, MAX_TRADE_ID_CHARS, Reject, iso_ns, positive
from rtkit.venues import get_adapter
from rtkit.venues.base import Adapter

REPO = Path(__file__).resolve().parents[1]
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


# --- item 8: lengths -------------------------------------------------------------------------
def test_a_symbol_longer_than_the_cap_is_an_unknown_symbol_reject():
    long_symbol = "BTC" + "A" * MAX_SYMBOL_CHARS + "USDT"
    p = run("binance", [binance(1, s=long_symbol), binance(2)])
    assert reasons(p) == {"unknown_symbol": 1} and ids(p) == [2]
    adapter = p.adapter
    assert long_symbol not in adapter._symbol._known  # nothing long is remembered either
    longest = "B" * (MAX_SYMBOL_CHARS - 5) + "USDT"  # BASE-QUOTE of exactly the cap
    assert run("binance", [binance(1, s=longest)]).stats()["ticks"] == 1
    p = run("generic", [[generic(trade_id=1, symbol="A" * (MAX_SYMBOL_CHARS + 1)),
                         generic(trade_id=2, symbol="A" * MAX_SYMBOL_CHARS)]])
    assert reasons(p) == {"unknown_symbol": 1} and ids(p) == [2]


def test_a_trade_id_longer_than_the_cap_is_rejected():
    p = run("bybit", [bybit_frame(bybit("x" * (MAX_TRADE_ID_CHARS + 1)),
                                  bybit("y" * MAX_TRADE_ID_CHARS))])
    assert reasons(p) == {"out_of_range": 1} and ids(p) == ["y" * MAX_TRADE_ID_CHARS]
    p = run("generic", [[generic(trade_id="x" * 3_000_000), generic(trade_id="ok"),
                         generic(trade_id=2**64 - 1)]])
    assert reasons(p) == {"out_of_range": 1} and ids(p) == ["ok", str(2**64 - 1)]
    # an int only a user's function can make: its text would be over the cap
    p = run("generic", [[generic(n=1), generic(n=2)]],
            trade_id=lambda t: 10**100 if t["n"] == 1 else 10**50)
    assert reasons(p) == {"out_of_range": 1} and ids(p) == [str(10**50)]


PEAK_RSS_SCRIPT = r"""
import sys
from tests.conftest import peak_rss_kib
import orjson
from rtkit.buffer import RingBuffer
from rtkit.pipeline import Pipeline
from rtkit.venues import get_adapter

attack, count, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
venue = "binance" if attack == "symbol" else "generic"
pipeline = Pipeline(get_adapter(venue, default_symbol="BTC-USDT") if venue == "generic"
                    else get_adapter(venue), RingBuffer(1000))

def frame(i, filler):
    if attack == "id":
        return orjson.dumps({"trade_id": f"{i}{filler}", "price": "1", "volume": "1",
                             "timestamp": 1764000000000})
    if attack == "generic-symbol":
        return orjson.dumps({"symbol": f"BTC{i}{filler}", "trade_id": i, "price": "1",
                             "volume": "1", "timestamp": 1764000000000})
    return orjson.dumps({"e": "trade", "s": f"BTC{i}{filler}USDT", "t": i, "p": "1", "q": "1",
                         "T": 1764000000000, "m": True})

frame(0, "x" * size)  # the largest transient objects, once, before the baseline
pipeline.process(frame(0, ""), 1764000000000000000)
base = peak_rss_kib()
for i in range(1, count + 1):
    pipeline.process(frame(i, "x" * size), 1764000000000000000)
peak = peak_rss_kib()
print(pipeline.stats()["ticks"], (peak - base) // 1024)
"""


@pytest.mark.parametrize("attack", ["id", "symbol", "generic-symbol"])
def test_megabyte_ids_and_symbols_do_not_grow_memory(attack):
    """100 frames, each with a 3 MB trade id (generic) or symbol (binance, generic),
    through a Pipeline and a 1,000-row ring: kept, they would add ~300 MiB."""
    out = subprocess.run([sys.executable, "-c", PEAK_RSS_SCRIPT, attack, "100", "3000000"],
                         cwd=REPO, capture_output=True, text=True, timeout=120, check=True)
    ticks, grown_mib = map(int, out.stdout.split())
    assert ticks == 1  # only the warm-up frame's plain trade
    assert grown_mib < 40, f"peak RSS grew {grown_mib} MiB over 100 frames with 3 MB {attack}s"


# --- item 16: exactly as strict as the README --------------------------------------------------
def test_a_symbol_that_is_not_plain_letters_and_digits_is_rejected():
    for symbol in ("<SCRIPT>ALERT(1)</SCRIPT>", "BTC-USDT-SWAP", "BRK.B", " BTC-USDT",
                   "\u0661\u0662", "ＢＴＣ", "BTC\u202eUSDT", "\x1b[31mBTC", "BTC_USDT_X", "-1"):
        p = run("generic", [[generic(trade_id=1, symbol=symbol), generic(trade_id=2)]])
        assert reasons(p) == {"unknown_symbol": 1}, symbol
        assert ids(p) == [2], symbol
    for native in (" BTCUSDT", "BTCUSDT\t", "BTC\u00a0USDT", "ＢＴＣUSDT"):
        p = run("binance", [binance(1, s=native), binance(2)])
        assert reasons(p) == {"unknown_symbol": 1}, repr(native)
    # the documented forms still work
    p = run("generic", [[generic(trade_id=1, symbol="aapl"),
                         generic(trade_id=2, symbol="sol/usdc"),
                         generic(trade_id=3, symbol="1000PEPEUSDT"),
                         generic(trade_id=4, symbol=7)]])
    assert list(p.ring.snapshot()["symbol"]) == ["AAPL", "SOL-USDC", "1000PEPE-USDT", "7"]


@pytest.mark.parametrize("tid", ["\x1b[2J\x1b[31mhi", "abc\u202edef", "a\x00b", "tab\there",
                                 "\u0661\u0662\u0663", "caf\u00e9", "\x7f", ""])
def test_trade_ids_are_printable_ascii(tid):
    p = run("bybit", [bybit_frame(bybit(tid), bybit("20f43950-d8dd-5b31-9112-a178eb6023af"))])
    assert reasons(p) == {"bad_number": 1} and ids(p) == ["20f43950-d8dd-5b31-9112-a178eb6023af"]
    p = run("generic", [[generic(trade_id=tid), generic(trade_id="a b-c_d:1")]])
    assert reasons(p) == {"bad_number": 1} and ids(p) == ["a b-c_d:1"]


@pytest.mark.parametrize("text", ["1_000.5", " 65000 ", "65000\n", "\u0661\u0662\u0663",
                                  "\uff11\uff12\uff13", "\u00b2", "1\u00a0"])
def test_numbers_are_plain_ascii_decimal_text(text):
    with pytest.raises(Reject) as info:
        positive(text, "p")
    assert info.value.reason == "bad_number"
    # the venue fast paths agree with the careful path
    p = run("binance", [binance(1, p=text), binance(2, q=text), binance(3)])
    assert reasons(p) == {"bad_number": 2} and ids(p) == [3]
    p = run("bybit", [bybit_frame(bybit("a", p=text), bybit("b", v=text), bybit("c"))])
    assert reasons(p) == {"bad_number": 2} and ids(p) == ["c"]


@pytest.mark.parametrize("text", ["1e-8", "65000.00", "1E3", ".5", "5.", "+2", "0.00033"])
def test_plain_number_forms_are_still_read(text):
    assert positive(text, "p") == float(text)


@pytest.mark.parametrize("text", [
    "2026-02-31T00:00:00Z", "2025-02-29T00:00:00Z", "2100-02-29T00:00:00Z", "2026-04-31T00:00:00Z",
    "2026-01-01T00:00:00+99:99", "2026-01-01T00:00:00+24:00", "2026-01-01T00:00:00+01:60",
    "2026-01-01T00:00:0\u0661Z", "\uff12026-01-01T00:00:00Z", "2026-01-01T00:00:00.\u0661Z",
    "2026-+1-01T00:00:00Z", "2026-01-01T 1:00:00Z", "2026-01-01T00:00:00.1" + "0" * 5000 + "Z",
])
def test_iso_times_are_real_dates_in_ascii(text):
    with pytest.raises(Reject) as info:
        iso_ns(text)
    assert info.value.reason == "bad_timestamp"


def test_real_iso_dates_still_read():
    assert iso_ns("2024-02-29T00:00:00Z") == 1709164800_000000000
    assert iso_ns("2000-02-29T12:00:00.5+23:59") == 951739260_500000000
    assert iso_ns("2026-05-01T00:00:00Z") - iso_ns("2026-04-30T00:00:00Z") == 86400 * 10**9


def test_one_scan_of_a_frame_vouches_only_for_plain_text():
    """Bybit's fast path skips per-value checks for a frame that passes this scan."""
    from rtkit.venues.base import plain_text_frame

    for frame in ('{"i":"20f43950-d8dd","p":"1.5"}', b'{"i":"20f43950-d8dd","p":"1.5"}'):
        assert plain_text_frame(frame)
    for bad in ('{"i":"\\u001b[2J"}', '{"p":" 1"}', '{"p":"1_0"}', '{"i":"a\x7f"}',
                '{"i":"caf\u00e9"}', '{"i":"\\u202e"}'):
        assert not plain_text_frame(bad) and not plain_text_frame(bad.encode()), bad
    assert not plain_text_frame(memoryview(b"{}"))  # not text it can scan: checked per value
