"""Hostile and odd frames, each with what the collector must make of it.

The simulator injects them into a live stream (``Faults(bad_frame_every=N)``)
and :func:`rtkit.sim.record.write_recording` mixes them into recordings, so a
live run and a replay are held to the same list. None of them may become a
tick; each must end up as one counted reject with the reason given (or, for
a reason of None, as a counted control message).
"""

from __future__ import annotations

#: ``(frame, expected reject reason or None for a control message, sent as a binary frame)``;
#: a ``bytes`` frame that is not binary goes out as a text frame with those exact bytes
HostileFrame = tuple[bytes | str, str | None, bool]

_TRADE = '{"e":"trade","E":1,"s":%s,"t":%s,"p":%s,"q":%s,"T":%s,"m":%s}'


def _trade(s='"BTCUSDT"', t="900000", p='"1.5"', q='"0.1"', ts="1764000000000", m="true"):
    """A Binance trade frame with one field made wrong."""
    return _TRADE % (s, t, p, q, ts, m)


BINANCE_BAD_FRAMES: list[HostileFrame] = [
    ('{"e":"trade","E":1,"s":"BTCUSDT","t":1,"p":"1.0"', "malformed_json", False),
    ("", "malformed_json", False),
    ("[" * 5000 + "]" * 5000, "malformed_json", False),  # nesting deeper than any parser's stack
    (b"\xff\xfe\x00garbage\x80", "malformed_json", False),  # invalid UTF-8 in a text frame
    (b'{"e":"trade","s":"\xed\xa0\x80"}', "malformed_json", False),  # a UTF-8-encoded surrogate
    (b"\x00\x01\x02binary", "binary_frame", True),
    ('{"e":"trade","s":"BTCUSDT","pad":"' + "x" * (5 * 1024 * 1024) + '"}', "frame_too_large",
     False),
    ('{"e":"trade","E":1,"s":"BTCUSDT","t":900001,"q":"0.1","T":1764000000000,"m":true}',
     "missing_field", False),
    (_trade(p='"-5"'), "non_positive", False),
    (_trade(q='"0"'), "non_positive", False),
    (_trade(p='"NaN"'), "bad_number", False),
    (_trade(p='"abc"'), "bad_number", False),
    (_trade(p="[1]"), "bad_number", False),
    (_trade(t='"900002"'), "bad_number", False),  # an id as text where Binance sends an int
    (_trade(p='"1e308"'), "out_of_range", False),
    (_trade(p='"Infinity"'), "out_of_range", False),
    (_trade(ts='"soon"'), "bad_timestamp", False),
    (_trade(ts="-1"), "bad_timestamp", False),
    (_trade(m='"yes"'), "bad_side", False),
    (_trade(s="12"), "unknown_symbol", False),
    ('{"e":"kline","E":1,"s":"BTCUSDT"}', "unknown_message", False),
    ('[{"e":"trade"}]', "unknown_message", False),
    ('{"result":null,"id":7}', None, False),  # a subscription ack: a control message
]

HOSTILE_FRAMES: dict[str, list[HostileFrame]] = {"binance": BINANCE_BAD_FRAMES}


def hostile_frames(venue: str) -> list[HostileFrame]:
    """The hostile frames written in ``venue``'s dialect."""
    try:
        return HOSTILE_FRAMES[venue]
    except KeyError:
        raise ValueError(
            f"hostile frames are written for {', '.join(HOSTILE_FRAMES)} only; for {venue!r} "
            "pass Faults(bad_frames=[(frame, expected_reason, binary), ...])"
        ) from None
