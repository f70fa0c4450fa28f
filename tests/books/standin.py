"""A tiny local book implementing ``BookView``, for the rule tests only.

book-core's ``rtkit.books.levels.LocalBook`` replaces it at merge. It keeps the
venue's strings, applies levels in the order sent (a repeated price: the last
wins), ignores the removal of a level it does not hold, and cuts each side to
``depth`` after every message (Kraken: truncate to the subscribed depth).
"""

from __future__ import annotations

from decimal import Decimal
from typing import Literal

from rtkit.books import BookMessage


class StandInBook:
    def __init__(self, depth: int | None = None) -> None:
        self.depth = depth
        self.sides: dict[str, dict[Decimal, tuple[str, str]]] = {"bid": {}, "ask": {}}

    def apply(self, msg: BookMessage) -> None:
        if msg.is_snapshot:
            self.sides = {"bid": {}, "ask": {}}
        for side, levels in (("bid", msg.bids), ("ask", msg.asks)):
            book = self.sides[side]
            for price, size in levels:
                key = Decimal(price)
                if Decimal(size) == 0:
                    book.pop(key, None)
                else:
                    book[key] = (price, size)
            if self.depth is not None:
                for key in sorted(book, reverse=side == "bid")[self.depth:]:
                    del book[key]

    def levels(self, side: Literal["bid", "ask"], n: int) -> list[tuple[str, str]]:
        book = self.sides[side]
        return [book[k] for k in sorted(book, reverse=side == "bid")[:n]]
