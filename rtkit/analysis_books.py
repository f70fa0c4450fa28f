"""What researchers compute from quotes and order books, and the books' health report.

Each measure takes either form rtkit gives:

* a **quotes table** (``c.quotes``, the ``quotes`` table of the database):
  columns ``bid_price bid_size ask_price ask_size``; the answer is a Series
  with one value per quote (same index);
* a **book** (``c.book(symbol, depth)``): columns ``side`` (``bid``/``ask``),
  ``price``, ``size``; the answer is one number, for the book as it is now.

The measures (``bid``/``ask`` the best prices, ``q_bid``/``q_ask`` their sizes):

* ``mid`` = (bid + ask) / 2;
* ``quoted_spread`` = ask − bid, in price; ``relative_spread`` = (ask − bid) / mid
  (a fraction: × 1e4 for basis points);
* ``microprice`` = (bid · q_ask + ask · q_bid) / (q_bid + q_ask): the mid
  leaned towards the side with less size, where the next trade is likelier;
* ``book_imbalance`` = (Q_bid − Q_ask) / (Q_bid + Q_ask), from −1 (only asks)
  to +1 (only bids), over the top ``depth`` levels of each side (``depth=1``:
  top-of-book imbalance, the only one a quotes table can give).

A side without any level gives NaN, never an error: an empty or one-sided book
is a state a live book passes through.

``book_quality(events)`` reads the ``book_events`` table (every transition of
every book, :mod:`rtkit.books.machine`) and says per venue and symbol how
long the book was live, how often it desynced and resynced, and its longest
outage.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from rtkit.columns import require_columns

__all__ = ["book_imbalance", "book_quality", "microprice", "mid", "quoted_spread",
           "relative_spread", "top_of_book"]

_QUOTE_COLUMNS = ("bid_price", "bid_size", "ask_price", "ask_size")
_BOOK_COLUMNS = ("side", "price", "size")
_WHAT = ("a quotes table (c.quotes: bid_price, bid_size, ask_price, ask_size) or a book "
         "(c.book(symbol): side, price, size)")
#: the states in which a book is right: ``live``, or ``unverified`` on a venue without proof
_GOOD = ("live", "unverified")
_EVENT_COLUMNS = ("venue", "symbol", "at", "from_state", "to_state")
_QUALITY_COLUMNS = ["state", "observed_s", "live_s", "live_fraction", "desyncs", "resyncs",
                    "outages", "longest_outage_s", "last_desync"]


def _is_book(df: pd.DataFrame) -> bool:
    """A book of ``c.book(...)`` form (else it must be a quotes table)."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected {_WHAT}, not {type(df).__name__}")
    if all(c in df.columns for c in _QUOTE_COLUMNS):
        return False
    if all(c in df.columns for c in _BOOK_COLUMNS):
        return True
    raise ValueError(f"expected {_WHAT}; the columns are {list(df.columns)}")


def _top(df: pd.DataFrame):
    """(bid, bid size, ask, ask size): Series for a quotes table, floats for a book."""
    if not _is_book(df):
        return (df["bid_price"].astype(float), df["bid_size"].astype(float),
                df["ask_price"].astype(float), df["ask_size"].astype(float))
    bids, asks = _sides(df, 1)
    (bid, q_bid), (ask, q_ask) = (
        (float(side["price"].iloc[0]), float(side["size"].iloc[0])) if len(side)
        else (np.nan, np.nan) for side in (bids, asks))
    return bid, q_bid, ask, q_ask


def _sides(book: pd.DataFrame, depth: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """The best ``depth`` levels of each side, best first (whatever order the rows had)."""
    side = book["side"].astype(str)
    bids = book[side == "bid"].sort_values("price", ascending=False).head(depth)
    asks = book[side == "ask"].sort_values("price", ascending=True).head(depth)
    return bids, asks


def _named(value, name: str):
    return value.rename(name) if isinstance(value, pd.Series) else float(value)


def mid(quotes_or_book: pd.DataFrame):
    """(best bid + best ask) / 2: a Series per quote, or one number for a book."""
    bid, _, ask, _ = _top(quotes_or_book)
    return _named((bid + ask) / 2, "mid")


def quoted_spread(quotes_or_book: pd.DataFrame):
    """best ask − best bid, in price: a Series per quote, or one number for a book."""
    bid, _, ask, _ = _top(quotes_or_book)
    return _named(ask - bid, "quoted_spread")


def relative_spread(quotes_or_book: pd.DataFrame):
    """(ask − bid) / mid, a fraction (× 1e4 for basis points): a Series per quote, or one
    number for a book."""
    bid, _, ask, _ = _top(quotes_or_book)
    return _named((ask - bid) / ((bid + ask) / 2), "relative_spread")


def microprice(quotes_or_book: pd.DataFrame):
    """(bid · ask size + ask · bid size) / (bid size + ask size): the mid weighted towards
    the thinner side. A Series per quote, or one number for a book."""
    bid, q_bid, ask, q_ask = _top(quotes_or_book)
    total = q_bid + q_ask
    if isinstance(total, pd.Series):
        total = total.where(total > 0)
    elif not total > 0:
        total = np.nan
    return _named((bid * q_ask + ask * q_bid) / total, "microprice")


def book_imbalance(quotes_or_book: pd.DataFrame, depth: int = 1):
    """(bid size − ask size) / (bid size + ask size) over the top ``depth`` levels of each
    side: +1 only bids, −1 only asks. ``depth=1`` is the top-of-book imbalance (a Series
    per quote from a quotes table); a deeper one needs a book (``c.book(symbol, depth)``
    holding at least that many levels) and gives one number."""
    if type(depth) is not int or depth < 1:
        raise ValueError(f"depth must be a whole number of levels >= 1, not {depth!r}")
    if not _is_book(quotes_or_book):
        if depth != 1:
            raise ValueError(f"a quotes table holds only the top of the book (depth=1); for "
                             f"depth={depth} pass a book: c.book(symbol, depth={depth})")
        q_bid, q_ask = (quotes_or_book["bid_size"].astype(float),
                        quotes_or_book["ask_size"].astype(float))
        total = (q_bid + q_ask).where(lambda t: t > 0)
        return ((q_bid - q_ask) / total).rename("book_imbalance")
    bids, asks = _sides(quotes_or_book, depth)
    q_bid, q_ask = float(bids["size"].sum()), float(asks["size"].sum())
    total = q_bid + q_ask
    return (q_bid - q_ask) / total if total > 0 else float("nan")


def top_of_book(quotes: pd.DataFrame) -> pd.DataFrame:
    """The quotes table with ``mid``, ``quoted_spread``, ``relative_spread``,
    ``microprice`` and ``book_imbalance`` (top of book) added, one row per quote."""
    require_columns(quotes, _QUOTE_COLUMNS, "a quotes table (c.quotes)")
    return quotes.assign(mid=mid(quotes), quoted_spread=quoted_spread(quotes),
                         relative_spread=relative_spread(quotes),
                         microprice=microprice(quotes), book_imbalance=book_imbalance(quotes))


# --- the books' health ---------------------------------------------------------------------
def _ns(values: pd.Series) -> np.ndarray:
    """Event times as int64 ns (the table's integers, or UTC timestamps)."""
    if pd.api.types.is_datetime64_any_dtype(values):
        return values.dt.tz_localize(None).to_numpy("datetime64[ns]").astype(np.int64) \
            if values.dt.tz is not None else values.to_numpy("datetime64[ns]").astype(np.int64)
    return values.to_numpy(np.int64)


def _until_ns(until) -> int:
    stamp = pd.Timestamp(until)
    if stamp.tzinfo is None:
        stamp = stamp.tz_localize("UTC")
    return int(stamp.value)


def book_quality(events: pd.DataFrame, until=None) -> pd.DataFrame:
    """The books' health per (venue, symbol) from the ``book_events`` table.

    Each book is observed from its first event to ``until`` (a time, e.g. when
    the collector stopped; default: the newest event of the table, so every book
    ends at the same moment). Columns: ``state`` (the last one), ``observed_s``,
    ``live_s`` (seconds ``live``, or ``unverified`` on a venue without proof) and
    ``live_fraction``; ``desyncs`` (entries into ``desynced``); ``resyncs``
    (returns to live after having been live once: after a desync, a venue
    restart or a reconnect); ``outages`` and ``longest_outage_s`` (from leaving
    live to coming back, or to ``until`` if it never did; the wait for the
    first snapshot is not an outage); ``last_desync`` (its reason).

    Read the table with ``pd.read_sql("SELECT * FROM book_events", sqlite3.connect(db))``
    (``at`` as ns integers, rows in any order); ``at`` may also be UTC timestamps.
    """
    require_columns(events, _EVENT_COLUMNS, "the book_events table")
    if events.empty:
        empty = pd.DataFrame(columns=_QUALITY_COLUMNS,
                             index=pd.MultiIndex.from_arrays([[], []], names=["venue", "symbol"]))
        return empty
    at = _ns(events["at"])
    work = pd.DataFrame({"venue": events["venue"].astype(str).to_numpy(),
                         "symbol": events["symbol"].astype(str).to_numpy(), "at": at,
                         "from_state": events["from_state"].astype(str).to_numpy(),
                         "to_state": events["to_state"].astype(str).to_numpy(),
                         "reason": (events["reason"].astype(str).to_numpy()
                                    if "reason" in events.columns else "")})
    end = int(at.max()) if until is None else _until_ns(until)
    rows = {}
    work = work.sort_values(["venue", "symbol", "at"], kind="stable")
    for (venue, symbol), book in work.groupby(["venue", "symbol"], sort=True):
        rows[(venue, symbol)] = _one_book(book, end)
    out = pd.DataFrame.from_dict(rows, orient="index", columns=_QUALITY_COLUMNS)
    out.index = pd.MultiIndex.from_tuples(out.index, names=["venue", "symbol"])
    return out.astype({"desyncs": np.int64, "resyncs": np.int64, "outages": np.int64})


def _chained(book: pd.DataFrame) -> list[tuple[int, str, str]]:
    """``(at, to_state, reason)`` in the order the transitions happened. Several share one
    ``at`` (``live → desynced → resyncing`` on one message), and the table gives those in
    key order (alphabetical), so within a time each next one is the one leaving the state
    the previous one entered."""
    rows = list(zip(book["at"].tolist(), book["from_state"].tolist(),
                    book["to_state"].tolist(), book["reason"].tolist(), strict=True))
    out: list[tuple[int, str, str]] = []
    state = None
    i = 0
    while i < len(rows):
        j = i
        while j < len(rows) and rows[j][0] == rows[i][0]:
            j += 1
        tied = rows[i:j]
        while tied:
            k = next((n for n, r in enumerate(tied) if r[1] == state), None)
            if k is None:  # nothing leaves the current state: the one no other tied one enters
                entered = {r[2] for r in tied}
                k = next((n for n, r in enumerate(tied) if r[1] not in entered), 0)
            at, _, to_state, reason = tied.pop(k)
            out.append((at, to_state, reason))
            state = to_state
        i = j
    return out


def _one_book(book: pd.DataFrame, end: int) -> list:
    """Walk one book's transitions in time order: how long in each state, and its outages."""
    chain = _chained(book)
    ats = np.array([r[0] for r in chain], dtype=np.int64)
    to_states = [r[1] for r in chain]
    reasons = [r[2] for r in chain]
    start = int(ats[0])
    live_ns = 0
    good_since: int | None = None  # when the book last became good (while it is)
    down_since: int | None = None  # when it last stopped being good (after once being good)
    been_good = False
    desyncs = resyncs = 0
    outages: list[int] = []
    last_desync = ""
    for at, to_state, reason in zip(ats.tolist(), to_states, reasons, strict=True):
        at = min(at, end)
        good = to_state in _GOOD
        if to_state == "desynced":
            desyncs += 1
            last_desync = reason
        if good and good_since is None:
            good_since = at
            if been_good:
                resyncs += 1
                outages.append(at - (down_since if down_since is not None else at))
                down_since = None
            been_good = True
        elif not good and good_since is not None:
            live_ns += at - good_since
            good_since, down_since = None, at
    if good_since is not None:
        live_ns += max(0, end - good_since)
    elif down_since is not None:  # down at the end: an outage still going on
        outages.append(max(0, end - down_since))
    observed = max(0, end - start)
    return [str(to_states[-1]), observed / 1e9, live_ns / 1e9,
            live_ns / observed if observed else np.nan, desyncs, resyncs, len(outages),
            max(outages) / 1e9 if outages else 0.0, last_desync]
