"""Pure parsers from each venue's book and BBO frames to the neutral form.

One module per venue; each has ``parse(frame, received_at) -> Parsed`` (a frame
that is neither book nor BBO gives an empty ``Parsed``; a book or BBO frame
that is malformed raises :class:`~rtkit.validate.Reject`), and where the book
starts from REST, ``rest_snapshot(body, symbol, received_at) -> BookMessage``.
Nothing here does I/O; the adapters call these from their ``parse``.

Levels stay the venue's ``(price, size)`` strings (a checksum is computed from
them); quotes rows are floats, in the order of the ``quotes`` table:
``(venue, symbol, timestamp, received_at, bid_price, bid_size, ask_price,
ask_size, seq)`` (``seq`` 0 where the venue numbers none).
"""

from __future__ import annotations

from typing import NamedTuple

from rtkit.books import BookMessage
from rtkit.validate import Reject, positive
from rtkit.venues.base import loads

Level = tuple[str, str]
#: longest price or size text read (venues send at most ~20 characters); bounds
#: what a hostile frame can make the book store per level
MAX_NUMBER_CHARS = 40


class Parsed(NamedTuple):
    """What one frame holds: book messages and quotes rows (either may be empty)."""

    book: list[BookMessage]
    quotes: list[tuple]


def nothing() -> Parsed:
    """The answer for a frame that is neither book nor BBO (acks, trades, heartbeats)."""
    return Parsed([], [])


def as_json(frame):
    """A frame as JSON (bytes/str are parsed with orjson; a parsed frame passes)."""
    if isinstance(frame, (bytes, str)):
        return loads(frame)
    return frame


def decimal_text(value, name: str) -> str:
    """A price or size as the venue wrote it: ASCII digits with at most one ``.``
    (what every venue here sends); anything else is a ``bad_number`` reject."""
    if type(value) is str and 0 < len(value) <= MAX_NUMBER_CHARS and value.isascii():
        whole, _, frac = value.partition(".")
        if (whole.isdigit() or (not whole and frac)) and (not frac or frac.isdigit()):
            return value
    if value is None:
        raise Reject("missing_field", name)
    raise Reject("bad_number", f"{name}={value!r:.40}")


def _plain(text: str) -> bool:
    return len(text) <= MAX_NUMBER_CHARS and text.isascii() and text.replace(".", "", 1).isdigit()


def pairs(raw, name: str) -> list[Level]:
    """``[[price, size, …], …]`` → ``[(price, size), …]`` in the order sent."""
    if raw is None:
        return []
    if type(raw) is not list:
        raise Reject("unknown_message", f"{name} is {type(raw).__name__}, not a list")
    out = []
    for level in raw:
        if type(level) is not list or len(level) < 2:
            raise Reject("unknown_message", f"{name} level {level!r:.60}")
        price, amount = level[0], level[1]
        if not (type(price) is str and type(amount) is str and _plain(price) and _plain(amount)):
            price = decimal_text(price, name + " price")
            amount = decimal_text(amount, name + " size")
        out.append((price, amount))
    return out


def size(value, name: str) -> float:
    """A BBO size: 0 allowed (an empty side), else as :func:`positive`."""
    text = decimal_text(value, name) if type(value) is str else value
    if type(text) is str and float(text) == 0.0:
        return 0.0
    return positive(text, name)


def quote_row(venue: str, symbol: str, timestamp: int, received_at: int, bid, bid_size,
              ask, ask_size, seq: int | None) -> tuple:
    """One ``quotes`` row; prices must be positive, sizes non-negative; ``seq`` is
    the venue's update id, 0 where it numbers no quotes (the column is NOT NULL)."""
    return (venue, symbol, timestamp, received_at, positive(bid, "bid price"),
            size(bid_size, "bid size"), positive(ask, "ask price"), size(ask_size, "ask size"),
            0 if seq is None else seq)


def sequence(value, name: str, allow_negative: bool = False) -> int:
    """A venue sequence number (an int, or digits in a string)."""
    if type(value) is str and value.lstrip("-").isdigit() and len(value) <= 20:
        value = int(value)
    if type(value) is int and (allow_negative or value >= 0) and abs(value) < 1 << 63:
        return value
    if value is None:
        raise Reject("missing_field", name)
    raise Reject("bad_number", f"{name}={value!r:.40}")
