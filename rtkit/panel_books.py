"""The panel's order books: one card per symbol with its book's state as a light and a
depth ladder of ``c.book(symbol, depth=LADDER_DEPTH)``; and the newest quotes that the
price charts draw as bid and ask lines.

Shown only when the collector keeps books (``kinds=[..., "book"]``) or quotes. A
refresh reads each book once under its keeper's lock (``c.book``) and the quotes ring's
newest rows only (``QuoteRing.snapshot(last=...)``), and sets one HTML value per card:
no widget is created or displayed from the refresh thread.
"""

from __future__ import annotations

import html
import threading
import time
from typing import TYPE_CHECKING

import ipywidgets as widgets
import numpy as np
import pandas as pd

if TYPE_CHECKING:
    from rtkit.collector import Collector

#: levels a side the ladder shows
LADDER_DEPTH = 10
#: most quotes one refresh reads for the bid/ask lines (the chart window at the quote rate)
MAX_QUOTE_ROWS = 200_000
#: the light of each book state (``rtkit.books.STATES``)
BOOK_LIGHTS = {
    "live": "#2e7d32", "unverified": "#689f38", "subscribing": "#9e9e9e",
    "buffering": "#f9a825", "snapshot": "#f9a825", "resyncing": "#ef6c00",
    "desynced": "#c62828",
}
_LADDER_CSS = ("<style>.rtkit-ladder td {padding: 0 6px; font-variant-numeric: tabular-nums; "
               "text-align: right; font-size: 0.85em} .rtkit-ladder .bar {height: 0.8em; "
               "display: inline-block}</style>")


def book_light(state: str) -> str:
    """The coloured dot and state name of a book (HTML)."""
    colour = BOOK_LIGHTS.get(state, BOOK_LIGHTS["desynced"])
    return (f'<span style="color:{colour};font-size:1.2em">●</span> '
            f'<b class="rtkit-book-state">{html.escape(state)}</b>')


def ladder_html(symbol: str, state: str, since: pd.Timestamp | None,
                bids: list[tuple[float, float]], asks: list[tuple[float, float]]) -> str:
    """One book's card: its light, since when, and a ladder of its levels (``(price,
    size)``, best first, as ``c.book`` gives them): asks high→low above bids high→low,
    each size with a bar scaled to the largest shown."""
    when = f" <small>since {since:%H:%M:%S} UTC</small>" if since is not None else ""
    head = f"<div><code>{html.escape(symbol)}</code> {book_light(state)}{when}</div>"
    if not bids and not asks:
        return f"{head}<i>no levels yet</i>"
    largest = max(size for _, size in (*bids, *asks)) or 1.0
    rows = []
    for side, levels, colour in (("ask", sorted(asks, reverse=True), "#ef9a9a"),
                                 ("bid", sorted(bids, reverse=True), "#a5d6a7")):
        for price, size in levels:
            width = max(1, round(60 * size / largest))
            bar = f'<span class="bar" style="width:{width}px;background:{colour}"></span>'
            cells = (f"<td>{bar}</td><td>{size:,.6g}</td><td><b>{price:,.10g}</b></td><td></td>"
                     if side == "bid" else
                     f"<td></td><td><b>{price:,.10g}</b></td><td>{size:,.6g}</td><td>{bar}</td>")
            rows.append(f'<tr class="rtkit-{side}">{cells}</tr>')
    return f'{_LADDER_CSS}{head}<table class="rtkit-ladder">{"".join(rows)}</table>'


class PanelBooks:
    """The books part of a :class:`~rtkit.widgets.Panel`: a card per book, the quotes read."""

    # set by the Panel that these books are part of
    books: widgets.HBox
    window_s: float
    _ui_lock: threading.RLock
    _ladders: dict[str, widgets.HTML]

    def _show_books(self, collector: Collector) -> None:
        """One card per symbol when ``collector`` keeps books (none otherwise); under
        ``_ui_lock``, from the notebook thread (the refresh thread only sets values)."""
        symbols = list(collector.symbols) if "book" in collector.kinds else []
        if list(self._ladders) == symbols:
            return
        old = self.books.children
        self._ladders = {s: widgets.HTML().add_class("rtkit-book") for s in symbols}
        self.books.children = list(self._ladders.values())
        for card in old:
            card.close()

    def _draw_books(self, collector: Collector) -> None:
        """Each card from its book now: the levels ``c.book(symbol, LADDER_DEPTH)`` shows,
        read under the keeper's lock (a whole book) without building a DataFrame."""
        keeper = collector.pipeline.books
        for symbol, card in self._ladders.items():
            try:
                state, since_ns = keeper.state(symbol)
                bids, asks = keeper.read(symbol, _top_levels)
            except KeyError:  # no such book: say so, never fail the refresh
                card.value = f"<code>{html.escape(symbol)}</code> <i>no book</i>"
                continue
            text = ladder_html(symbol, state, pd.Timestamp(since_ns, tz="UTC"), bids, asks)
            if card.value != text:
                card.value = text

    def _newest_quotes(self, collector: Collector) -> pd.DataFrame | None:
        """The quotes the charts' window needs (None when the collector keeps none)."""
        ring = getattr(collector.pipeline, "quote_ring", None)
        if ring is None or len(ring) == 0:
            return None
        started = collector.started_at_ns
        quotes = ring.total  # every quote the ring was given this run
        elapsed_s = (time.time_ns() - started) / 1e9 if started else 0.0
        rate = quotes / elapsed_s if elapsed_s > 1 else 0.0
        rows = MAX_QUOTE_ROWS if not rate else min(
            MAX_QUOTE_ROWS, int(rate * self.window_s * 1.5) + 1_000)
        return ring.snapshot(last=rows)


def _top_levels(book) -> tuple[list[tuple[float, float]], list[tuple[float, float]]]:
    return book.float_levels("bid", LADDER_DEPTH), book.float_levels("ask", LADDER_DEPTH)


def quote_lines(quotes: pd.DataFrame | None, symbol: str, start: np.datetime64,
                end: np.datetime64) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """``symbol``'s quotes within ``start``..``end`` as (times, bids, asks), beginning with
    the quote in force at ``start`` (drawn from the chart's left edge); None without any."""
    if quotes is None or quotes.empty:
        return None
    mine = (quotes["symbol"] == symbol).to_numpy()
    if not mine.any():
        return None
    times = quotes["timestamp"].dt.tz_localize(None).to_numpy("datetime64[ns]")[mine]
    bids = quotes["bid_price"].to_numpy(float)[mine]
    asks = quotes["ask_price"].to_numpy(float)[mine]
    keep = (times >= start) & (times <= end)
    earlier = np.flatnonzero(times < start)
    if len(earlier):  # ring order is arrival order: the newest to arrive before the window
        keep[earlier[-1]] = True
    if not keep.any():
        return None
    return np.maximum(times[keep], start), bids[keep], asks[keep]
