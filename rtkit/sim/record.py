"""Write recordings made of simulated trades (and, on request, hostile frames).

Used for the bundled sample that ``rtkit replay`` and the tests read, and by
the benchmarks for large recordings. Deterministic for a given seed.
"""

from __future__ import annotations

from pathlib import Path

from rtkit.recording import encode_event, encode_frame, open_recording
from rtkit.sim.dialects import get_dialect
from rtkit.sim.hostile import hostile_frames
from rtkit.sim.market import Market


def write_recording(path: str | Path, *, venue: str = "binance", trades: int = 1_000,
                    symbols: tuple[str, ...] = ("BTC-USDT", "ETH-USDT"), seed: int = 1,
                    duplicates: int = 0, bad_frames: bool = False,
                    start_ns: int = 1_764_000_000_000_000_000) -> dict:
    """Write a recording of ``trades`` simulated trades; returns what it contains.

    ``duplicates`` re-sends that many earlier frames (a reconnect overlap);
    ``bad_frames`` mixes in the venue's :mod:`rtkit.sim.hostile` frames. The
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
        for frame, reason, binary in hostile_frames(venue):
            extra.append((frame, binary))
            if reason:
                expected[reason] = expected.get(reason, 0) + 1
    path = Path(path)
    t = start_ns
    with open_recording(path, "w") as fh:
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
