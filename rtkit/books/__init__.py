"""Local order books: one pure state machine per symbol, fed by neutral messages.

The parts, one concern each (filled in module by module):

* an adapter's ``parse`` turns a venue's book frames into :class:`BookMessage`
  (the venue's own price/size strings kept, so a checksum is computed from what
  the venue sent) and returns them in ``Rows`` under the key ``"book"``; BBO
  frames become ``quotes`` rows directly;
* ``rtkit.books.levels`` — the local book (price levels per side, depth cap);
* ``rtkit.books.rules`` — each venue's continuity rule (:class:`ContinuityRule`);
* ``rtkit.books.checksum`` — the venues' checksums (Kraken CRC32 from strings);
* ``rtkit.books.machine`` — the state machine: subscribing → buffering →
  snapshot → live → desynced → resyncing → live; every transition a
  ``book_events`` row, every applied message ``book_deltas`` rows;
* ``rtkit.books.keeper`` — the runtime side: one machine per symbol, REST
  snapshots fetched within the venue's budget, resubscribes asked of the receiver.

A machine never does I/O: it answers each message with a :class:`Step` that
says what to store and what to do next (fetch a snapshot, resubscribe).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

#: the states of a book, in the order a good start passes them; ``unverified`` stands
#: for ``live`` on a venue that gives no proof (its book is audited instead)
STATES = ("subscribing", "buffering", "snapshot", "live", "desynced", "resyncing",
          "unverified")
#: what a machine asks of the runtime after a message
Action = Literal["fetch_snapshot", "resubscribe"]


@dataclass(slots=True)
class BookMessage:
    """One book message of one symbol, in neutral form.

    ``bids``/``asks`` are ``(price, size)`` as the venue wrote them (strings);
    a size that parses to 0 removes the level. Sequence fields are the venue's:
    ``seq`` the message's own (Binance ``u``, Bybit ``u``, OKX ``seqId``,
    Coinbase Advanced ``sequence_num``), ``first_seq`` Binance spot's ``U``,
    ``prev_seq`` Binance USD-M's ``pu`` or OKX's ``prevSeqId``. ``checksum`` is
    None when the venue sent none (OKX's ``0`` included).
    """

    symbol: str
    timestamp: int  # the venue's time, ns since the epoch (received_at if it gives none)
    received_at: int
    is_snapshot: bool
    bids: list[tuple[str, str]] = field(default_factory=list)
    asks: list[tuple[str, str]] = field(default_factory=list)
    seq: int | None = None
    first_seq: int | None = None
    prev_seq: int | None = None
    checksum: int | None = None
    source: Literal["ws", "rest"] = "ws"


class BookView(Protocol):
    """What a rule may read of the local book (``rtkit.books.levels`` provides it)."""

    def levels(self, side: Literal["bid", "ask"], n: int) -> list[tuple[str, str]]:
        """The best ``n`` levels of a side, best first, as the venue's own
        ``(price, size)`` strings (bids high→low, asks low→high)."""


class ContinuityRule(Protocol):
    """A venue's rule for starting a book and proving it stays right."""

    #: ``binance``, ``bybit``… (what ``book_events`` and the README call it)
    name: str
    #: False where the venue gives no proof (the book's state says ``unverified``)
    verified: bool
    #: where a (re)sync's snapshot comes from: a REST request or the socket
    snapshot_from: Literal["rest", "ws"]

    def drop_before_snapshot(self, msg: BookMessage, snapshot: BookMessage) -> bool:
        """True for a buffered message the snapshot already contains (Binance
        ``u <= lastUpdateId``, Bitstamp older than the snapshot's time)."""

    def bridges(self, msg: BookMessage, snapshot: BookMessage) -> str | None:
        """None when ``msg`` is a valid first message after ``snapshot``, else
        why not (the machine fetches the snapshot again)."""

    def follows(self, msg: BookMessage, previous: BookMessage) -> str | None:
        """None when ``msg`` chains onto ``previous``; else why not, with the
        numbers (``"U 105 != previous u 103 + 1"``): a desync."""

    def verify(self, book: BookView, msg: BookMessage) -> str | None:
        """After ``msg`` is applied: None when the book still proves right (no
        checksum, or it matches), else why (``"crc32 expected 123 computed 456"``)."""


@dataclass(slots=True)
class Step:
    """What a machine answers to one input: rows to store and what to do next."""

    deltas: list[tuple] = field(default_factory=list)  # book_deltas rows
    events: list[tuple] = field(default_factory=list)  # book_events rows
    quotes: list[tuple] = field(default_factory=list)  # derived quotes rows (no BBO channel)
    action: Action | None = None
