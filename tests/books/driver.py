"""A few lines that drive a rule the way the book machine does, for rule tests:
snapshot, drop what it already holds, bridge the first message, chain the rest,
verify after each. Returns every reason the rule gave (empty: no desync)."""

from __future__ import annotations

from dataclasses import replace

from rtkit.books import BookMessage
from tests.books.standin import StandInBook

R = 1_700_000_000_000_000_000


def msg(symbol: str = "BTC-USDT", *, seq=None, first=None, prev=None, snapshot=False,
        bids=(), asks=(), checksum=None, ts=R, source="ws") -> BookMessage:
    return BookMessage(symbol=symbol, timestamp=ts, received_at=R, is_snapshot=snapshot,
                       bids=list(bids), asks=list(asks), seq=seq, first_seq=first,
                       prev_seq=prev, checksum=checksum, source=source)


def run(rule, snapshot: BookMessage, stream: list[BookMessage],
        book: StandInBook | None = None) -> list[str]:
    book = book if book is not None else StandInBook()
    reasons: list[str] = []
    book.apply(snapshot)
    if why := rule.verify(book, snapshot):
        reasons.append(why)
    pending = [m for m in stream if not rule.drop_before_snapshot(m, snapshot)]
    previous, first = snapshot, True
    for m in pending:
        why = rule.bridges(m, snapshot) if first else rule.follows(m, previous)
        if why:
            reasons.append(why)
        book.apply(m)
        if why := rule.verify(book, m):
            reasons.append(why)
        previous, first = m, False
    return reasons


def renumber(m: BookMessage, **changes) -> BookMessage:
    return replace(m, **changes)
