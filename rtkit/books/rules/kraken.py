"""Kraken WebSocket v2 ``book`` (depth 10, 25, 100, 500 or 1000).

No sequence: the checksum is the proof. From Kraken's guide "Book checksum
(WebSocket v2)": a CRC32 of the top 10 asks (low→high) then the top 10 bids
(high→low), price and qty text with ``.`` removed and leading zeros stripped,
sent on the snapshot and on every update; apply every level of a message
first, and truncate the book to the subscribed depth after each update (levels
pushed out of range get no ``qty: 0``) — the local book's depth cap does that,
set to the subscribed depth. The text must be the venue's: v2 sends numbers,
so the parser keeps their JSON text (a float round-trip breaks the checksum).

The snapshot comes over the socket; a mismatch is a desync and the keeper
resubscribes. No sequence ties two connections' streams together: a book moved to
another connection (a handover, ``redundancy=2``) goes on only from that
connection's own snapshot (a subscription starts with one) and the updates after
it, each checksum verified (``rtkit.books.connections``); without it, it resubscribes.
"""

from __future__ import annotations

from typing import Literal

from rtkit.books import BookMessage
from rtkit.books.checksum import KRAKEN_LEVELS, kraken_crc32


class KrakenRule:
    name = "kraken"
    verified = True
    snapshot_from: Literal["rest", "ws"] = "ws"

    def drop_before_snapshot(self, msg: BookMessage, snapshot: BookMessage) -> bool:
        return False

    def bridges(self, msg: BookMessage, snapshot: BookMessage) -> str | None:
        return None  # no sequence: the checksum after each message is the proof

    def follows(self, msg: BookMessage, previous: BookMessage) -> str | None:
        return None

    def verify(self, book, msg: BookMessage) -> str | None:
        if msg.checksum is None:
            return None
        computed = kraken_crc32(book.levels("ask", KRAKEN_LEVELS),
                                book.levels("bid", KRAKEN_LEVELS))
        if computed == msg.checksum:
            return None
        return f"crc32 expected {msg.checksum} computed {computed}"


RULE = KrakenRule()
RULES = {"kraken": KrakenRule}  # found by rtkit.books.rules.rule_for
