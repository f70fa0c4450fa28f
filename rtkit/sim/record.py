"""Write recordings made of simulated trades (and, on request, hostile frames).

Used for the bundled sample that ``rtkit replay`` and the tests read, and by
the benchmarks for large recordings. Deterministic for a given seed.
"""

from __future__ import annotations

import gzip
from pathlib import Path

from rtkit.recording import encode_event, encode_frame
from rtkit.sim.dialects import get_dialect
from rtkit.sim.market import Market

#: hostile and odd frames in the Binance dialect, each with the reject reason it must get
BINANCE_BAD_FRAMES: list[tuple[bytes | str, str | None, bool]] = [
    ('{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1.0"', "malformed_json", False),
    ('{"e":"trade","E":1,"s":"BTCUSDT","t":900001,"q":"0.1","T":1764000000000,"m":true}',
     "missing_field", False),
    ('{"e":"trade","E":1,"s":"BTCUSDT","t":900002,"p":"-5","q":"0.1","T":1764000000000,"m":true}',
     "non_positive", False),
    ('{"e":"trade","E":1,"s":"BTCUSDT","t":900003,"p":"NaN","q":"0.1","T":1764000000000,"m":true}',
     "bad_number", False),
    ('{"e":"trade","E":1,"s":"BTCUSDT","t":900004,"p":"1e308","q":"0.1","T":1764000000000,'
     '"m":true}', "out_of_range", False),
    ('{"e":"trade","E":1,"s":"BTCUSDT","t":900005,"p":"abc","q":"0.1","T":1764000000000,"m":true}',
     "bad_number", False),
    ('{"e":"trade","E":1,"s":"BTCUSDT","t":900006,"p":"1.5","q":"0.1","T":"soon","m":true}',
     "bad_timestamp", False),
    ('{"e":"kline","E":1,"s":"BTCUSDT"}', "unknown_message", False),
    (b"\xff\xfe\x00garbage\x80", "malformed_json", False),
    (b"\x00\x01\x02binary", "binary_frame", True),
    ('{"e":"trade","s":"BTCUSDT","pad":"' + "x" * (5 * 1024 * 1024) + '"}', "frame_too_large",
     False),
    ('{"result":null,"id":7}', None, False),  # a subscription ack: a control message
]


def write_recording(path: str | Path, *, venue: str = "binance", trades: int = 1_000,
                    symbols: tuple[str, ...] = ("BTC-USDT", "ETH-USDT"), seed: int = 1,
                    duplicates: int = 0, bad_frames: bool = False,
                    start_ns: int = 1_764_000_000_000_000_000) -> dict:
    """Write a recording of ``trades`` simulated trades; returns what it contains.

    ``duplicates`` re-sends that many earlier frames (a reconnect overlap);
    ``bad_frames`` mixes in :data:`BINANCE_BAD_FRAMES` (Binance only). The
    returned dict has ``trades`` (the SimTrade list), ``frames`` and
    ``expected_rejects`` (reason → count).
    """
    dialect = get_dialect(venue)
    market = Market(seed)
    sim_trades = []
    for i in range(trades):
        sim_trades.append(market.trade(symbols[i % len(symbols)], start_ns + i * 1_000_000))
    frames = dialect.encode(sim_trades)
    extra: list[tuple[bytes | str, bool]] = [(f, False) for f in frames[:duplicates]]
    expected: dict[str, int] = {}
    if bad_frames:
        if venue != "binance":
            raise ValueError("bad_frames are written in the Binance dialect only")
        for frame, reason, binary in BINANCE_BAD_FRAMES:
            extra.append((frame, binary))
            if reason:
                expected[reason] = expected.get(reason, 0) + 1
    path = Path(path)
    opener = gzip.open if path.suffix == ".gz" else open
    t = start_ns
    with opener(path, "wb") as fh:
        fh.write(encode_event("open", t, venue))
        half = len(frames) // 2
        for frame in frames[:half]:
            t += 1_000_000
            fh.write(encode_frame(t, venue, frame))
        for frame, binary in extra:
            t += 1_000_000
            fh.write(encode_frame(t, venue, frame, binary))
        for frame in frames[half:]:
            t += 1_000_000
            fh.write(encode_frame(t, venue, frame))
        fh.write(encode_event("close", t, venue))
    return {"trades": sim_trades, "frames": len(frames) + len(extra), "expected_rejects": expected}
