"""What every venue adapter is: a pure object from frames to ticks, with no I/O.

An adapter knows a venue's endpoint, its subscribe messages, its keep-alive
rule and how to read its frames. It never opens a socket, a thread or a file,
so a test of a venue is a list of frames and the ticks they must become.

A tick is a plain tuple, the cheapest thing Python can make per trade::

    (symbol, trade_id, timestamp_ns, price, volume, side)

``symbol`` is normalised ``BASE-QUOTE``; ``trade_id`` is the venue's id (an
int where the venue's ids are integers, else a str); ``side`` is the
aggressor's side: ``BUY`` (0), ``SELL`` (1) or ``UNKNOWN_SIDE`` (-1) from
:mod:`rtkit.validate`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import ClassVar

import orjson

from rtkit.typedefs import ControlKind
from rtkit.validate import MAX_SYMBOL_CHARS, Reject

Tick = tuple  # (symbol, trade_id, timestamp_ns, price, volume, side)

#: Quote currencies recognised when a venue glues BASE and QUOTE together
#: (``BTCUSDT``). Longest match wins, so ``USDT`` beats ``USD``.
KNOWN_QUOTES = (
    "FDUSD", "USDT", "USDC", "BUSD", "TUSD", "USDP", "USDE", "PYUSD", "EURC",
    "DAI", "USD", "EUR", "GBP", "JPY", "AUD", "CAD", "CHF", "TRY", "BRL", "ARS",
    "MXN", "PLN", "RON", "UAH", "ZAR", "IDR", "BIDR", "NGN", "RUB", "KRW",
    "BTC", "ETH", "BNB", "SOL", "XRP", "TRX", "DOGE", "DOT",
)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Control:
    """A frame that is not a trade: an ack, a venue error, a heartbeat, a pong...

    ``kind`` is one of ``ack``, ``error``, ``heartbeat``, ``pong``, ``info``,
    ``reconnect`` (the venue asks us to reconnect). ``error`` controls reach the
    collector's ``last_error`` and status.
    """

    kind: ControlKind
    detail: str = ""


def loads(frame: bytes | str):
    """JSON from a frame, or a ``malformed_json`` reject (orjson also checks UTF-8)."""
    try:
        return orjson.loads(frame)
    except orjson.JSONDecodeError as exc:
        raise Reject("malformed_json", str(exc)[:200]) from None


def split_glued(symbol: str) -> tuple[str, str] | None:
    """``BTCUSDT`` → ``('BTC', 'USDT')`` using KNOWN_QUOTES, or None."""
    if not (symbol.isascii() and symbol.isalnum()):
        return None
    s = symbol.upper()
    for quote in sorted(KNOWN_QUOTES, key=len, reverse=True):
        if s.endswith(quote) and len(s) > len(quote):
            return s[: -len(quote)], quote
    return None


def split_symbol(symbol: str) -> tuple[str, str] | None:
    """``BTC-USDT``, ``btc/usdt``, ``BTC_USDT`` or ``btcusdt`` → ``('BTC', 'USDT')``."""
    s = symbol.strip()
    for sep in ("-", "/", "_"):
        if sep in s:
            base, _, quote = s.partition(sep)
            if base.isascii() and base.isalnum() and quote.isascii() and quote.isalnum():
                return base.upper(), quote.upper()
            return None
    return split_glued(s) if s.isalnum() else None


#: longest native symbol read (Bitstamp's ``live_trades_`` prefix and separators
#: make it longer than the ``BASE-QUOTE`` it becomes, which MAX_SYMBOL_CHARS bounds)
MAX_NATIVE_SYMBOL_CHARS = 2 * MAX_SYMBOL_CHARS


def wire_symbol_text(native) -> bool:
    """True when a symbol from the wire may be read at all: text of at most
    ``MAX_NATIVE_SYMBOL_CHARS`` printable ASCII characters without spaces
    (no control or bidi characters, no megabytes to split or remember)."""
    return (type(native) is str and len(native) <= MAX_NATIVE_SYMBOL_CHARS and native.isascii()
            and native.isprintable() and " " not in native)


def plain_text_frame(frame) -> bool:
    """True when every string in this JSON frame is printable ASCII without ``_``
    or spaces: the frame is ASCII and has no backslash (JSON lets control
    characters into strings only as escapes), no DEL, no ``_`` and no space.
    One scan of the frame then stands for the checks a fast path would make
    per value (see ``validate.plain_number_text`` and ``validate.text_id``)."""
    if type(frame) is bytes:
        return (frame.isascii() and b"\\" not in frame and b"_" not in frame
                and b" " not in frame and b"\x7f" not in frame)
    if type(frame) is str:
        return (frame.isascii() and "\\" not in frame and "_" not in frame
                and " " not in frame and "\x7f" not in frame)
    return False


class NativeSymbols:
    """A venue's symbol as it appears in trades → ``BASE-QUOTE``, remembered
    because it runs once per trade; an unreadable one is an ``unknown_symbol``,
    and so is one whose ``BASE-QUOTE`` is longer than MAX_SYMBOL_CHARS."""

    #: symbols remembered at most, so a feed of garbage cannot grow memory
    #: (each at most MAX_NATIVE_SYMBOL_CHARS long)
    max_known = 10_000

    def __init__(self, split: Callable[[str], tuple[str, str] | None]) -> None:
        self._split = split
        self._known: dict[str, str] = {}

    def __call__(self, native) -> str:
        try:
            return self._known[native]
        except (KeyError, TypeError):
            pass
        if not wire_symbol_text(native) or not (parts := self._split(native)):
            raise Reject("unknown_symbol", f"{native!r:.40}")
        symbol = f"{parts[0]}-{parts[1]}"
        if len(symbol) > MAX_SYMBOL_CHARS:
            raise Reject("unknown_symbol", f"{native!r:.40} is over {MAX_SYMBOL_CHARS} characters")
        if len(self._known) < self.max_known:
            self._known[native] = symbol
        return symbol

    def learn(self, native: str, symbol: str) -> None:
        """Teach a subscribed symbol, so a quote the split does not know (``EURI``)
        is still read right in that symbol's trades."""
        self._known[native] = symbol


def each_trade(items, to_tick: Callable) -> list:
    """``to_tick(item)`` for each trade of a batch; a bad one becomes its
    ``Reject`` in place, so the good trades of the frame are kept."""
    out: list = []
    for item in items:
        try:
            out.append(to_tick(item))
        except Reject as reject:
            out.append(reject)
    return out


def chunks(items: list, max_items: int, max_chars: int) -> list[list]:
    """``items`` split into runs of at most ``max_items`` whose JSON text stays
    within ``max_chars`` (an item longer than that goes alone): how one
    subscription is cut to fit a venue's per-request limits."""
    out: list[list] = []
    run: list = []
    size = 2  # the brackets of the JSON array
    for item in items:
        length = len(orjson.dumps(item)) + 1  # and its comma
        if run and (len(run) == max_items or size + length > max_chars):
            out.append(run)
            run, size = [], 2
        run.append(item)
        size += length
    if run:
        out.append(run)
    return out


class Adapter:
    """Base class of the venue adapters; subclasses fill in the venue's facts."""

    #: the kinds of record (``rtkit.kinds``) this adapter's ``parse`` returns; a plain
    #: list from ``parse`` holds rows of the first (the trades fast path)
    kinds: ClassVar[tuple[str, ...]] = ("trades",)
    #: registry name, e.g. ``binance``
    name: ClassVar[str]
    #: the venue's public endpoint (always ``wss://``, certificates verified)
    default_url: ClassVar[str]
    #: example of the venue's native symbol form, for error messages
    native_example: ClassVar[str] = ""
    #: True when trade ids are ints that step by exactly one per symbol, so a
    #: jump is a gap and an id at or below the last one seen is a duplicate
    ids_consecutive: bool = False  # an instance may set it (the generic adapter does)
    #: True when one tick stands for a group of fills (OKX): such ticks carry a
    #: 7th element, the group's first id, and ``trade_id`` is its last id
    ids_grouped: ClassVar[bool] = False
    #: True when the venue sends only the subscribed symbols' trades, so a trade of
    #: any other is an ``unsubscribed_symbol`` reject; False for a feed whose
    #: subscription may not select symbols (``generic``)
    trades_of_subscribed_symbols_only: ClassVar[bool] = True
    #: seconds between application-level pings (None: the venue pings us)
    ping_interval_s: float | None = None  # an instance may set it (the generic adapter does)
    #: seconds of silence on a subscribed stream before it counts as stale
    stale_after_s: ClassVar[float] = 30.0

    # --- quotes and order books (``rtkit.books``) -----------------------------------
    #: the venue whose continuity rule (``rtkit.books.rules``) keeps this adapter's books
    #: (None: the adapter's ``name``)
    book_rule: ClassVar[str | None] = None
    #: True when the venue has a BBO channel for ``quotes``; False: the quotes are
    #: derived from the local book when its top changes
    quotes_channel: ClassVar[bool] = True
    #: the kinds the collector collects and the book depth it asked (``configure``)
    collected: tuple[str, ...] = ("trades",)
    depth: int | None = None

    def configure(self, kinds: tuple[str, ...], depth: int | None) -> None:
        """Told before the first subscribe which kinds are collected (so that
        ``subscribe_messages`` asks for their channels) and the book depth asked for;
        a depth the venue does not offer is a ValueError that lists those it does."""
        if depth is not None and "book" not in self.kinds:
            raise ValueError(f"depth= is for order books; venue {self.name!r} offers "
                             f"{', '.join(self.kinds)}")
        self.collected, self.depth = tuple(kinds), depth

    def book_max_levels(self) -> int | None:
        """Levels per side a local book keeps (its memory bound); None: the default."""
        return self.depth

    def book_snapshot_fetch(self, rest_url: str | None):
        """For a venue whose books start from a REST snapshot (or are audited against
        one): a function ``symbol -> BookMessage`` (``source="rest"``) that asks the
        venue (``rest_url``: its base, None for the public one) within its request
        budget; called on a worker thread. None: the venue needs none."""
        return None

    def book_resubscribe_messages(self, symbols: list[str]) -> list[str]:
        """Frames that make the venue send these symbols' book snapshots again (a
        venue whose snapshot comes on the socket)."""
        raise NotImplementedError(f"venue {self.name!r} cannot resubscribe a book")

    def __init__(self, **options) -> None:
        if options:
            names = ", ".join(sorted(options))
            raise TypeError(f"venue '{self.name}' takes no option(s) {names}")

    # --- symbols -----------------------------------------------------------
    def normalise_symbol(self, symbol: str) -> str:
        """The user's or the venue's form of a symbol → ``BASE-QUOTE``.

        Raises ValueError with the expected forms when it cannot tell.
        """
        if not isinstance(symbol, str) or not (parts := self.symbol_parts(symbol)):
            raise ValueError(
                f"symbol {symbol!r} is not in {self.name} form "
                f"(expected e.g. 'BTC-USDT' or {self.native_example!r})"
            )
        return f"{parts[0]}-{parts[1]}"

    def symbol_parts(self, symbol: str) -> tuple[str, str] | None:
        """``(BASE, QUOTE)`` of a symbol string, or None; a venue with its own
        asset codes (Kraken's ``XBT``) overrides it."""
        return split_symbol(symbol)

    def native_symbol(self, symbol: str) -> str:
        """``BASE-QUOTE`` → the venue's own spelling."""
        raise NotImplementedError

    # --- wire --------------------------------------------------------------
    def url(self, base_url: str | None, symbols: list[str]) -> str:
        """The URL to connect to for these (normalised) symbols."""
        return base_url or self.default_url

    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        """Text frames to send after each (re)connect, for normalised symbols."""
        raise NotImplementedError

    def ping_message(self) -> str | None:
        """The application-level ping to send every ``ping_interval_s``."""
        return None

    def parse(self, frame: bytes | str, received_at_ns: int) -> list | Control:
        """One frame → a list of ticks (a ``Reject`` in place of a bad trade
        inside a batch), or a :class:`Control`. Raises :class:`Reject` when
        the whole frame is unusable."""
        raise NotImplementedError
