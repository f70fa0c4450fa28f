"""OKX v5 ``books`` (400 levels: a snapshot over the socket, then updates).

From the OKX v5 docs, "Order book channel" / "Sequence ID": each update's
``prevSeqId`` is the previous message's ``seqId`` (ids are not contiguous); a
message with ``seqId == prevSeqId`` and no levels is a keep-alive that changes
nothing; after maintenance ``seqId`` may drop below ``prevSeqId`` (a reset) and
the chain goes on from the smaller id. All three are the one check
``prevSeqId == previous seqId``. A snapshot has ``prevSeqId = -1``; a second
snapshot mid-stream (after a repeated subscribe) replaces the book
 (seen in real captures), so it always follows.

``seqId`` is the book's, not the connection's: a book moved to another
connection (a handover, ``redundancy=2``) drops the copies it holds and
continues with the update whose ``prevSeqId`` is its last ``seqId``; a fresh
subscription's snapshot, when newer, replaces it.

The legacy checksum (CRC32 of the interleaved top 25, signed) is checked when
sent; OKX deprecated it in June 2026 and now sends ``0``, which the parser
turns into ``None`` ("not sent", never a mismatch). The sequence is the proof.
"""

from __future__ import annotations

from typing import Literal

from rtkit.books import BookMessage
from rtkit.books.checksum import OKX_LEVELS, okx_crc32
from rtkit.books.rules._common import need


class OkxRule:
    name = "okx"
    verified = True
    snapshot_from: Literal["rest", "ws"] = "ws"

    def drop_before_snapshot(self, msg: BookMessage, snapshot: BookMessage) -> bool:
        return False  # the snapshot comes first on the socket; nothing buffered precedes it

    def bridges(self, msg: BookMessage, snapshot: BookMessage) -> str | None:
        return self.follows(msg, snapshot)

    def follows(self, msg: BookMessage, previous: BookMessage) -> str | None:
        if msg.is_snapshot:
            return None  # a new snapshot replaces the book
        prev_seq = need(msg, "prevSeqId", msg.prev_seq)
        last = need(previous, "seqId", previous.seq)
        if prev_seq == last:
            return None
        return f"prevSeqId {prev_seq} != previous seqId {last}"

    def held(self, msg: BookMessage, last: BookMessage) -> bool:
        """Another connection's copy of a message the book holds (``seqId <=`` its
        last; a reset's smaller id is dropped too, and the next one then fails to
        chain: a desync, never a silent gap)."""
        return need(msg, "seqId", msg.seq) <= need(last, "seqId", last.seq)

    def joins(self, msg: BookMessage, last: BookMessage) -> str | None:
        """The first update taken from another connection: ``seqId`` is the book's on
        every connection, so it must chain onto the last one applied."""
        return self.follows(msg, last)

    def verify(self, book, msg: BookMessage) -> str | None:
        if not msg.checksum:  # None, or 0: OKX no longer sends one
            return None
        computed = okx_crc32(book.levels("bid", OKX_LEVELS), book.levels("ask", OKX_LEVELS))
        if computed == msg.checksum:
            return None
        return f"crc32 expected {msg.checksum} computed {computed}"


RULE = OkxRule()
RULES = {"okx": OkxRule}  # found by rtkit.books.rules.rule_for
