"""The raw-frame recording format: JSON Lines, gzip when the name ends in ``.gz``.

One object per line::

    {"received_at": <int ns>, "venue": "binance", "frame": "<text exactly as received>"}
    {"event": "open" | "close", "received_at": <int ns>, "venue": "binance", "conn": <n>}
    {"event": "instruments", "received_at": <int ns>, "venue": "okx", "instruments": [...]}
    {"event": "rest_trades", "received_at": <int ns>, "venue": "okx", "symbol": "BTC-USDT",
     "trades": [[<id>, <ts ns>, "<price>", "<size>", "buy" | "sell"], ...]}
    {"event": "gap_finished", "received_at": <ns the ledger was updated>, "venue": "okx",
     "symbol": "BTC-USDT", "first_missing": "<id>", "last_missing": "<id>", "seen_at": <ns>,
     "kind": "ids" | "ids_across_reconnect" | "reconnect",
     "status": "filled" | "partial" | "unfillable", "filled": <trades>, "why": <text> | null}

    {"event": "books", "received_at": <ns the books were made>, "venue": "binance",
     "symbols": [...], "max_levels": 5000, "derive_quotes": false, "audit_every_ns": 6e10,
     "rest": true}
    {"event": "book_poll", "received_at": <int ns>, "venue": "binance"}
    {"event": "rest_request", "received_at": <int ns>, "venue": "binance", "symbol": "BTC-USDT",
     "purpose": "snapshot" | "audit"}
    {"event": "rest_snapshot", "received_at": <ns the answer was taken>, "venue": "binance",
     "symbol": "BTC-USDT", "purpose": "snapshot" | "audit",
     "message": {"timestamp", "received_at", "is_snapshot", "bids": "p s,p s,…", "asks",
                 "seq", "first_seq", "prev_seq", "checksum"} | "error": "why it failed"}

(``instruments``: the contract values a run converted sizes with, see
:mod:`rtkit.instruments`, so that its replay converts alike; ``rest_trades``: a page of
trades a backfill fetched for a gap, see :mod:`rtkit.backfill`, fed at the same place;
``gap_finished``: what the backfill made of a gap, written by
:meth:`rtkit.gaps.GapLedger.finish` once the gap's trades were stored, the gap named by
its row's fields (a replay's row has the same, not the same id), so a replay's ``gaps``
row ends with the same status, why, count and ``filled_at`` (the event's time). ``books``,
``rest_request`` and ``rest_snapshot``: what a run's order books depended on
besides the frames, written by :meth:`rtkit.books.keeper.BookKeeper.record_to`:
each REST answer sits between the frames where the live keeper took it, so a
replay gives it at the same place; ``book_poll``: a poll of books that fetch
between reads (retries and audits are due by the clock), so a replay polls
then too. A side's levels are ``"price size"`` pairs
joined by commas, the venue's own strings; a list of ``[price, size]`` when a
string holds a space or a comma.)

Connections: ``conn`` on an ``open`` or ``close`` event is the receiver's number of that
connection (1, 2, … in the order they opened); a ``close`` adds ``"handover": true`` when
its successor was already live (a make-before-break handover) and ``"stopping": true`` when
the collector was stopping (its books were not moved then). A frame read while more than
one connection of its venue was open (``redundancy=2``, a handover's overlap) says which
one it came on, ``"conn": <n>``; any other frame came on the one connection open. So a
replay feeds each book from the connection the live run fed it from, and moves it where
the live run did. A recording without ``conn`` (made before it was kept) replays as one
stream.

A frame that is not valid UTF-8 (or was a binary WebSocket frame) is kept
byte-exact as ``"frame_b64"`` with ``"binary": true`` when it came in a binary
frame; a frame refused for its size keeps its first bytes and ``"too_large"``,
its real size. Any run recorded with ``record_raw=`` replays to the same ticks.

A recording is untrusted input when it is read back: every field is checked,
a line is read with a bound, and a damaged gzip stream ends the reading with
a warning instead of losing what came before the damage.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import gzip
import io
import logging
import re
import threading
import zlib
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import orjson

from rtkit.books import BookMessage
from rtkit.instruments import MAX_RECORDED_CONTRACTS
from rtkit.pipeline import DEFAULT_MAX_FRAME_BYTES

log = logging.getLogger("rtkit")

#: largest value of a SQLite integer: sizes and times beyond it cannot be stored
MAX_INT64 = 2**63 - 1
#: JSON escapes a byte into at most 6 (``\u0001``): a recorded frame's line is at
#: most this many times the frame, plus LINE_OVERHEAD_BYTES for the other fields
JSON_ESCAPE_FACTOR = 6
#: room on a line for everything but the frame (an ``open`` event's symbol list…)
LINE_OVERHEAD_BYTES = 1024 * 1024
#: JSON outside strings (braces, brackets, commas, numbers…) that a line longer than
#: LINE_OVERHEAD_BYTES may hold: such a line is a frame, one long string, and parsing
#: a long line of ``{},{},…`` would cost some 30 times its length in Python objects
MAX_LINE_STRUCTURE_BYTES = 64 * 1024
#: a JSON string; possessive (``*+``): without them ``re`` keeps ~110 bytes a repeat to
#: backtrack, 450 MiB for a 4 MiB frame of control characters (each escaped ``\u0001``)
_JSON_STRING = re.compile(rb'"[^"\\]*+(?:\\.[^"\\]*+)*+"', re.DOTALL)
#: what a string counts toward MAX_LINE_STRUCTURE_BYTES: at most 4,096 in a long line
_STRING_COST = 16
#: bytes read at a time while skipping the rest of an over-long line
_SKIP_CHUNK_BYTES = 1024 * 1024
#: bytes of an over-long line kept for its reject row
_HEAD_BYTES = 4096
#: longest venue name a line may carry (the registry's are a few letters)
MAX_VENUE_CHARS = 64
#: trades one ``rest_trades`` event holds (a longer page is written as several events)
MAX_RECORDED_REST_TRADES = 1000
#: characters of a ``rest_trades`` symbol, and of each price and size text
MAX_REST_TEXT_CHARS = 64
#: characters of a ``gap_finished`` event's why (a ledger's why is cut to as many)
MAX_GAP_WHY_CHARS = 500
#: kinds of gap row a backfill finishes, and the statuses it ends them with
GAP_KINDS = ("ids", "ids_across_reconnect", "reconnect")
GAP_ENDS = ("filled", "partial", "unfillable")
#: largest connection number a line may carry (a receiver counts its connections from 1)
MAX_CONNECTION_NUMBER = 2**53
#: reject reason of a line that is not a recording entry
BAD_LINE = "bad_recording_line"
#: levels per side a recorded REST snapshot may hold (Binance's deepest is 5,000)
MAX_RECORDED_LEVELS = 100_000
#: characters of a price or size string in a recorded REST snapshot
MAX_LEVEL_CHARS = 64
#: books a ``books`` event may name (a collector's symbols are bounded alike)
MAX_RECORDED_BOOKS = 10_000
#: characters of a recorded REST failure
MAX_REST_ERROR_CHARS = 1000
#: a recorded request's purpose → the keeper's word for it
REST_PURPOSES = {"snapshot": "resync", "audit": "audit"}
_PURPOSE_WORDS = {v: k for k, v in REST_PURPOSES.items()}

_HEAD_TIME = re.compile(rb'"received_at"\s*:\s*(\d{1,19})\s*[,}]')
_HEAD_VENUE = re.compile(rb'"venue"\s*:\s*"([a-z0-9_]{1,64})"')


def max_line_bytes(max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES) -> int:
    """The longest line a recording of frames up to ``max_frame_bytes`` can hold.

    A longer line holds a frame over the limit, which a live collector would
    refuse as ``frame_too_large``: a replay refuses it alike, unread.
    """
    return JSON_ESCAPE_FACTOR * max_frame_bytes + LINE_OVERHEAD_BYTES


@dataclass(frozen=True, slots=True)
class Frame:
    received_at: int
    venue: str
    frame: bytes | str
    binary: bool = False
    #: the real size of a frame refused from its header (``frame`` holds its start)
    too_large: int = 0
    #: the connection it came on, when more than one was open (else 0: the one open)
    connection: int = 0


@dataclass(frozen=True, slots=True)
class Event:
    event: str  # "open" or "close"
    received_at: int
    venue: str
    #: on "open": the symbols subscribed, so a replay subscribes its adapter alike
    symbols: tuple[str, ...] = ()
    #: on "instruments": the contract facts (``rtkit.instruments.Contract.record()``)
    instruments: tuple[dict, ...] = ()
    #: on "rest_trades": the symbol and its trades ``(id, ts_ns, price, size, side)``
    symbol: str = ""
    trades: tuple[tuple, ...] = ()
    #: on "open" and "close": the receiver's number of the connection (0: not recorded)
    connection: int = 0
    #: on "close": its successor was live (a handover); the collector was stopping
    handover: bool = False
    stopping: bool = False


@dataclass(frozen=True, slots=True)
class BooksStart:
    """A ``books`` event: the order books a run kept on a venue, as its keeper made them."""

    received_at: int  # when the books were made
    venue: str
    symbols: tuple[str, ...]
    max_levels: int | None
    derive_quotes: bool
    audit_every_ns: int
    #: the books fetch REST snapshots (the run's keeper polls are recorded)
    rest: bool = False


@dataclass(frozen=True, slots=True)
class BookPoll:
    """A ``book_poll`` event: the live keeper polled its books then, between reads."""

    received_at: int
    venue: str


@dataclass(frozen=True, slots=True)
class RestEntry:
    """A ``rest_request`` (``request`` True) or a ``rest_snapshot``: a book's REST
    snapshot asked, or its answer (``message``, or None and ``error``) taken."""

    received_at: int
    venue: str
    symbol: str
    purpose: str  # the keeper's word: "resync" or "audit"
    request: bool = False
    message: BookMessage | None = None
    error: str = ""


@dataclass(frozen=True, slots=True)
class GapFinished:
    """A ``gap_finished`` event: what a run's backfill made of one gap (``GapLedger.finish``)."""

    received_at: int  # when the ledger was updated: the row's ``filled_at``
    venue: str
    symbol: str
    first_missing: str | None
    last_missing: str | None
    seen_at: int
    kind: str
    status: str  # "filled", "partial" or "unfillable"
    filled: int
    why: str | None

    def key(self) -> tuple:
        """The gap's row, as a replay finds it: every field a row is made with."""
        return (self.venue, self.symbol, self.first_missing, self.last_missing, self.seen_at,
                self.kind)


#: what a recording line is
Entry = Frame | Event | BooksStart | RestEntry | BookPoll | GapFinished


@dataclass(frozen=True, slots=True)
class BadLine:
    """A line that is not a recording entry, or too long to read: a counted reject."""

    lineno: int
    reason: str  # BAD_LINE or "frame_too_large"
    detail: str
    head: bytes  # the line's first bytes
    size: int  # the line's length in bytes
    #: what the head of an over-long line says, when it says it (else 0 and "")
    received_at: int = 0
    venue: str = ""


def open_recording(path: Path, mode: str):
    """A recording file in binary ``mode`` ('r', 'w', 'a'), gzip when it ends in .gz.

    A ``.gz`` opened to read is a :class:`GzipSalvage`: it ends at a damage
    instead of raising, and its ``.damage`` says what it was.
    """
    if path.suffix == ".gz":
        if mode == "r":
            return io.BufferedReader(GzipSalvage(path), _GZIP_OUT_BYTES)
        return gzip.open(path, mode + "b")
    return open(path, mode + "b")


#: compressed bytes read at a time, and most bytes decompressed at once (deflate
#: can expand 1,000 times: the bound keeps a small hostile file from filling memory)
_GZIP_IN_BYTES = 64 * 1024
_GZIP_OUT_BYTES = 256 * 1024


class GzipSalvage(io.RawIOBase):
    """The decompressed bytes of a gzip file, member after member, up to its first
    damage (a stream cut by a crash, a member with no trailer followed by another,
    corrupt bytes): the bytes end there, exactly, and ``.damage`` says why.

    ``gzip.open`` raises instead, losing the block it was decompressing.
    """

    def __init__(self, path: Path) -> None:
        self._raw = open(path, "rb")  # noqa: SIM115 (closed by close())
        self._d = zlib.decompressobj(16 + zlib.MAX_WBITS)
        self._fed = False  # the current member has started
        self._in = b""  # compressed bytes not given to the decompressor yet
        self._out = b""  # decompressed bytes not read yet
        self._out_at = 0
        self._done = False
        #: what ended the bytes before the end of the file, or None
        self.damage: str | None = None
        #: the damage is only a stream that stops short (a crash), not corrupt bytes
        self.cut_short = False
        #: decompressed bytes given out so far
        self.position = 0

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while self._out_at >= len(self._out):
            if self._done:
                return 0
            self._out, self._out_at = self._decompress(), 0
        n = min(len(buffer), len(self._out) - self._out_at)
        buffer[:n] = self._out[self._out_at:self._out_at + n]
        self._out_at += n
        self.position += n
        return n

    def _decompress(self) -> bytes:
        d = self._d
        if d.eof:  # a member ended with its trailer; another may follow (after zero padding)
            self._in = d.unused_data.lstrip(b"\0") + self._in
            self._d = d = zlib.decompressobj(16 + zlib.MAX_WBITS)
            self._fed = False
        while not self._in and not d.unconsumed_tail:
            raw = self._raw.read(_GZIP_IN_BYTES)
            if not raw:
                self._done = True
                if self._fed:
                    self.damage = "the gzip stream is cut short (no end-of-stream marker)"
                    self.cut_short = True
                return b""
            self._in = raw if self._fed else raw.lstrip(b"\0")
        data, self._in = d.unconsumed_tail or self._in, b""
        saved = d.copy()
        self._fed = True
        try:
            return d.decompress(data, _GZIP_OUT_BYTES)
        except zlib.error as exc:
            self._done = True
            self.damage = f"the gzip stream is damaged ({exc})"
            return self._salvage(saved, data)

    @staticmethod
    def _salvage(d, data: bytes) -> bytes:
        """What ``data`` decompresses to before the byte that is damaged."""
        out = []
        for i in range(len(data)):
            try:
                out.append(d.decompress(data[i:i + 1]))
            except zlib.error:
                break
        return b"".join(out)

    def close(self) -> None:
        self._raw.close()
        super().close()


def _int(obj: dict, key: str, default: int | None = None) -> int:
    value = obj.get(key, default)
    if value is None:
        raise ValueError(f"no {key!r}")
    if type(value) is not int or not 0 <= value <= MAX_INT64:
        raise ValueError(f"{key!r} must be an integer from 0 to 2**63-1, not {_short(value)}")
    return value


def _short(value) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:40] + "…"


def _structure_over(line: bytes, limit: int) -> bool:
    """True when ``line`` has more than ``limit`` bytes outside its JSON strings, each
    string counting _STRING_COST bytes too (it is an object when parsed). One pass
    from string to string, stopping at the limit; a string that never ends makes
    the rest of the line count as outside."""
    outside = pos = 0
    while (quote := line.find(b'"', pos)) != -1:
        outside += quote - pos + _STRING_COST
        if outside > limit:
            return True
        string = _JSON_STRING.match(line, quote)
        if string is None:
            return outside + len(line) - quote > limit
        pos = string.end()
    return outside + len(line) - pos > limit


def parse_line(line: bytes) -> Entry:
    """One recording line as its entry; ValueError saying what is wrong with it."""
    if len(line) > LINE_OVERHEAD_BYTES and _structure_over(line, MAX_LINE_STRUCTURE_BYTES):
        raise ValueError(f"a line of {len(line):,} bytes with more than "
                         f"{MAX_LINE_STRUCTURE_BYTES:,} of them outside JSON strings (a long "
                         "recording line is one long frame): not parsed")
    try:
        obj = orjson.loads(line)
    except orjson.JSONDecodeError as exc:
        raise ValueError(f"not JSON ({exc})") from None
    if type(obj) is not dict:
        raise ValueError(f"a JSON {type(obj).__name__}, not an object")
    received_at = _int(obj, "received_at")
    venue = obj.get("venue")
    if type(venue) is not str or not 0 < len(venue) <= MAX_VENUE_CHARS:
        raise ValueError(f"'venue' must be a name of 1 to {MAX_VENUE_CHARS} characters, "
                         f"not {_short(venue)}")
    if "event" in obj:
        event, symbols = obj["event"], obj.get("symbols", [])
        if event == "instruments":
            return _instruments_event(obj, received_at, venue)
        if event == "rest_trades":
            return _rest_trades_event(obj, received_at, venue)
        if event == "gap_finished":
            return _gap_finished_event(obj, received_at, venue)
        if event in _BOOK_EVENTS:
            return _BOOK_EVENTS[event](obj, received_at, venue)
        if event not in ("open", "close"):
            raise ValueError(f"'event' must be \"open\" or \"close\", not {_short(event)}")
        if type(symbols) is not list or not all(type(s) is str for s in symbols):
            raise ValueError(f"'symbols' must be a list of names, not {_short(symbols)}")
        flags = [obj.get(key, False) for key in ("handover", "stopping")]
        if not all(type(flag) is bool for flag in flags) or (event == "open" and any(flags)):
            raise ValueError(f"'handover' and 'stopping' must be true or false, on a close "
                             f"only, not {_short(flags)}")
        return Event(event, received_at, venue, tuple(symbols), connection=_connection(obj),
                     handover=flags[0], stopping=flags[1])
    if "frame_b64" in obj:
        encoded, binary = obj["frame_b64"], obj.get("binary", False)
        if type(encoded) is not str or type(binary) is not bool:
            raise ValueError("'frame_b64' must be base64 text and 'binary' true or false")
        try:
            decoded = base64.b64decode(encoded, validate=True)
        except binascii.Error as exc:
            raise ValueError(f"'frame_b64' is not base64 ({exc})") from None
        return Frame(received_at, venue, decoded, binary, _int(obj, "too_large", 0),
                     _connection(obj))
    frame = obj.get("frame")
    if type(frame) is not str:
        raise ValueError(f"'frame' must be text, not {_short(frame)}")
    return Frame(received_at, venue, frame, connection=_connection(obj))


def _connection(obj: dict) -> int:
    """A line's ``conn`` (a connection's number, 1 to MAX_CONNECTION_NUMBER), or 0."""
    value = obj.get("conn", 0)
    if "conn" in obj and (type(value) is not int or not 0 < value <= MAX_CONNECTION_NUMBER):
        raise ValueError(f"'conn' must be a connection's number, 1 to "
                         f"{MAX_CONNECTION_NUMBER:,}, not {_short(value)}")
    return value


def _overlong(fh, head: bytes, lineno: int) -> BadLine:
    """Skip the rest of a line longer than the bound; a ``frame_too_large`` reject."""
    size = len(head)
    head = head[:_HEAD_BYTES]
    while True:
        chunk = fh.readline(_SKIP_CHUNK_BYTES)
        size += len(chunk)
        if not chunk or chunk.endswith(b"\n"):
            break
    time, venue = _HEAD_TIME.search(head), _HEAD_VENUE.search(head)
    received_at = int(time.group(1)) if time else 0
    return BadLine(lineno, "frame_too_large", f"line {lineno}: {size} bytes, longer than a "
                   "recorded frame can be", head, size,
                   received_at if received_at <= MAX_INT64 else 0,
                   venue.group(1).decode() if venue else "")


def _entries(fh, limit: int) -> Iterator[Entry | BadLine]:
    """Every line as an entry or a BadLine; a last line cut by a crash is skipped."""
    lineno = 0
    while line := fh.readline(limit):
        lineno += 1
        if len(line) == limit and not line.endswith(b"\n"):
            yield _overlong(fh, line, lineno)
            continue
        if not line.strip():
            continue
        try:
            yield parse_line(line)
        except ValueError as exc:
            if not line.endswith(b"\n"):  # only the last line can lack its newline
                log.warning("rtkit: skipped the unfinished last line %d of a recording "
                            "(cut short by a crash?)", lineno)
                return
            yield BadLine(lineno, BAD_LINE, f"line {lineno}: {exc}"[:500], line[:_HEAD_BYTES],
                          len(line))


#: entries read between two calls of read_recording's ``progress``
PROGRESS_EVERY_ENTRIES = 1024


def file_position(fh) -> int:
    """Bytes of the file on disk read so far (compressed ones for a ``.gz``)."""
    raw = fh.raw
    return getattr(raw, "_raw", raw).tell()


def read_recording(path: str | Path, *, max_frame_bytes: int = DEFAULT_MAX_FRAME_BYTES,
                   progress: Callable[[int], None] | None = None
                   ) -> Iterator[Entry | BadLine]:
    """Frames and connection events of a recording, in order, and its bad lines.

    A line that is not a recording entry comes as a :class:`BadLine`, and so
    does a line longer than :func:`max_line_bytes`, skipped unread. Raises
    ValueError when the file is not a recording at all (its first line is not
    one, or a ``.gz`` that is not gzip). A last line cut by a crash and a gzip
    stream cut short or damaged end the reading with a warning: what came
    before is kept. ``progress`` is called now and then with the bytes of the file
    read so far (of its size on disk), and once at the end.
    """
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(
            f"no recording at '{path}'; give the path of a .jsonl or .jsonl.gz file "
            "(e.g. one written by Collector(record_raw=...))"
        )
    read, damage = 0, None
    with open_recording(path, "r") as fh:
        for entry in _entries(fh, max_line_bytes(max_frame_bytes)):
            if (not read and type(entry) is BadLine and not entry.venue
                    and b'"venue"' not in entry.head):
                # a first line with no venue at all: not a recording (a line of one with
                # a bad field is a counted reject like any other)
                raise ValueError(
                    f"'{path}' is not an rtkit recording: its first line is not one "
                    f"({entry.detail}); each line must be "
                    "{\"received_at\": ns, \"venue\": name, \"frame\": text}")
            read += 1
            if progress is not None and not read % PROGRESS_EVERY_ENTRIES:
                progress(file_position(fh))
            yield entry
        if progress is not None:
            progress(file_position(fh))
        damage = getattr(fh.raw, "damage", None)
        if damage and not fh.raw.position and not fh.raw.cut_short:
            raise ValueError(f"'{path}' is not a gzip file, or is damaged from its start "
                             f"({damage}); a .gz recording is gzip-compressed JSON Lines "
                             "(name it .jsonl if it is plain text)")
        if damage:
            log.warning("rtkit: the recording %s is cut short or damaged after %d lines (%s; "
                        "an earlier run was killed?); replayed what came before", path, read,
                        damage)
    if not read and not damage:
        log.warning("rtkit: the recording %s holds no lines", path)


def encode_frame(received_at: int, venue: str, frame: bytes | str, binary: bool = False,
                 connection: int = 0) -> bytes:
    """One recording line (with its newline) for a frame (``connection``: the number of
    the connection it came on, written when not 0)."""
    if not binary:
        if isinstance(frame, (bytes, bytearray)):
            with contextlib.suppress(UnicodeDecodeError):
                frame = bytes(frame).decode("utf-8")
        if isinstance(frame, str):
            line = {"received_at": received_at, "venue": venue, "frame": frame}
            if connection:
                line["conn"] = connection
            return orjson.dumps(line) + b"\n"
    obj = {"received_at": received_at, "venue": venue,
           "frame_b64": base64.b64encode(frame.encode() if isinstance(frame, str)
                                         else bytes(frame)).decode()}
    if binary:
        obj["binary"] = True
    if connection:
        obj["conn"] = connection
    return orjson.dumps(obj) + b"\n"


def _instruments_event(obj: dict, received_at: int, venue: str) -> Event:
    facts = obj.get("instruments")
    if type(facts) is not list or len(facts) > MAX_RECORDED_CONTRACTS \
            or not all(type(f) is dict for f in facts):
        raise ValueError(f"'instruments' must be a list of at most {MAX_RECORDED_CONTRACTS:,} "
                         f"objects, not {_short(facts)}")
    return Event("instruments", received_at, venue, instruments=tuple(facts))


def _rest_trades_event(obj: dict, received_at: int, venue: str) -> Event:
    symbol, trades = obj.get("symbol"), obj.get("trades")
    if type(symbol) is not str or not 0 < len(symbol) <= MAX_REST_TEXT_CHARS:
        raise ValueError(f"'symbol' must be a name of 1 to {MAX_REST_TEXT_CHARS} characters, "
                         f"not {_short(symbol)}")
    if type(trades) is not list or not 0 < len(trades) <= MAX_RECORDED_REST_TRADES:
        raise ValueError(f"'trades' must be a list of 1 to {MAX_RECORDED_REST_TRADES:,} trades, "
                         f"not {_short(trades)}")
    rows = []
    for t in trades:
        if not (type(t) is list and len(t) == 5 and type(t[0]) is int and 0 <= t[0] <= MAX_INT64
                and type(t[1]) is int and 0 < t[1] <= MAX_INT64
                and all(type(x) is str and 0 < len(x) <= MAX_REST_TEXT_CHARS for x in t[2:4])
                and t[4] in ("buy", "sell", "")):
            raise ValueError(f"a trade of 'trades' must be [id, ts_ns, \"price\", \"size\", "
                             f"\"buy\"|\"sell\"], not {_short(t)}")
        rows.append(tuple(t))
    return Event("rest_trades", received_at, venue, symbol=symbol, trades=tuple(rows))


def _gap_finished_event(obj: dict, received_at: int, venue: str) -> GapFinished:
    """A ``gap_finished`` line, each field as a ledger's ``finish`` could have written it."""
    ids = []
    for key in ("first_missing", "last_missing"):
        value = obj.get(key)
        if value is not None and (type(value) is not str
                                  or not 0 < len(value) <= MAX_REST_TEXT_CHARS):
            raise ValueError(f"{key!r} must be null or an id of 1 to {MAX_REST_TEXT_CHARS} "
                             f"characters, not {_short(value)}")
        ids.append(value)
    kind, status, why = obj.get("kind"), obj.get("status"), obj.get("why")
    if type(kind) is not str or kind not in GAP_KINDS:
        raise ValueError(f"'kind' must be one of {', '.join(GAP_KINDS)}, not {_short(kind)}")
    if type(status) is not str or status not in GAP_ENDS:
        raise ValueError(f"'status' must be one of {', '.join(GAP_ENDS)}, not {_short(status)}")
    filled = _int(obj, "filled")
    if why is not None and (type(why) is not str or not 0 < len(why) <= MAX_GAP_WHY_CHARS):
        raise ValueError(f"'why' must be null or text of 1 to {MAX_GAP_WHY_CHARS} characters, "
                         f"not {_short(why)}")
    if (status == "filled") != (why is None):
        raise ValueError(f"a gap ends filled without a why, partial or unfillable with one, "
                         f"not {status} with why {_short(why)}")
    if (status == "unfillable") != (filled == 0):
        raise ValueError(f"a gap ends unfillable with 0 trades filled, filled or partial with "
                         f"some, not {status} with {filled:,}")
    return GapFinished(received_at, venue, _symbol(obj), ids[0], ids[1], _int(obj, "seen_at"),
                       kind, status, filled, why)
def _symbol(obj: dict, key: str = "symbol") -> str:
    from rtkit.validate import MAX_SYMBOL_CHARS

    value = obj.get(key)
    if type(value) is not str or not 0 < len(value) <= MAX_SYMBOL_CHARS:
        raise ValueError(f"{key!r} must be a name of 1 to {MAX_SYMBOL_CHARS} characters, "
                         f"not {_short(value)}")
    return value


def _books_event(obj: dict, received_at: int, venue: str) -> BooksStart:
    symbols = obj.get("symbols")
    if type(symbols) is not list or len(symbols) > MAX_RECORDED_BOOKS:
        raise ValueError(f"'symbols' must be a list of at most {MAX_RECORDED_BOOKS:,} names, "
                         f"not {_short(symbols)}")
    names = tuple(_symbol({"symbol": s}) for s in symbols)
    levels = obj.get("max_levels")
    if levels is not None:
        levels = _int(obj, "max_levels")
    derive = obj.get("derive_quotes")
    if type(derive) is not bool:
        raise ValueError(f"'derive_quotes' must be true or false, not {_short(derive)}")
    rest = obj.get("rest", False)
    if type(rest) is not bool:
        raise ValueError(f"'rest' must be true or false, not {_short(rest)}")
    return BooksStart(received_at, venue, names, levels, derive, _int(obj, "audit_every_ns"),
                      rest)


def _book_poll(obj: dict, received_at: int, venue: str) -> BookPoll:
    return BookPoll(received_at, venue)


def _purpose(obj: dict) -> str:
    purpose = obj.get("purpose")
    if type(purpose) is not str or purpose not in REST_PURPOSES:
        raise ValueError(f"'purpose' must be \"snapshot\" or \"audit\", not {_short(purpose)}")
    return REST_PURPOSES[purpose]


def _rest_request(obj: dict, received_at: int, venue: str) -> RestEntry:
    return RestEntry(received_at, venue, _symbol(obj), _purpose(obj), request=True)


def _rest_snapshot(obj: dict, received_at: int, venue: str) -> RestEntry:
    symbol, purpose = _symbol(obj), _purpose(obj)
    if "error" in obj:
        error = obj["error"]
        if type(error) is not str or len(error) > MAX_REST_ERROR_CHARS or "message" in obj:
            raise ValueError(f"'error' must be text of at most {MAX_REST_ERROR_CHARS} "
                             f"characters (and no 'message' beside it), not {_short(error)}")
        return RestEntry(received_at, venue, symbol, purpose, error=error)
    m = obj.get("message")
    if type(m) is not dict:
        raise ValueError(f"'message' must be an object, not {_short(m)}")
    is_snapshot = m.get("is_snapshot")
    if type(is_snapshot) is not bool:
        raise ValueError(f"'is_snapshot' must be true or false, not {_short(is_snapshot)}")
    message = BookMessage(symbol, _int(m, "timestamp"), _int(m, "received_at"), is_snapshot,
                          _levels(m, "bids"), _levels(m, "asks"), seq=_sequence(m, "seq"),
                          first_seq=_sequence(m, "first_seq"), prev_seq=_sequence(m, "prev_seq"),
                          checksum=_sequence(m, "checksum"), source="rest")
    return RestEntry(received_at, venue, symbol, purpose, message=message)


def _sequence(m: dict, key: str) -> int | None:
    value = m.get(key)
    if value is not None and (type(value) is not int or not -MAX_INT64 <= value <= MAX_INT64):
        raise ValueError(f"{key!r} must be null or an integer of 64 bits, not {_short(value)}")
    return value


def _levels(m: dict, key: str) -> list[tuple[str, str]]:
    """A side's levels, ``"p s,p s"`` or ``[[p, s], …]``, each string bounded."""
    value = m.get(key)
    if type(value) is str:
        if value.count(",") >= MAX_RECORDED_LEVELS:
            raise ValueError(f"{key!r} holds more than {MAX_RECORDED_LEVELS:,} levels")
        pairs = [level.split(" ") for level in value.split(",")] if value else []
    elif type(value) is list and len(value) <= MAX_RECORDED_LEVELS:
        pairs = value
    else:
        raise ValueError(f"{key!r} must be levels (\"price size,…\" or a list of at most "
                         f"{MAX_RECORDED_LEVELS:,} [price, size]), not {_short(value)}")
    out = []
    for pair in pairs:
        if type(pair) is not list or len(pair) != 2 or not all(
                type(x) is str and 0 < len(x) <= MAX_LEVEL_CHARS for x in pair):
            raise ValueError(f"a level of {key!r} must be a price and a size, each of 1 to "
                             f"{MAX_LEVEL_CHARS} characters, not {_short(pair)}")
        out.append((pair[0], pair[1]))
    return out


_BOOK_EVENTS: dict[str, Callable[[dict, int, str], BooksStart | RestEntry | BookPoll]] = {
    "book_poll": _book_poll, "books": _books_event, "rest_request": _rest_request,
                "rest_snapshot": _rest_snapshot}


def _encode_levels(levels: list[tuple[str, str]]) -> str | list:
    """A side as ``"p s,p s"``; as a list of pairs when a string would not split back."""
    text = ",".join(f"{p} {s}" for p, s in levels)
    if text.count(",") == max(len(levels) - 1, 0) and text.count(" ") == len(levels) \
            and all(p and s for p, s in levels):
        return text
    return [list(level) for level in levels]


def encode_rest_answer(received_at: int, venue: str, symbol: str, purpose: str,
                       msg: BookMessage | None, error: str = "") -> bytes:
    """A ``rest_snapshot`` line: the answer the keeper took at ``received_at``."""
    line: dict = {"event": "rest_snapshot", "received_at": received_at, "venue": venue,
                  "symbol": symbol, "purpose": _PURPOSE_WORDS.get(purpose, purpose)}
    if msg is None:
        line["error"] = error[:MAX_REST_ERROR_CHARS]
    else:
        line["message"] = {"timestamp": msg.timestamp, "received_at": msg.received_at,
                           "is_snapshot": msg.is_snapshot, "bids": _encode_levels(msg.bids),
                           "asks": _encode_levels(msg.asks), "seq": msg.seq,
                           "first_seq": msg.first_seq, "prev_seq": msg.prev_seq,
                           "checksum": msg.checksum}
    return orjson.dumps(line) + b"\n"


def encode_event(event: str, received_at: int, venue: str, symbols=(), connection: int = 0,
                 handover: bool = False, stopping: bool = False) -> bytes:
    """An ``open`` or ``close`` line (``connection``, ``handover`` and ``stopping`` are
    written when set)."""
    line: dict = {"event": event, "received_at": received_at, "venue": venue}
    if symbols:
        line["symbols"] = list(symbols)
    if connection:
        line["conn"] = connection
    if handover:
        line["handover"] = True
    if stopping:
        line["stopping"] = True
    return orjson.dumps(line) + b"\n"


def _first_line_is_ours(path: Path) -> bool:
    """True when the first line of an existing file is a recording line."""
    try:
        with open_recording(path, "r") as fh:
            line = fh.readline(max_line_bytes())
            damage = getattr(fh.raw, "damage", None)
            if not line.strip():  # nothing in it yet (a run killed at once), or not gzip
                return damage is None or fh.raw.cut_short
        parse_line(line)
    except (OSError, ValueError):
        return False
    return True


#: the last .gz found to end cleanly (path, size, mtime): not read twice in a row
_last_clean_gzip: tuple | None = None


def _ends_cleanly(path: Path) -> bool:
    """True when appending cannot glue onto a damaged end: a ``.jsonl`` ends with
    a whole line, a ``.gz`` reads to its end (every member with its trailer)."""
    if path.suffix != ".gz":
        with open(path, "rb") as fh:
            fh.seek(-1, io.SEEK_END)
            return fh.read(1) == b"\n"
    global _last_clean_gzip
    stat = path.stat()
    identity = (path.resolve(), stat.st_size, stat.st_mtime_ns)
    if identity == _last_clean_gzip:  # the collector checked it a moment ago
        return True
    with open_recording(path, "r") as fh:
        while fh.read(_SKIP_CHUNK_BYTES):
            pass
        if fh.raw.damage:
            return False
    _last_clean_gzip = identity
    return True


def beside(path: Path) -> Path:
    """The first free name beside ``path``: run.jsonl.gz → run.1.jsonl.gz, run.2…"""
    ext = "".join(path.suffixes[-2:]) if path.suffix == ".gz" else path.suffix
    base = path.name[: len(path.name) - len(ext)] if ext else path.name
    n = 1
    while (candidate := path.with_name(f"{base}.{n}{ext}")).exists():
        n += 1
    return candidate


def recording_path(path: str | Path) -> Path:
    """Where a recording asked for at ``path`` is written; checks it can be.

    A new or empty file is written; an rtkit recording that ends cleanly is
    appended to; one that does not (a run killed mid-write: appending to its
    gzip stream would make the whole file unreadable) is left as it is and a
    new file beside it is written instead, with a warning. Raises ValueError
    for a file that is not an rtkit recording, or a path that cannot be written.
    """
    path = Path(path)
    if path.is_file() and path.stat().st_size > 0:
        if not _first_line_is_ours(path):
            raise ValueError(f"'{path}' exists and is not an rtkit recording; it is left "
                             "untouched: pass record_raw= (--record) a new path")
        if not _ends_cleanly(path):
            new = beside(path)
            log.warning("rtkit: the recording %s does not end cleanly (an earlier run was "
                        "killed?); it is left as it is and this run records to %s", path, new)
            path = new
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        open(path, "ab").close()
    except OSError as exc:
        raise ValueError(
            f"cannot write the recording '{path}': {exc}; pass record_raw= (--record) a path "
            "in a folder you can write to"
        ) from exc
    return path


class LastCloses:
    """Closes a recording when the last of the threads that write it is done.

    The receive thread opens the recording and the backfill thread writes into it
    too (fetched trades, the gaps it ends), and it may end after the receive thread:
    a line it writes after a close would be lost, and its replay would differ.
    """

    def __init__(self, parties: int = 1) -> None:
        self._left = parties
        self._lock = threading.Lock()
        self._recorder: RecordingWriter | None = None

    def done(self, recorder: RecordingWriter | None = None) -> None:
        """One party is done (the one that opened it passes the recording)."""
        with self._lock:
            self._left -= 1
            if recorder is not None:
                self._recorder = recorder
            last = self._left == 0
        if last and self._recorder is not None:
            self._recorder.close()


class RecordingWriter:
    """Appends frames to a recording, flushed line by line so a crash loses at most one.

    The file is the one :func:`recording_path` picks for ``path``: ``.path``
    says which.
    """

    def __init__(self, path: str | Path, books=None) -> None:
        """``books``: the run's ``rtkit.books.keeper.BookKeeper``, if it keeps books: its
        start, REST snapshots and polls are written too (``BookKeeper.record_to``)."""
        self.path = recording_path(path)
        try:
            raw = open_recording(self.path, "a")
        except OSError as exc:
            raise ValueError(
                f"cannot write the recording '{self.path}': {exc}; pass record_raw= a path "
                "in a folder you can write to"
            ) from exc
        self._fh: io.BufferedIOBase = raw
        self._write_lock = threading.Lock()  # before anything is written
        if books is not None:
            books.record_to(self)

    #: why recording stopped (a full disk…), or None while it works
    failed: str | None = None

    def _write(self, line: bytes) -> None:
        """Write and flush a line; a failure stops the recording, never the collection."""
        if self.failed is not None:
            return
        try:
            with self._write_lock:  # the receive and the backfill threads both write
                self._fh.write(line)
                self._fh.flush()
        except (OSError, ValueError) as exc:
            self.failed = f"{type(exc).__name__}: {exc}"
            log.warning("rtkit: raw recording to %s stopped: %s", self.path, self.failed)

    #: the time of the last frames written (a read's): a book poll then is not written
    _frames_at = 0
    #: venue → the numbers of its connections open (``open`` and ``close`` events): a
    #: frame names its connection only while there are more than one
    _open: dict[str, set[int]] | None = None

    def frame(self, received_at: int, venue: str, frame, binary: bool = False,
              connection: int = 0) -> None:
        """A frame read on ``connection`` (the receiver's number of it)."""
        self._frames_at = received_at
        if connection and (self._open is None or len(self._open.get(venue, ())) < 2):
            connection = 0  # the one connection open: said by the open and close events
        self._write(encode_frame(received_at, venue, frame, binary, connection))

    def too_large(self, received_at: int, venue: str, head: bytes, size: int) -> None:
        """A frame refused from its header: its first bytes and its real size."""
        self._frames_at = received_at
        self._write(orjson.dumps({"received_at": received_at, "venue": venue, "too_large": size,
                                  "frame_b64": base64.b64encode(head).decode()}) + b"\n")

    def event(self, event: str, received_at: int, venue: str, symbols=(), connection: int = 0,
              handover: bool = False, stopping: bool = False) -> None:
        """A connection opened or closed (``connection``: the receiver's number of it;
        on a close, ``handover``: its successor was live, ``stopping``: the books were
        not moved, the collector stops)."""
        if connection:
            if self._open is None:
                self._open = {}
            numbers = self._open.setdefault(venue, set())
            if event == "open":
                numbers.add(connection)
            else:
                numbers.discard(connection)
        self._write(encode_event(event, received_at, venue, symbols, connection, handover,
                                 stopping))

    def instruments(self, received_at: int, venue: str, facts: list[dict]) -> None:
        """The contract values the run converts sizes with (a replay reads them)."""
        self._write(orjson.dumps({"event": "instruments", "received_at": received_at,
                                  "venue": venue, "instruments": facts}) + b"\n")

    def books(self, started_at: int, venue: str, symbols: list[str], max_levels: int | None,
              derive_quotes: bool, audit_every_ns: int, rest: bool) -> None:
        """The order books a run keeps (``rtkit.books.keeper``), so a replay makes the same."""
        self._write(orjson.dumps({"event": "books", "received_at": started_at, "venue": venue,
                                  "symbols": symbols, "max_levels": max_levels,
                                  "derive_quotes": derive_quotes,
                                  "audit_every_ns": audit_every_ns, "rest": rest}) + b"\n")

    def book_poll(self, received_at: int, venue: str) -> None:
        """A poll of books that fetch, between reads; one right after a read (at its
        frames' time) is not written: a replay polls after each read anyway."""
        if received_at != self._frames_at:
            self._write(orjson.dumps({"event": "book_poll", "received_at": received_at,
                                      "venue": venue}) + b"\n")

    def rest_request(self, received_at: int, venue: str, symbol: str, purpose: str) -> None:
        """A book's REST snapshot asked."""
        self._write(orjson.dumps({"event": "rest_request", "received_at": received_at,
                                  "venue": venue, "symbol": symbol,
                                  "purpose": _PURPOSE_WORDS.get(purpose, purpose)}) + b"\n")

    def rest_answer(self, received_at: int, venue: str, symbol: str, purpose: str,
                    msg: BookMessage | None, error: str = "") -> None:
        """A book's REST snapshot (or its failure) as the keeper took it, between frames."""
        self._write(encode_rest_answer(received_at, venue, symbol, purpose, msg, error))
    def rest_trades(self, received_at: int, venue: str, symbol: str, trades: list) -> None:
        """A backfill's page of REST trades (``(id, ts_ns, price, size, side)``), in events
        of at most MAX_RECORDED_REST_TRADES: a replay feeds them where the run did."""
        for i in range(0, len(trades), MAX_RECORDED_REST_TRADES):
            self._write(orjson.dumps({"event": "rest_trades", "received_at": received_at,
                                      "venue": venue, "symbol": symbol,
                                      "trades": trades[i:i + MAX_RECORDED_REST_TRADES]}) + b"\n")

    def gap_finished(self, at_ns: int, venue: str, symbol: str, first_missing: str | None,
                     last_missing: str | None, seen_at: int, kind: str, *, status: str,
                     filled: int, why: str | None) -> None:
        """What a backfill made of a gap (``GapLedger.finish``), the gap named by its row's
        fields: a replay finds the row it made alike and ends it the same."""
        self._write(orjson.dumps({"event": "gap_finished", "received_at": at_ns,
                                  "venue": venue, "symbol": symbol,
                                  "first_missing": first_missing, "last_missing": last_missing,
                                  "seen_at": seen_at, "kind": kind, "status": status,
                                  "filled": filled,
                                  "why": None if why is None else why[:MAX_GAP_WHY_CHARS]})
                    + b"\n")

    def close(self) -> None:
        with contextlib.suppress(OSError, ValueError):
            self._fh.close()
