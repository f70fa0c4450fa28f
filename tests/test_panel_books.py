"""The panel's books and quotes: a light and a depth ladder per book, bid and ask lines on
the price charts, the quotes ring's newest rows; in plain pytest against the Bybit
simulator on loopback."""

import re

import numpy as np
import pandas as pd
import pytest

import rtkit
from rtkit import widgets
from rtkit.books.quote_ring import QuoteRing
from rtkit.panel_books import BOOK_LIGHTS, LADDER_DEPTH, book_light, ladder_html, quote_lines
from rtkit.sim import Simulator
from tests.conftest import wait_for

SYMBOLS = ["BTC-USDT", "ETH-USDT"]
T0 = pd.Timestamp("2026-01-01", tz="UTC")


@pytest.fixture(autouse=True)
def close_what_a_failed_test_left(no_thread_leak):
    yield
    for panel in list(widgets._open_panels.values()):
        panel.close()
    rtkit.stop_all()


def ladder_prices(text):
    """(side, price) of each ladder row, top to bottom."""
    return [(side, float(price.replace(",", ""))) for side, price in
            re.findall(r'<tr class="rtkit-(bid|ask)">.*?<b>([\d,.]+)</b>', text)]


def test_the_ladder_shows_asks_high_to_low_above_bids_high_to_low():
    text = ladder_html("BTC-USDT", "live", T0, bids=[(100.0, 3.0), (99.0, 6.0)],
                       asks=[(101.0, 1.5), (102.0, 0.5)])
    assert ladder_prices(text) == [("ask", 102.0), ("ask", 101.0), ("bid", 100.0),
                                   ("bid", 99.0)]
    assert "width:60px" in text and "width:15px" in text  # 6 is the largest size, 1.5 a 1/4
    assert BOOK_LIGHTS["live"] in text and "since 00:00:00 UTC" in text
    assert "no levels yet" in ladder_html("X-Y", "subscribing", None, [], [])


def test_each_state_has_its_light_and_an_unknown_one_shows_as_wrong():
    assert BOOK_LIGHTS["live"] in book_light("live")
    assert BOOK_LIGHTS["desynced"] in book_light("desynced")
    assert BOOK_LIGHTS["resyncing"] != BOOK_LIGHTS["live"]
    assert BOOK_LIGHTS["desynced"] in book_light("something new")


def test_quote_lines_start_with_the_quote_in_force_and_stop_at_the_window_end():
    seconds = [0, 5, 12, 15, 30]
    quotes = pd.DataFrame({
        "timestamp": pd.DatetimeIndex([T0 + pd.Timedelta(seconds=s) for s in seconds]),
        "symbol": pd.Categorical(["A-B", "A-B", "C-D", "A-B", "A-B"]),
        "bid_price": [1.0, 2.0, 9.0, 3.0, 4.0], "ask_price": [1.5, 2.5, 9.5, 3.5, 4.5]})
    start = np.datetime64("2026-01-01T00:00:10", "ns")
    end = np.datetime64("2026-01-01T00:00:20", "ns")
    times, bids, asks = quote_lines(quotes, "A-B", start, end)
    assert list(bids) == [2.0, 3.0] and list(asks) == [2.5, 3.5]
    assert times[0] == start  # the quote of 5 s drawn from the window's left edge
    assert quote_lines(quotes, "E-F", start, end) is None
    assert quote_lines(None, "A-B", start, end) is None


def test_the_quotes_ring_reads_its_newest_rows_across_the_wrap():
    ring = QuoteRing(capacity=5)
    ring.append([("bybit", "A-B", i, i, float(i), 1.0, float(i) + 1, 1.0, i) for i in range(8)])
    assert list(ring.snapshot(last=3)["seq"]) == [5, 6, 7]
    assert list(ring.snapshot(last=5)["seq"]) == [3, 4, 5, 6, 7]
    assert list(ring.snapshot(last=50)["seq"]) == [3, 4, 5, 6, 7]
    assert list(ring.snapshot()["seq"]) == [3, 4, 5, 6, 7]
    assert ring.snapshot(last=0).empty
    ring.append([("bybit", "A-B", 8, 8, 8.0, 1.0, 9.0, 1.0, 8), ("bybit", "A-B", 9, 9, 9.0,
                 1.0, 10.0, 1.0, 9)])
    assert list(ring.snapshot(last=2)["seq"]) == [8, 9]  # at the end of the columns, no wrap


def test_the_panel_shows_each_books_light_ladder_and_the_bid_ask_lines(db):
    with Simulator("bybit", rate=500, count=800, seed=5, book_rate=400, book_count=800) as sim:
        c = rtkit.Collector("bybit", SYMBOLS, url=sim.url, db=db,
                            kinds=["trades", "quotes", "book"], flush_interval_s=0.1)
        panel = c.panel(refresh_s=0.05)
        assert list(panel._ladders) == SYMBOLS and len(panel.books.children) == 2
        panel.start_button.click()
        wait_for(lambda: all(c.book_state(s).state == "live" for s in SYMBOLS)
                 and c.stats["ticks"] >= 800 and sim.books.messages >= 800, 30)
        wait_for(lambda: c.stats["stored"] >= 800, 30)
        panel.stop_button.click()  # the last refresh shows the final books, then no more
        for symbol, card in panel._ladders.items():
            assert BOOK_LIGHTS["live"] in card.value and ">live<" in card.value
            book = c.book(symbol, depth=LADDER_DEPTH)
            shown = ladder_prices(card.value)
            bids = [p for side, p in shown if side == "bid"]
            asks = [p for side, p in shown if side == "ask"]
            assert bids == list(book[book["side"] == "bid"]["price"])
            assert asks == sorted(book[book["side"] == "ask"]["price"], reverse=True)
            assert len(bids) == len(asks) == LADDER_DEPTH
            chart = panel._charts[symbol]
            assert len(chart.bid_line.y) > 1 and len(chart.bid_line.y) == len(chart.ask_line.y)
            assert (np.asarray(chart.bid_line.y) < np.asarray(chart.ask_line.y)).all()
            quotes = c.quotes[lambda q, s=symbol: q["symbol"] == s]
            assert chart.bid_line.y[-1] == quotes["bid_price"].iloc[-1]
            assert chart.ask_line.y[-1] == quotes["ask_price"].iloc[-1]
            # the price axis holds the quotes as well as the trades
            scale = chart.line.scales["y"]
            assert scale.min <= min(chart.bid_line.y) and scale.max >= max(chart.ask_line.y)


def test_a_panel_without_books_or_quotes_shows_neither(db):
    with Simulator("bybit", rate=2_000, count=300, seed=6) as sim:
        c = rtkit.Collector("bybit", SYMBOLS[:1], url=sim.url, db=db, flush_interval_s=0.1)
        panel = c.panel(refresh_s=0.05)
        panel.start_button.click()
        wait_for(lambda: c.stats["stored"] >= 300, 30)
        wait_for(lambda: len(panel._lines[SYMBOLS[0]].y) > 0)
        panel.stop_button.click()
        assert panel._ladders == {} and panel.books.children == ()
        chart = panel._charts[SYMBOLS[0]]
        assert len(chart.bid_line.y) == 0 and len(chart.ask_line.y) == 0
