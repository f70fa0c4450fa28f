"""Binance spot diff depth (``<sym>@depth@100ms``) on a REST snapshot.

From "How to manage a local order book correctly" (binance-spot-api-docs,
web-socket-streams.md): buffer the stream, fetch ``GET /api/v3/depth``, drop
buffered events with ``u <= lastUpdateId``; the first event applied must
straddle the snapshot (``U <= lastUpdateId + 1 <= u``: the update procedure
accepts ``U == lastUpdateId + 1``, the contiguous case); after it each event's
``U`` is the previous ``u`` + 1. A snapshot older than the first buffered ``U``
fails ``bridges`` and is fetched again. No checksum.

``seq`` is ``u``, ``first_seq`` is ``U``; the REST snapshot's ``seq`` is its
``lastUpdateId``. Across connections (a handover, ``redundancy=2``) the same
stream carries the same ids, so a book moved to another connection continues:
copies of updates it holds are dropped and the first one kept must bridge its
last ``u`` like a snapshot's ``lastUpdateId`` (:meth:`BinanceSpotRule.joins`).
Removing a level the book does not hold is normal (the docs
say so): the local book ignores it, it is not a desync.
"""

from __future__ import annotations

from typing import Literal

from rtkit.books import BookMessage
from rtkit.books.rules._common import need


class BinanceSpotRule:
    name = "binance"
    verified = True
    snapshot_from: Literal["rest", "ws"] = "rest"

    def drop_before_snapshot(self, msg: BookMessage, snapshot: BookMessage) -> bool:
        return need(msg, "u", msg.seq) <= need(snapshot, "lastUpdateId", snapshot.seq)

    def bridges(self, msg: BookMessage, snapshot: BookMessage) -> str | None:
        first, last = need(msg, "U", msg.first_seq), need(msg, "u", msg.seq)
        after = need(snapshot, "lastUpdateId", snapshot.seq) + 1
        if first <= after <= last:
            return None
        return f"U {first} .. u {last} does not hold lastUpdateId {after - 1} + 1"

    def follows(self, msg: BookMessage, previous: BookMessage) -> str | None:
        first, prev = need(msg, "U", msg.first_seq), need(previous, "u", previous.seq)
        if first == prev + 1:
            return None
        return f"U {first} != previous u {prev} + 1"

    def held(self, msg: BookMessage, last: BookMessage) -> bool:
        """Another connection's copy of an update the book holds (``u <= `` its last ``u``)."""
        return self.drop_before_snapshot(msg, last)

    def joins(self, msg: BookMessage, last: BookMessage) -> str | None:
        """The first update taken from another connection: the book after ``last`` is
        the book at update ``last.u``, as a snapshot's is at ``lastUpdateId``, so the
        venue's own bridge applies (``U <= last u + 1 <= u``)."""
        return self.bridges(msg, last)

    def verify(self, book, msg: BookMessage) -> str | None:
        return None  # Binance sends no checksum


RULE = BinanceSpotRule()
RULES = {"binance": BinanceSpotRule}  # found by rtkit.books.rules.rule_for
