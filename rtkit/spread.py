"""Cross-venue spreads: two legs' last prices lined up in time, and where they part.

``spread`` puts each leg's last traded price on a regular time grid, as of
each grid time: a row at ``t`` holds the newest trade at or before ``t`` and
nothing after it (``pd.merge_asof`` with ``direction="backward"``), so a
backtest on it cannot peek. Each leg's staleness (how old that trade is at
``t``) sits beside it: a quiet leg carries an old price, and a spread against
an old price is not one you can trade.

A leg is ``(venue, symbol)``. The two symbols must have the same base, and
the same quote unless ``quote_map`` says which quotes to treat as one:
USDT is not USD (it trades near one dollar, not at it), so rtkit never
equates them on its own.

``spread(quotes, ..., on="quotes")`` does the same on the quotes table
(``c.quotes``): each leg's best bid and ask as of each grid time, and the two
trades one could actually make — buy at a's ask and sell at b's bid, or the
reverse — in basis points of the price paid, net of each venue's taker fee.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from rtkit.columns import require_columns

_COLUMNS = ["price_a", "price_b", "staleness_a", "staleness_b", "spread", "spread_bps"]
_QUOTE_COLUMNS = ["bid_a", "ask_a", "bid_b", "ask_b", "staleness_a", "staleness_b",
                  "buy_a_sell_b_bps", "buy_b_sell_a_bps", "best_bps"]
#: what ``on=`` may say: the prices a spread is made of
_ON = ("trades", "quotes")


def _leg(leg) -> tuple[str, str]:
    if not (isinstance(leg, tuple) and len(leg) == 2 and all(isinstance(x, str) for x in leg)):
        raise TypeError(f"a leg is (venue, symbol), e.g. ('binance', 'BTC-USDT'), not {leg!r}")
    return leg


def _currencies(symbol: str) -> tuple[str, str]:
    base, sep, quote = symbol.partition("-")
    if not (sep and base and quote):
        raise ValueError(f"symbol {symbol!r} is not BASE-QUOTE (e.g. 'BTC-USDT')")
    return base, quote


def _check_comparable(leg_a: tuple[str, str], leg_b: tuple[str, str],
                      quote_map: Mapping[str, str]) -> None:
    """Refuse legs whose prices are not in the same units, saying how to map them."""
    (base_a, quote_a), (base_b, quote_b) = _currencies(leg_a[1]), _currencies(leg_b[1])
    if base_a != base_b:
        raise ValueError(f"the legs trade different assets ({base_a} and {base_b}); a spread "
                         "needs the same base on both sides")
    if quote_map.get(quote_a, quote_a) != quote_map.get(quote_b, quote_b):
        raise ValueError(
            f"{leg_a} is priced in {quote_a} and {leg_b} in {quote_b}, which are different "
            f"currencies. To compare them as if equal, say so: "
            f"quote_map={{{quote_a!r}: {quote_b!r}}}")


def _leg_rows(ticks: pd.DataFrame, leg: tuple[str, str], what: str = "ticks") -> pd.DataFrame:
    """One leg's rows in venue-time order (then arrival order)."""
    rows = ticks[(ticks["venue"] == leg[0]) & (ticks["symbol"] == leg[1])]
    if rows.empty:
        present = sorted({(str(v), str(s)) for v, s in
                          zip(ticks["venue"], ticks["symbol"], strict=True)})
        raise ValueError(f"no {what} for leg {leg}; the {what} hold {present or 'nothing'}")
    order = ["timestamp", "received_at"] if "received_at" in rows.columns else ["timestamp"]
    return rows.sort_values(order, kind="stable")


def _leg_trades(ticks: pd.DataFrame, leg: tuple[str, str]) -> pd.DataFrame:
    """One leg's trades, ``last_trade`` and ``price``, in trade-time order."""
    rows = _leg_rows(ticks, leg)
    return pd.DataFrame({"last_trade": rows["timestamp"].to_numpy(),
                         "price": rows["price"].to_numpy(np.float64)})


def _leg_quotes(quotes: pd.DataFrame, leg: tuple[str, str]) -> pd.DataFrame:
    """One leg's quotes, ``last_trade`` (the quote's time), ``bid`` and ``ask``."""
    rows = _leg_rows(quotes, leg, "quotes")
    times = rows["timestamp"]
    if not pd.api.types.is_datetime64_any_dtype(times):  # the table's ns integers
        times = pd.to_datetime(times.to_numpy(np.int64), unit="ns", utc=True)
    return pd.DataFrame({"last_trade": np.asarray(times),
                         "bid": rows["bid_price"].to_numpy(np.float64),
                         "ask": rows["ask_price"].to_numpy(np.float64)})


def _grid(a: pd.DataFrame, b: pd.DataFrame, freq: str) -> pd.DataFrame:
    """The ``freq`` grid from the first time both legs have a price to the first time at or
    after the last one."""
    try:
        start = max(a["last_trade"].iloc[0], b["last_trade"].iloc[0]).ceil(freq)
        end = max(a["last_trade"].iloc[-1], b["last_trade"].iloc[-1]).ceil(freq)
        return pd.DataFrame({"time": pd.date_range(start, end, freq=freq)})
    except ValueError as exc:
        raise ValueError(f"freq must be a pandas frequency such as '1s', '250ms' or '1min', "
                         f"not {freq!r} ({exc})") from None


def _fees(fees_bps, leg_a: tuple[str, str], leg_b: tuple[str, str]) -> tuple[float, float]:
    """Each leg's taker fee in bps from one number, ``(fee_a, fee_b)`` or ``{venue: fee}``."""
    if isinstance(fees_bps, Mapping):
        missing = [v for v in (leg_a[0], leg_b[0]) if v not in fees_bps]
        if missing:
            raise ValueError(f"fees_bps has no fee for {', '.join(missing)}; give every "
                             f"leg's venue, e.g. {{{leg_a[0]!r}: 10, {leg_b[0]!r}: 10}}")
        return float(fees_bps[leg_a[0]]), float(fees_bps[leg_b[0]])
    if isinstance(fees_bps, (int, float, np.number)):
        return float(fees_bps), float(fees_bps)
    if isinstance(fees_bps, tuple) and len(fees_bps) == 2:
        return float(fees_bps[0]), float(fees_bps[1])
    raise TypeError(f"fees_bps is one fee in bps, (fee_a, fee_b) or {{venue: fee}}, "
                    f"not {fees_bps!r}")


def _quote_spread(quotes: pd.DataFrame, leg_a: tuple[str, str], leg_b: tuple[str, str],
                  freq: str, fees_bps) -> pd.DataFrame:
    """``spread(..., on="quotes")``: executable prices as of each grid time."""
    require_columns(quotes, ("timestamp", "venue", "symbol", "bid_price", "ask_price"),
                    "a quotes table (c.quotes, or the quotes table of the database)")
    fee_a, fee_b = _fees(fees_bps, leg_a, leg_b)
    a, b = _leg_quotes(quotes, leg_a), _leg_quotes(quotes, leg_b)
    grid = _grid(a, b, freq)
    out = grid.set_index("time")
    for name, legq in (("a", a), ("b", b)):
        aligned = pd.merge_asof(grid, legq, left_on="time", right_on="last_trade",
                                direction="backward")
        out[f"bid_{name}"] = aligned["bid"].to_numpy()
        out[f"ask_{name}"] = aligned["ask"].to_numpy()
        out[f"staleness_{name}"] = (aligned["time"] - aligned["last_trade"]).to_numpy()
    fees = fee_a + fee_b
    out["buy_a_sell_b_bps"] = (out["bid_b"] - out["ask_a"]) / out["ask_a"] * 1e4 - fees
    out["buy_b_sell_a_bps"] = (out["bid_a"] - out["ask_b"]) / out["ask_b"] * 1e4 - fees
    out["best_bps"] = out[["buy_a_sell_b_bps", "buy_b_sell_a_bps"]].max(axis=1)
    out = out[_QUOTE_COLUMNS]
    out.attrs["legs"] = {"a": leg_a, "b": leg_b}
    out.attrs["on"] = "quotes"
    out.attrs["fees_bps"] = (fee_a, fee_b)
    return out


def spread(ticks: pd.DataFrame, leg_a: tuple[str, str], leg_b: tuple[str, str],
           freq: str = "1s", *, quote_map: Mapping[str, str] | None = None,
           on: str = "trades", fees_bps: float | tuple[float, float] | Mapping[str, float] = 0.0
           ) -> pd.DataFrame:
    """Leg a minus leg b on a ``freq`` grid, as of each grid time (no look-ahead).

    ``ticks``: ``Collector.df``, ``CollectorGroup.df``, ``TickStore.ticks()``
    (or on-chain swaps). Index: the grid times, from the first one at which
    both legs have traded to the first at or after the last trade. Columns:
    ``price_a``, ``price_b`` (each leg's last price), ``staleness_a``,
    ``staleness_b`` (Timedeltas: the grid time minus that trade's time),
    ``spread`` (``price_a - price_b``) and ``spread_bps`` (the spread over the
    mid price, in basis points). ``quote_map`` (e.g. ``{"USDT": "USD"}``)
    names quotes to treat as one currency.

    ``on="quotes"``: ``ticks`` is a quotes table (``c.quotes``, or the
    ``quotes`` table of the database) and the spread is on executable prices.
    Columns: ``bid_a``, ``ask_a``, ``bid_b``, ``ask_b`` (each leg's best bid and
    ask as of the grid time), ``staleness_a``, ``staleness_b`` (how old that
    quote is), ``buy_a_sell_b_bps`` (buy at a's ask, sell at b's bid:
    ``(bid_b - ask_a) / ask_a``, in bps, minus both fees), ``buy_b_sell_a_bps``
    (the reverse) and ``best_bps`` (the better of the two; above 0 it pays).
    ``fees_bps``: each venue's taker fee in bps, as ``{venue: fee}``,
    ``(fee_a, fee_b)`` or one number for both.
    """
    if on not in _ON:
        raise ValueError(f"on is 'trades' (last traded prices) or 'quotes' (best bid and "
                         f"ask: executable prices), not {on!r}")
    if on == "quotes":
        leg_a, leg_b = _leg(leg_a), _leg(leg_b)
        _check_comparable(leg_a, leg_b, quote_map or {})
        if type(ticks).__module__.split(".")[0] == "dask":  # only the two legs' rows come back
            legs = ticks[((ticks["venue"] == leg_a[0]) & (ticks["symbol"] == leg_a[1]))
                         | ((ticks["venue"] == leg_b[0]) & (ticks["symbol"] == leg_b[1]))]
            ticks = legs.compute()
        return _quote_spread(ticks, leg_a, leg_b, freq, fees_bps)
    if fees_bps:
        raise ValueError("fees_bps applies to on='quotes'; for a spread of last traded "
                         "prices give the fees to opportunities(..., fees_bps=...)")
    if type(ticks).__module__.split(".")[0] == "dask":  # rtkit.lake.to_dask(...)
        from rtkit.lake import dask_spread

        return dask_spread.spread(ticks, leg_a, leg_b, freq, quote_map=quote_map)
    require_columns(ticks, ("timestamp", "venue", "symbol", "price"))
    leg_a, leg_b = _leg(leg_a), _leg(leg_b)
    _check_comparable(leg_a, leg_b, quote_map or {})
    a, b = _leg_trades(ticks, leg_a), _leg_trades(ticks, leg_b)
    grid = _grid(a, b, freq)
    out = grid.set_index("time")
    for name, trades in (("a", a), ("b", b)):
        aligned = pd.merge_asof(grid, trades, left_on="time", right_on="last_trade",
                                direction="backward")
        out[f"price_{name}"] = aligned["price"].to_numpy()
        out[f"staleness_{name}"] = (aligned["time"] - aligned["last_trade"]).to_numpy()
    out["spread"] = out["price_a"] - out["price_b"]
    out["spread_bps"] = out["spread"] / ((out["price_a"] + out["price_b"]) / 2) * 1e4
    out = out[_COLUMNS]
    out.attrs["legs"] = {"a": leg_a, "b": leg_b}
    return out


def opportunities(spreads: pd.DataFrame, *, fees_bps: float | tuple[float, float] = 0.0,
                  threshold_bps: float = 0.0, max_staleness=None) -> pd.DataFrame:
    """The rows of ``spread(...)`` where buying the cheaper leg and selling the dearer
    one earns more than ``threshold_bps`` after fees.

    ``fees_bps``: each leg's taker fee in basis points, one number for both or
    ``(fee_a, fee_b)``; a round trip pays both. ``max_staleness`` (e.g.
    ``"2s"``): leave out rows where either leg's last trade is older. Adds
    ``buy`` and ``sell`` (the legs, as ``venue symbol``), ``gross_bps``
    (``|spread_bps|``) and ``net_bps`` (after fees).

    On ``spread(..., on="quotes")`` (fees already taken there): the rows whose
    ``best_bps`` is above ``threshold_bps``, with ``buy``/``sell`` the legs of the
    better direction, ``net_bps`` its edge and ``gross_bps`` the edge before fees.
    """
    if "best_bps" in spreads.columns:
        return _quote_opportunities(spreads, fees_bps, threshold_bps, max_staleness)
    missing = [c for c in _COLUMNS if c not in spreads.columns]
    if missing:
        raise ValueError(f"expected the result of rtkit.analysis.spread(...); missing "
                         f"column(s): {', '.join(missing)}")
    fee_a, fee_b = ((fees_bps, fees_bps) if isinstance(fees_bps, (int, float, np.number))
                    else fees_bps)
    gross = spreads["spread_bps"].abs()
    net = gross - (fee_a + fee_b)
    keep = net > threshold_bps
    if max_staleness is not None:
        limit = pd.Timedelta(max_staleness)
        keep &= (spreads["staleness_a"] <= limit) & (spreads["staleness_b"] <= limit)
    legs = spreads.attrs.get("legs", {"a": ("a", ""), "b": ("b", "")})
    label_a, label_b = (" ".join(legs[k]).strip() for k in ("a", "b"))
    rows = spreads[keep]
    a_dearer = rows["spread"] > 0
    return rows.assign(
        buy=np.where(a_dearer, label_b, label_a), sell=np.where(a_dearer, label_a, label_b),
        gross_bps=gross[keep], net_bps=net[keep])


def _quote_opportunities(spreads: pd.DataFrame, fees_bps, threshold_bps: float,
                         max_staleness) -> pd.DataFrame:
    """``opportunities`` of a spread on quotes: the better direction where it pays."""
    missing = [c for c in _QUOTE_COLUMNS if c not in spreads.columns]
    if missing:
        raise ValueError(f"expected the result of rtkit.analysis.spread(..., on='quotes'); "
                         f"missing column(s): {', '.join(missing)}")
    if fees_bps:
        raise ValueError("this spread is on quotes and already net of fees: give them to "
                         "spread(..., on='quotes', fees_bps=...), not to opportunities")
    keep = spreads["best_bps"] > threshold_bps
    if max_staleness is not None:
        limit = pd.Timedelta(max_staleness)
        keep &= (spreads["staleness_a"] <= limit) & (spreads["staleness_b"] <= limit)
    legs = spreads.attrs.get("legs", {"a": ("a", ""), "b": ("b", "")})
    label_a, label_b = (" ".join(legs[k]).strip() for k in ("a", "b"))
    fee_a, fee_b = spreads.attrs.get("fees_bps", (0.0, 0.0))
    rows = spreads[keep]
    buy_a = rows["buy_a_sell_b_bps"] >= rows["buy_b_sell_a_bps"]
    return rows.assign(buy=np.where(buy_a, label_a, label_b),
                       sell=np.where(buy_a, label_b, label_a),
                       gross_bps=rows["best_bps"] + fee_a + fee_b, net_bps=rows["best_bps"])
