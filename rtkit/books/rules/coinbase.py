"""Coinbase Advanced Trade ``level2`` (frames arrive as channel ``l2_data``).

The book starts from the ``snapshot`` event sent after subscribing (full depth)
and proves continuity only through the envelope's ``sequence_num``, which
counts every message of the CONNECTION across all channels and products
(heartbeats, trades, other books). Seen from one symbol, the
counter jumps by design between two of its book messages, so a per-symbol
``seq == previous + 1`` check would desync all the time.

What is done instead: the parser's :class:`~rtkit.books.parse.coinbase.ConnectionSequence`
(one per connection, fed EVERY frame of it) notes where the counter last
jumped, and stamps each book message with ``seq`` = its ``sequence_num`` and
``prev_seq`` = the ``sequence_num`` of the first frame after the latest jump on
the connection (None if none yet). A book message follows when no jump
happened since the symbol's previous one (``prev_seq <= previous.seq``) and the
counter went forward. A jump anywhere on the connection desyncs every book on
it: the lost frame may have been any product's level2, so each resubscribes.
No checksum. ``sequence_num`` is the connection's, so it says nothing about another
connection's stream: a book moved to another connection (``redundancy=2``) goes on
only from that connection's own ``snapshot`` and the messages after it, checked by
that connection's count (``rtkit.books.connections``); without it, it resubscribes.
"""

from __future__ import annotations

from typing import Literal

from rtkit.books import BookMessage
from rtkit.books.rules._common import need


class CoinbaseAdvancedRule:
    name = "coinbase"
    verified = True
    snapshot_from: Literal["rest", "ws"] = "ws"

    def drop_before_snapshot(self, msg: BookMessage, snapshot: BookMessage) -> bool:
        return False

    def bridges(self, msg: BookMessage, snapshot: BookMessage) -> str | None:
        return self.follows(msg, snapshot)

    def follows(self, msg: BookMessage, previous: BookMessage) -> str | None:
        if msg.is_snapshot:
            return None  # a new snapshot (a resubscribe) replaces the book
        seq, last = need(msg, "sequence_num", msg.seq), need(previous, "sequence_num", previous.seq)
        if seq <= last:
            return f"sequence_num {seq} not after previous {last}"
        if msg.prev_seq is not None and msg.prev_seq > last:
            return (f"connection sequence_num jumped (resumed at {msg.prev_seq}) "
                    f"since this book's previous message {last}")
        return None

    def verify(self, book, msg: BookMessage) -> str | None:
        return None  # no checksum


RULE = CoinbaseAdvancedRule()
RULES = {"coinbase": CoinbaseAdvancedRule}  # found by rtkit.books.rules.rule_for
