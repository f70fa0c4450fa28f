"""Analysis helpers that work on ``Collector.df`` and ``TickStore.ticks()`` alike.

Both give the same columns and dtypes (``rtkit.frame``), so every helper here
takes either one: bars, VWAP and buy/sell imbalance per symbol (optionally per
time bucket), and a per-venue data-quality summary. Cross-venue spreads
(``spread``, ``opportunities``) live in :mod:`rtkit.spread` and are re-exported
here. Measures of quotes and books (``mid``, ``quoted_spread``,
``relative_spread``, ``microprice``, ``book_imbalance``, ``top_of_book``) and
the books' health report (``book_quality``) live in
:mod:`rtkit.analysis_books` and are re-exported here.

Each also takes a Dask DataFrame (``rtkit.lake.to_dask``) and returns the same
pandas result with the same numbers, computed on the cluster
(:mod:`rtkit.lake.dask`).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from rtkit.analysis_books import (
    book_imbalance,
    book_quality,
    microprice,
    mid,
    quoted_spread,
    relative_spread,
    top_of_book,
)
from rtkit.columns import require_columns
from rtkit.spread import opportunities, spread

__all__ = ["book_imbalance", "book_quality", "completeness", "imbalance", "microprice", "mid",
           "ohlcv", "opportunities", "quality", "quoted_spread", "relative_spread", "spread",
           "top_of_book", "vwap"]

_BAR_COLUMNS = ["open", "high", "low", "close", "volume", "trades", "vwap"]
_IMBALANCE_COLUMNS = ["buy_volume", "sell_volume", "unknown_volume", "imbalance"]


def _on_dask(df) -> bool:
    """A Dask DataFrame (told without importing dask)."""
    return type(df).__module__.split(".")[0] == "dask"


def _keys(by: str | Sequence[str]) -> list[str]:
    return [by] if isinstance(by, str) else list(by)


def _grouped(df: pd.DataFrame, keys: list[str], freq: str | None):
    """``df`` grouped by ``keys`` and, with ``freq``, by time bucket (labelled by its start).

    Groups come in name order: a categorical's own order is the order names
    first arrived in, which differs from run to run when several feeds race.
    """
    by_name = {key: df[key].cat.set_categories(sorted(df[key].cat.categories))
               for key in keys if isinstance(df[key].dtype, pd.CategoricalDtype)}
    groupers = [*keys, pd.Grouper(key="timestamp", freq=freq)] if freq else keys
    return df.assign(**by_name).groupby(groupers, observed=True, sort=True)


def _empty(columns: list[str], keys: list[str], freq: str | None) -> pd.DataFrame:
    names = [*keys, "timestamp"] if freq else keys
    index = pd.MultiIndex.from_arrays([[]] * len(names), names=names) if len(names) > 1 \
        else pd.Index([], name=names[0])
    return pd.DataFrame(columns=columns, index=index, dtype=float)


def ohlcv(df: pd.DataFrame, freq: str = "1min", by: str | list[str] = "symbol") -> pd.DataFrame:
    """OHLCV bars per ``by`` group at any pandas frequency (``'1s'``, ``'5min'``, ``'1h'``).

    Columns: ``open high low close volume trades vwap``; the index is
    (``by``…, ``timestamp``) with each bar labelled by its start. Bars without
    trades are left out.
    """
    if _on_dask(df):
        from rtkit.lake import dask as lake_dask

        return lake_dask.grouped("ohlcv", df, freq, by)
    require_columns(df)
    keys = _keys(by)
    if df.empty:
        return _empty(_BAR_COLUMNS, keys, freq)
    work = df.assign(notional=df["price"] * df["volume"])
    grouped = _grouped(work, keys, freq)
    bars = grouped["price"].agg(["first", "max", "min", "last", "count"])
    bars.columns = ["open", "high", "low", "close", "trades"]
    sums = grouped[["volume", "notional"]].sum()
    bars["volume"] = sums["volume"]
    bars["vwap"] = sums["notional"] / sums["volume"]
    return bars[_BAR_COLUMNS]


def vwap(df: pd.DataFrame, freq: str | None = None, by: str | list[str] = "symbol") -> pd.Series:
    """Volume-weighted average price per ``by`` group, over all ticks or per ``freq`` bucket."""
    if _on_dask(df):
        from rtkit.lake import dask as lake_dask

        return lake_dask.grouped("vwap", df, freq, by)
    require_columns(df)
    keys = _keys(by)
    if df.empty:
        return _empty(["vwap"], keys, freq)["vwap"]
    sums = _grouped(df.assign(notional=df["price"] * df["volume"]), keys, freq)[
        ["volume", "notional"]].sum()
    return (sums["notional"] / sums["volume"]).rename("vwap")


def imbalance(df: pd.DataFrame, freq: str | None = None,
              by: str | list[str] = "symbol") -> pd.DataFrame:
    """Aggressor buy and sell volume per ``by`` group (and ``freq`` bucket).

    ``imbalance`` is ``(buy - sell) / (buy + sell)``, from -1 (only sellers hit
    bids) to +1 (only buyers lifted offers); NaN where no trade had a side.
    Trades whose venue does not say the side are in ``unknown_volume`` and
    left out of the ratio.
    """
    if _on_dask(df):
        from rtkit.lake import dask as lake_dask

        return lake_dask.grouped("imbalance", df, freq, by)
    require_columns(df, ("timestamp", "symbol", "volume", "side"))
    keys = _keys(by)
    if df.empty:
        return _empty(_IMBALANCE_COLUMNS, keys, freq)
    side, volume = df["side"], df["volume"]
    buy = side == "buy"
    sell = side == "sell"
    work = df[[*keys, "timestamp"]].assign(
        buy_volume=volume.where(buy, 0.0), sell_volume=volume.where(sell, 0.0),
        unknown_volume=volume.where(~(buy | sell), 0.0))
    out = _grouped(work, keys, freq)[["buy_volume", "sell_volume", "unknown_volume"]].sum()
    sided = out["buy_volume"] + out["sell_volume"]
    out["imbalance"] = (out["buy_volume"] - out["sell_volume"]) / sided.where(sided > 0)
    return out


def quality(ticks: pd.DataFrame, rejects: pd.DataFrame | None = None,
            gaps: pd.DataFrame | None = None,
            percentiles: Sequence[float] = (0.5, 0.9, 0.99)) -> pd.DataFrame:
    """A data-quality summary per venue: one row each, ready to eyeball or assert on.

    From ``ticks``: ``ticks``, ``symbols``, ``first`` and ``last`` trade time,
    and latency percentiles in ms (``received_at - timestamp``: network plus
    the venue's own delay plus any clock offset, so compare venues, not
    absolute values). Pass ``store.rejects()`` to add ``rejected`` and one
    ``rejected_<reason>`` column per reason seen, and ``store.gaps()`` to add
    ``id_gaps``, ``missing_trades``, ``reconnects``, ``gaps_open`` (gaps a backfill
    may still fill) and ``completeness`` (see :func:`completeness`); left out, those
    columns are absent rather than a misleading zero.
    """
    if _on_dask(ticks):
        from rtkit.lake import dask as lake_dask

        return lake_dask.quality(ticks, rejects, gaps, percentiles)
    require_columns(ticks, ("timestamp", "received_at", "venue", "symbol"))
    if not all(0 < p < 1 for p in percentiles):
        raise ValueError(f"percentiles are fractions between 0 and 1 (e.g. 0.99), "
                         f"not {list(percentiles)}")
    latency_ms = (ticks["received_at"] - ticks["timestamp"]).dt.total_seconds() * 1e3
    grouped = ticks.assign(latency_ms=latency_ms).groupby("venue", observed=True, sort=True)
    summary = grouped.agg(ticks=("symbol", "size"), symbols=("symbol", "nunique"),
                          first=("timestamp", "min"), last=("timestamp", "max"))
    latency = grouped["latency_ms"]
    for p in percentiles:
        summary[f"latency_p{100 * p:g}_ms"] = latency.quantile(p)
    summary["latency_max_ms"] = latency.max()
    summary.index = summary.index.astype(str)
    parts = [summary]
    if rejects is not None:
        parts.append(_rejects_by_venue(rejects))
    if gaps is not None:
        parts.append(_gaps_by_venue(gaps))
    out = pd.concat(parts, axis=1).rename_axis("venue").sort_index()
    counts = [c for c in out.columns if c in ("ticks", "symbols", "rejected", "id_gaps",
                                              "missing_trades", "reconnects", "gaps_open")
              or c.startswith("rejected_")]
    out[counts] = out[counts].fillna(0).astype(np.int64)
    if gaps is not None and "symbol" in gaps:
        out["completeness"] = venue_completeness(stored_per_symbol(ticks), gaps, out.index)
    return out


def stored_per_symbol(ticks) -> pd.Series:
    """Trades per (venue, symbol) of a tick frame (pandas or Dask: a small pandas Series)."""
    keys = [ticks["venue"].astype(str), ticks["symbol"].astype(str)]
    sizes = ticks.groupby(keys, observed=True).size() if not _on_dask(ticks) else \
        ticks.assign(venue=keys[0], symbol=keys[1]).groupby(["venue", "symbol"]).size().compute()
    return sizes.rename("stored")


def venue_completeness(stored: pd.Series, gaps: pd.DataFrame, venues: pd.Index) -> pd.Series:
    """``quality``'s completeness column: per venue, stored / (stored + still missing), NaN
    where a venue's ids cannot say what it missed."""
    per_symbol = _completeness(stored, gaps).groupby(level="venue")
    sums = per_symbol[["stored", "still_missing"]].sum()
    unknown = per_symbol["completeness"].apply(lambda c: c.isna().any())
    ratio = sums["stored"] / (sums["stored"] + sums["still_missing"])
    return ratio.where(~unknown).reindex(venues)


def completeness(ticks: pd.DataFrame, gaps: pd.DataFrame) -> pd.DataFrame:
    """Per venue and symbol: trades ``stored``, trades the ids say are ``still_missing``
    (missing in the gaps, less what a backfill filled), and ``completeness``, stored /
    (stored + still missing), from 0 to 1.

    ``completeness`` is NaN for a venue whose ids cannot say what a reconnect missed
    (its ``reconnect`` gaps are ``unfillable``: Bybit, Bitstamp): 1.0 would claim
    more than is known.
    """
    require_columns(ticks, ("venue", "symbol"))
    return _completeness(stored_per_symbol(ticks), gaps)


def _completeness(stored: pd.Series, gaps: pd.DataFrame) -> pd.DataFrame:
    require_columns(gaps, ("venue", "symbol", "kind", "missing"),
                    "the gaps table (TickStore.gaps())")
    ids = gaps[gaps["kind"].isin(("ids", "ids_across_reconnect"))]
    filled = (pd.to_numeric(ids["filled"]).fillna(0) if "filled" in ids
              else pd.Series(0, index=ids.index))
    still = (pd.to_numeric(ids["missing"]).fillna(0) - filled).clip(lower=0)
    missing = still.groupby([ids["venue"].astype(str), ids["symbol"].astype(str)]).sum()
    out = pd.concat([stored, missing.rename("still_missing")], axis=1).fillna(0)
    out = out.astype(np.int64).rename_axis(["venue", "symbol"]).sort_index()
    out["completeness"] = out["stored"] / (out["stored"] + out["still_missing"])
    if "status" in gaps:
        blind = gaps.loc[(gaps["kind"] == "reconnect") & (gaps["status"] == "unfillable"),
                         "venue"].astype(str).unique()
        out.loc[out.index.get_level_values("venue").isin(blind), "completeness"] = np.nan
    return out


def _rejects_by_venue(rejects: pd.DataFrame) -> pd.DataFrame:
    """``rejected`` and ``rejected_<reason>`` counts per venue from the ``rejects`` table."""
    require_columns(rejects, ("venue", "reason"), "the rejects table (TickStore.rejects())")
    by_reason = pd.crosstab(rejects["venue"].astype(str), rejects["reason"].astype(str))
    by_reason.columns = [f"rejected_{reason}" for reason in by_reason.columns]
    return by_reason.assign(rejected=by_reason.sum(axis=1))[
        ["rejected", *by_reason.columns]].rename_axis("venue")


def _gaps_by_venue(gaps: pd.DataFrame) -> pd.DataFrame:
    """Trade-id gaps, trades missing in them, and reconnect marks per venue."""
    require_columns(gaps, ("venue", "kind", "missing"), "the gaps table (TickStore.gaps())")
    is_reconnect = gaps["kind"] == "reconnect"
    work = pd.DataFrame({
        "venue": gaps["venue"].astype(str),
        "id_gaps": (~is_reconnect).astype(np.int64),
        "missing_trades": pd.to_numeric(gaps["missing"]).where(~is_reconnect, 0).fillna(0),
        "reconnects": is_reconnect.astype(np.int64),
        "gaps_open": ((gaps["status"] == "pending") if "status" in gaps
                      else pd.Series(False, index=gaps.index)).astype(np.int64),
    })
    return work.groupby("venue").sum()

