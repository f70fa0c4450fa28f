"""Quotes and book measures, the spread on executable prices and the books' health report,
each against numbers worked out by hand."""

import math

import numpy as np
import pandas as pd
import pytest

from rtkit.analysis import (
    book_imbalance,
    book_quality,
    microprice,
    mid,
    opportunities,
    quoted_spread,
    relative_spread,
    spread,
    top_of_book,
)

T0 = pd.Timestamp("2026-01-01 00:00:00", tz="UTC")
S = 1_000_000_000  # ns in a second


def quotes(*rows):
    """A quotes table from ``(venue, symbol, seconds after T0, bid, bid size, ask, ask size)``."""
    times = pd.DatetimeIndex([T0 + pd.Timedelta(seconds=r[2]) for r in rows])
    return pd.DataFrame({
        "venue": pd.Categorical([r[0] for r in rows]),
        "symbol": pd.Categorical([r[1] for r in rows]),
        "timestamp": times, "received_at": times,
        "bid_price": [float(r[3]) for r in rows], "bid_size": [float(r[4]) for r in rows],
        "ask_price": [float(r[5]) for r in rows], "ask_size": [float(r[6]) for r in rows],
        "seq": np.arange(len(rows), dtype=np.int64),
    })


# c.book(...) form, shuffled on purpose: the measures must not rely on the row order
BOOK = pd.DataFrame({
    "side": ["ask", "bid", "ask", "bid", "bid", "ask"],
    "price": [103.0, 100.0, 102.0, 98.0, 99.0, 104.0],
    "size": [4.0, 3.0, 1.0, 2.0, 5.0, 10.0],
})
Q = quotes(("bybit", "BTC-USDT", 0, 100, 3, 102, 1), ("bybit", "BTC-USDT", 1, 101, 1, 101.5, 1))


def test_measures_of_a_quotes_table_one_value_per_quote():
    assert list(mid(Q)) == [101.0, 101.25]
    assert list(quoted_spread(Q)) == [2.0, 0.5]
    assert list(relative_spread(Q)) == pytest.approx([2 / 101, 0.5 / 101.25])
    # (100 * 1 + 102 * 3) / 4 = 101.5: leaning to the ask, the thinner side
    assert list(microprice(Q)) == pytest.approx([101.5, 101.25])
    assert list(book_imbalance(Q)) == pytest.approx([0.5, 0.0])  # (3 - 1) / 4
    assert mid(Q).name == "mid" and mid(Q).index.equals(Q.index)


def test_measures_of_a_book_are_numbers_for_the_book_now():
    assert mid(BOOK) == 101.0 and quoted_spread(BOOK) == 2.0
    assert relative_spread(BOOK) == pytest.approx(2 / 101)
    assert microprice(BOOK) == pytest.approx(101.5)
    assert book_imbalance(BOOK) == pytest.approx(0.5)  # top: 3 against 1
    # depth 2: bids 3 + 5 = 8, asks 1 + 4 = 5 -> 3 / 13; depth 3: 10 against 15
    assert book_imbalance(BOOK, depth=2) == pytest.approx(3 / 13)
    assert book_imbalance(BOOK, depth=3) == pytest.approx(-0.2)
    assert book_imbalance(BOOK, depth=50) == pytest.approx(-0.2)


def test_top_of_book_adds_every_measure_to_the_quotes():
    out = top_of_book(Q)
    assert list(out.columns[-5:]) == ["mid", "quoted_spread", "relative_spread", "microprice",
                                      "book_imbalance"]
    assert out["microprice"].iloc[0] == pytest.approx(101.5)
    assert list(out["bid_price"]) == list(Q["bid_price"])


def test_an_empty_or_one_sided_book_gives_nan_not_an_error():
    one_sided = BOOK[BOOK["side"] == "bid"]
    assert math.isnan(mid(one_sided)) and math.isnan(microprice(one_sided))
    assert book_imbalance(one_sided, depth=3) == 1.0
    empty = BOOK.iloc[:0]
    assert math.isnan(quoted_spread(empty)) and math.isnan(book_imbalance(empty))
    zero = quotes(("bybit", "X-Y", 0, 1, 0, 2, 0))
    assert math.isnan(microprice(zero).iloc[0]) and math.isnan(book_imbalance(zero).iloc[0])


def test_wrong_inputs_say_what_is_expected():
    with pytest.raises(ValueError, match="quotes table .* or a book"):
        mid(pd.DataFrame({"price": [1.0]}))
    with pytest.raises(TypeError, match="quotes table"):
        mid([1, 2])
    with pytest.raises(ValueError, match=r"depth=5 pass a book: c.book\(symbol, depth=5\)"):
        book_imbalance(Q, depth=5)
    with pytest.raises(ValueError, match="depth must be"):
        book_imbalance(BOOK, depth=0)


# --- the spread on executable prices ---------------------------------------------------
BYBIT, OTHER = ("bybit", "BTC-USDT"), ("okx", "BTC-USDT")
QUOTES = quotes(
    (*BYBIT, 0.2, 100.0, 1, 100.2, 1),
    (*OTHER, 0.5, 100.5, 1, 100.7, 1),
    (*BYBIT, 1.5, 100.6, 1, 100.8, 1),   # now okx is the cheaper one to buy
    (*OTHER, 2.0, 100.3, 1, 100.4, 1),
)


def test_quotes_spread_buys_at_one_ask_and_sells_at_the_other_bid_net_of_fees():
    s = spread(QUOTES, BYBIT, OTHER, "1s", on="quotes", fees_bps={"bybit": 10, "okx": 8})
    assert list(s.index) == [T0 + pd.Timedelta(seconds=k) for k in (1, 2)]
    assert list(s["ask_a"]) == [100.2, 100.8] and list(s["bid_b"]) == [100.5, 100.3]
    # at 1 s: buy bybit at 100.2, sell okx at 100.5: 0.3 / 100.2 -> 29.94 bps, less 18
    assert s["buy_a_sell_b_bps"].iloc[0] == pytest.approx(0.3 / 100.2 * 1e4 - 18)
    # the reverse: buy okx at 100.7, sell bybit at 100.0
    assert s["buy_b_sell_a_bps"].iloc[0] == pytest.approx(-0.7 / 100.7 * 1e4 - 18)
    # at 2 s (okx's quote of exactly 2 s counts): buy okx at 100.4, sell bybit at 100.6
    assert s["buy_b_sell_a_bps"].iloc[1] == pytest.approx(0.2 / 100.4 * 1e4 - 18)
    assert list(s["best_bps"]) == pytest.approx([0.3 / 100.2 * 1e4 - 18,
                                                 0.2 / 100.4 * 1e4 - 18])
    assert list(s["staleness_a"].dt.total_seconds()) == pytest.approx([0.8, 0.5])
    assert list(s["staleness_b"].dt.total_seconds()) == pytest.approx([0.5, 0.0])

    opps = opportunities(s, threshold_bps=5)  # only the first pays more than 5 bps net
    assert len(opps) == 1 and opps["buy"].iloc[0] == "bybit BTC-USDT"
    assert opps["sell"].iloc[0] == "okx BTC-USDT"
    assert opps["gross_bps"].iloc[0] == pytest.approx(0.3 / 100.2 * 1e4)
    both = opportunities(s)
    assert list(both["buy"]) == ["bybit BTC-USDT", "okx BTC-USDT"]
    assert opportunities(s, max_staleness="0.6s").index.tolist() == [s.index[1]]


def test_quotes_spread_takes_the_tables_ns_times_and_one_fee_for_both():
    table = QUOTES.assign(timestamp=QUOTES["timestamp"].dt.as_unit("ns").astype("int64"))
    s = spread(table, BYBIT, OTHER, "1s", on="quotes", fees_bps=9)
    assert s["buy_a_sell_b_bps"].iloc[0] == pytest.approx(0.3 / 100.2 * 1e4 - 18)
    no_fees = spread(QUOTES, BYBIT, OTHER, "1s", on="quotes")
    assert no_fees["best_bps"].iloc[0] == pytest.approx(0.3 / 100.2 * 1e4)


def test_quotes_spread_refuses_what_it_cannot_price():
    with pytest.raises(ValueError, match=r"no fee for okx"):
        spread(QUOTES, BYBIT, OTHER, on="quotes", fees_bps={"bybit": 10})
    with pytest.raises(ValueError, match="on is 'trades'"):
        spread(QUOTES, BYBIT, OTHER, on="bids")
    with pytest.raises(ValueError, match="quote_map"):
        spread(QUOTES, BYBIT, ("okx", "BTC-USD"), on="quotes")
    with pytest.raises(ValueError, match="no quotes for leg"):
        spread(QUOTES, BYBIT, ("kraken", "BTC-USDT"), on="quotes")
    with pytest.raises(ValueError, match="already net of fees"):
        opportunities(spread(QUOTES, BYBIT, OTHER, on="quotes"), fees_bps=5)
    with pytest.raises(ValueError, match="fees_bps applies to on='quotes'"):
        spread(QUOTES.assign(price=1.0), BYBIT, OTHER, fees_bps=5)


# --- the books' health ----------------------------------------------------------------
def events(*rows):
    """A book_events table from ``(symbol, seconds, from, to, reason)``, ``at`` in ns."""
    return pd.DataFrame({
        "venue": "bybit", "symbol": [r[0] for r in rows],
        "at": [int(T0.value + r[1] * S) for r in rows],
        "from_state": [r[2] for r in rows], "to_state": [r[3] for r in rows],
        "reason": [r[4] for r in rows], "seq": pd.array([None] * len(rows), dtype="Int64"),
        "not_live_s": np.nan,
    })


EVENTS = events(
    ("BTC-USDT", 0, "subscribing", "snapshot", "snapshot on the socket"),
    ("BTC-USDT", 1, "snapshot", "live", "snapshot applied"),
    ("ETH-USDT", 0, "subscribing", "buffering", "first delta; snapshot asked"),
    ("BTC-USDT", 11, "live", "desynced", "u 5 != previous u 3 + 1"),
    ("BTC-USDT", 11, "desynced", "resyncing", "resubscribe asked"),
    ("ETH-USDT", 2, "buffering", "snapshot", "REST snapshot"),
    ("ETH-USDT", 2, "snapshot", "live", "snapshot applied"),
    ("BTC-USDT", 13, "resyncing", "snapshot", "snapshot on the socket"),
    ("BTC-USDT", 13, "snapshot", "live", "snapshot applied"),
    ("BTC-USDT", 20, "live", "subscribing", "the connection was opened again"),
    ("BTC-USDT", 20.5, "subscribing", "snapshot", "snapshot on the socket"),
    ("BTC-USDT", 21, "snapshot", "live", "snapshot applied"),
    ("ETH-USDT", 25, "live", "desynced", "crossed book: best bid 10 >= best ask 9"),
    ("ETH-USDT", 25, "desynced", "resyncing", "snapshot asked"),
)


def test_book_quality_walks_each_books_transitions():
    q = book_quality(EVENTS, until=T0 + pd.Timedelta(seconds=30))
    assert list(q.index) == [("bybit", "BTC-USDT"), ("bybit", "ETH-USDT")]
    btc, eth = q.loc[("bybit", "BTC-USDT")], q.loc[("bybit", "ETH-USDT")]
    # BTC live 1..11, 13..20, 21..30 = 26 of 30 s; a desync, healed in 2 s; a reconnect
    # (1 s down); two returns to live after the first
    assert btc["state"] == "live" and btc["observed_s"] == 30.0 and btc["live_s"] == 26.0
    assert btc["live_fraction"] == pytest.approx(26 / 30)
    assert (btc["desyncs"], btc["resyncs"], btc["outages"]) == (1, 2, 2)
    assert btc["longest_outage_s"] == 2.0 and btc["last_desync"] == "u 5 != previous u 3 + 1"
    # ETH live 2..25, then still resyncing at 30: a 5 s outage going on
    assert eth["state"] == "resyncing" and eth["live_s"] == 23.0
    assert (eth["desyncs"], eth["resyncs"], eth["outages"]) == (1, 0, 1)
    assert eth["longest_outage_s"] == 5.0 and eth["last_desync"].startswith("crossed book")


def test_book_quality_ends_at_the_newest_event_by_default_and_takes_timestamps():
    q = book_quality(EVENTS)  # ends at 25 s, ETH's desync
    assert q.loc[("bybit", "BTC-USDT"), "live_s"] == 10 + 7 + 4
    assert q.loc[("bybit", "ETH-USDT"), "longest_outage_s"] == 0.0
    as_times = EVENTS.assign(at=pd.to_datetime(EVENTS["at"], unit="ns", utc=True))
    pd.testing.assert_frame_equal(book_quality(as_times, until="2026-01-01 00:00:30"),
                                  book_quality(EVENTS, until=T0 + pd.Timedelta(seconds=30)))


def test_book_quality_of_no_events_is_an_empty_table():
    q = book_quality(EVENTS.iloc[:0])
    assert q.empty and "live_s" in q.columns and q.index.names == ["venue", "symbol"]
    with pytest.raises(ValueError, match="book_events"):
        book_quality(pd.DataFrame({"at": [1]}))


def test_book_quality_orders_transitions_of_one_moment_by_their_chain():
    """The table's key order puts transitions of the same ``at`` alphabetically
    (``snapshot → live`` before ``subscribing → snapshot``): the report must follow
    the chain of states, not the rows' order."""
    tied = events(("BTC-USDT", 0, "subscribing", "snapshot", "snapshot on the socket"),
                  ("BTC-USDT", 0, "snapshot", "live", "snapshot applied"),
                  ("BTC-USDT", 10, "live", "desynced", "u 9 != previous u 7 + 1"),
                  ("BTC-USDT", 10, "desynced", "resyncing", "resubscribe asked"),
                  ("BTC-USDT", 12, "resyncing", "snapshot", "snapshot on the socket"),
                  ("BTC-USDT", 12, "snapshot", "live", "snapshot applied"))
    as_stored = tied.sort_values(["venue", "symbol", "at", "from_state", "to_state"])
    assert list(as_stored["from_state"][:2]) == ["snapshot", "subscribing"]  # the trap
    until = T0 + pd.Timedelta(seconds=20)
    q = book_quality(as_stored, until=until)
    pd.testing.assert_frame_equal(q, book_quality(tied, until=until))
    btc = q.loc[("bybit", "BTC-USDT")]
    assert (btc["live_s"], btc["longest_outage_s"], btc["resyncs"]) == (18.0, 2.0, 1)


def test_quotes_spread_of_a_dask_frame_reads_only_the_legs_and_gives_the_same_numbers():
    dd = pytest.importorskip("dask.dataframe")
    other = quotes(("kraken", "BTC-USDT", 0.7, 1.0, 1, 2.0, 1))  # neither leg: left out
    frame = dd.from_pandas(pd.concat([QUOTES, other], ignore_index=True), npartitions=2)
    expected = spread(QUOTES, BYBIT, OTHER, "1s", on="quotes", fees_bps=3)
    pd.testing.assert_frame_equal(spread(frame, BYBIT, OTHER, "1s", on="quotes", fees_bps=3),
                                  expected)
