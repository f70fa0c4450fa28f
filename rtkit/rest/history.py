"""Trade history by id range: each venue's pagination walked until exactly the ids
asked for are in hand (issue 14's backfill builds on it).

``fromId`` venues (Binance) page upwards from an id; ``after`` venues (Coinbase
Exchange, OKX) page downwards below an id cursor; Kraken pages forward with its
``since`` cursor (ns) from a time hint; Coinbase Advanced Trade by time window;
Bitstamp serves only its last day; Bybit only its latest trades, with ids that
are not sequential: it cannot fill a range, and says so.
"""

from __future__ import annotations

import math

from rtkit.rest.client import RestClient
from rtkit.rest.endpoints import RestTrade


class CannotFill(ValueError):
    """The venue cannot return trades by id (and why)."""


#: why a venue cannot fill an id range, for the gap ledger
CANNOT_FILL = {
    "bybit": "bybit serves only its latest trades (60 spot, 1,000 derivatives) and its trade "
             "ids are not sequential: a gap cannot be filled by id",
    "generic": "a generic feed has no known REST trade history",
}


def fetch_trades(client: RestClient, symbol: str, first_id: int, last_id: int, *,
                 since_ns: int | None = None, until_ns: int | None = None,
                 max_trades: int | None = None, agg: bool = False) -> list[RestTrade]:
    """The trades of ``symbol`` with ids ``first_id..last_id`` (both included) that the
    venue still has, ascending by id, each once; at most ``max_trades`` (the lowest ids).

    ``since_ns`` (Kraken, Coinbase Advanced Trade): a time at or before the first
    missing trade (the last trade seen before the gap); ``until_ns`` (Coinbase
    Advanced Trade): a time at or after the last one. ``agg`` (Binance spot): the ids are
    aggregate ids (the ``aggTrade`` channel's ``a``), fetched from ``aggTrades``. Raises
    :class:`CannotFill` for a venue that cannot fill by id.
    """
    if last_id < first_id:
        return []
    venue = client.venue
    if venue in CANNOT_FILL:
        raise CannotFill(CANNOT_FILL[venue])
    paging = client.spec.paging
    wanted = last_id - first_id + 1 if max_trades is None else min(max_trades,
                                                                   last_id - first_id + 1)
    last_id = first_id + wanted - 1
    found: dict[int, RestTrade] = {}

    def keep(page: list[RestTrade]) -> None:
        for t in page:
            if first_id <= t.trade_id <= last_id:
                found[t.trade_id] = t

    size = client.spec.page_size
    if paging == "fromId":
        cursor = first_id
        aggregate = {"agg": True} if agg else {}
        while cursor <= last_id:
            page, _ = client.trades_page(symbol, from_id=cursor,
                                         limit=min(size, last_id - cursor + 1), **aggregate)
            keep(page)
            highest = max((t.trade_id for t in page), default=cursor - 1)
            if highest < cursor:  # empty, or a venue that ignored the cursor: never loop
                break
            cursor = highest + 1
    elif paging == "after":
        cursor = last_id + 1
        while cursor > first_id:
            page, _ = client.trades_page(symbol, after=cursor, limit=min(size, cursor - first_id))
            keep(page)
            if not page:
                break
            lowest = min(t.trade_id for t in page)
            if lowest >= cursor:  # a venue that ignored the cursor: stop, never loop
                break
            cursor = lowest
    elif paging == "since":
        # trades after ``since``: one ns before the hint keeps the hint's own trades
        page, _ = since_pages(client, symbol, first_id, last_id,
                              0 if since_ns is None else since_ns - 1)
        keep(page)
    elif paging == "window":
        if since_ns is None or until_ns is None:
            raise ValueError(f"{venue} pages trade history by time: give since_ns= and until_ns= "
                             "around the missing trades")
        start_s, end_s = since_ns // 10**9, math.ceil(until_ns / 10**9)
        while end_s >= start_s:
            page, _ = client.trades_page(symbol, start_s=start_s, end_s=end_s, limit=size)
            keep(page)
            if len(page) < size or min(t.trade_id for t in page) <= first_id:
                break
            oldest_s = math.ceil(min(t.ts_ns for t in page) / 10**9)
            if oldest_s >= end_s:  # more than a page in one second: the rest cannot be had
                break
            end_s = oldest_s
    else:  # 'recent': one answer holds all the venue keeps (Bitstamp: the last day)
        page, _ = client.trades_page(symbol, time="day")
        keep(page)
    return [found[i] for i in sorted(found)]


def since_pages(client: RestClient, symbol: str, first_id: int, last_id: int, since: int,
                pages: int | None = None) -> tuple[list[RestTrade], int | None]:
    """Kraken's history from its cursor ``since`` (the trades after it): up to ``pages``
    pages (None: as many as it takes). The trades with ids ``first_id..last_id``, ascending,
    each once; and the venue's cursor to go on from, None when there is nothing more to
    ask (``last_id`` reached, or the venue has no later trades). Going on from the
    venue's own cursor re-reads nothing."""
    found: dict[int, RestTrade] = {}
    size = client.spec.page_size
    asked = 0
    highest = -1  # no id yet (ids are never negative)
    while True:
        page, nxt = client.trades_page(symbol, since=since, limit=size)
        asked += 1
        for t in page:
            if first_id <= t.trade_id <= last_id:
                found[t.trade_id] = t
        top = max((t.trade_id for t in page), default=highest)
        # a cursor that moves on while the ids do not (the same old trades again) would
        # be asked forever: no higher id than before ends the walk, as an empty page does
        if top <= highest or top >= last_id or nxt is None or nxt <= since:
            return [found[i] for i in sorted(found)], None
        highest = top
        since = nxt
        if pages is not None and asked >= pages:
            return [found[i] for i in sorted(found)], since
