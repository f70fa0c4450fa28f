"""What a notebook reads of books and quotes: a book's levels as a small DataFrame, its
state, the quotes ring (the :class:`BookReading` part of a collector)."""

from __future__ import annotations

from typing import Any, NamedTuple

import numpy as np
import pandas as pd

from rtkit.books.keeper import BookKeeper
from rtkit.books.levels import LocalBook

_COLUMNS = ["side", "price", "size"]


class BookState(NamedTuple):
    """A book's state (``rtkit.books.STATES``) and the UTC time it entered it."""

    state: str
    since: pd.Timestamp


def book_frame(books: BookKeeper, symbol: str, depth: int = 10) -> pd.DataFrame:
    """The ``depth`` best levels of each side: bids high→low, then asks low→high."""
    if type(depth) is not int or depth < 1:
        raise ValueError(f"depth must be a whole number of levels >= 1, not {depth!r}")

    def read(book: LocalBook):
        return book.float_levels("bid", depth), book.float_levels("ask", depth)

    try:
        bids, asks = books.read(symbol, read)
    except KeyError:
        raise ValueError(f"no book for {symbol!r}; the books are: "
                         f"{', '.join(sorted(books.machines))}") from None
    rows = [("bid", p, s) for p, s in bids] + [("ask", p, s) for p, s in asks]
    if not rows:
        return pd.DataFrame({"side": pd.Series([], dtype=str), "price": np.empty(0),
                             "size": np.empty(0)})
    return pd.DataFrame(rows, columns=_COLUMNS)  # rows of tuples: pandas' quickest way here


class BookReading:
    """A collector's ``quotes``, ``book(...)`` and ``book_state(...)``."""

    # set by the collector this is part of
    pipeline: Any
    adapter: Any
    kinds: tuple[str, ...]
    venue: str

    @property
    def quotes(self) -> pd.DataFrame:
        """A fresh DataFrame of every quote (best bid and offer) in the quotes ring,
        oldest first (collect ``kinds=[..., "quotes"]``)."""
        ring = self.pipeline.quote_ring
        if ring is None:
            raise ValueError(f"this collector does not collect quotes; pass kinds="
                             f"{[*self.kinds, 'quotes']} (venue {self.venue!r} offers "
                             f"{', '.join(self.adapter.kinds)})")
        return ring.snapshot()

    def book(self, symbol: str, depth: int = 10) -> pd.DataFrame:
        """The ``depth`` best levels of ``symbol``'s local book now: columns ``side``
        (``bid``/``ask``), ``price``, ``size``; bids high→low, then asks low→high.
        Check ``book_state(symbol)`` to know whether the book is live."""
        return book_frame(self._books(), self.adapter.normalise_symbol(symbol), depth)

    def book_state(self, symbol: str) -> BookState:
        """``(state, since)`` of ``symbol``'s book: one of ``rtkit.books.STATES`` and the
        UTC time it entered it (``book_events`` in the database keeps every transition)."""
        state, since = self._books().state(self.adapter.normalise_symbol(symbol))
        return BookState(state, pd.Timestamp(since, tz="UTC"))

    def _books(self):
        books = self.pipeline.books
        if books is None:
            raise ValueError(f"this collector keeps no order books; pass kinds="
                             f"{[*self.kinds, 'book']} (venue {self.venue!r} offers "
                             f"{', '.join(self.adapter.kinds)})")
        return books
