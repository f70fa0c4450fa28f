"""Analysis helpers that work on ``Collector.df`` and ``TickStore.ticks()`` alike."""

from __future__ import annotations

import pandas as pd


def _check_ticks(df: pd.DataFrame, columns=("timestamp", "symbol", "price", "volume")) -> None:
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"expected a tick DataFrame (from Collector.df or TickStore.ticks()); "
                         f"missing column(s): {', '.join(missing)}")


def ohlcv(df: pd.DataFrame, freq: str = "1min", by: str | list[str] = "symbol") -> pd.DataFrame:
    """OHLCV bars per ``by`` group at any pandas frequency (``'1s'``, ``'5min'``, ``'1h'``).

    Columns: ``open high low close volume trades vwap``; the index is
    (``by``…, ``timestamp``) with each bar labelled by its start. Bars without
    trades are left out.
    """
    _check_ticks(df)
    keys = [by] if isinstance(by, str) else list(by)
    if df.empty:
        cols = ["open", "high", "low", "close", "volume", "trades", "vwap"]
        return pd.DataFrame(columns=cols, index=pd.MultiIndex.from_arrays(
            [[]] * (len(keys) + 1), names=[*keys, "timestamp"]))
    work = df.assign(notional=df["price"] * df["volume"])
    grouped = work.groupby([*keys, pd.Grouper(key="timestamp", freq=freq)], observed=True)
    bars = grouped["price"].agg(["first", "max", "min", "last", "count"])
    bars.columns = ["open", "high", "low", "close", "trades"]
    sums = grouped[["volume", "notional"]].sum()
    bars["volume"] = sums["volume"]
    bars["vwap"] = sums["notional"] / sums["volume"]
    return bars[["open", "high", "low", "close", "volume", "trades", "vwap"]]
