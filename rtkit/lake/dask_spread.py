"""The cross-venue spread of a Dask DataFrame, and the lake's row order.

Apart from :mod:`rtkit.lake.dask` so that ``rtkit.spread`` reaches it without
reaching ``rtkit.analysis`` (which imports ``rtkit.spread``).
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:
    import dask.dataframe as dd


def lake_order(df: pd.DataFrame) -> pd.DataFrame:
    """``df`` in the order ``rtkit.lake.read`` gives: time, arrival, then id."""
    by = [c for c in ("timestamp", "received_at") if c in df.columns]
    if "trade_id" in df.columns:
        ids = df["trade_id"].astype(str)
        df = df.assign(_id_length=ids.str.len().to_numpy(np.int64), _id=ids)
        by += ["_id_length", "_id"]
    return df.sort_values(by, kind="stable").drop(columns=["_id_length", "_id"],
                                                   errors="ignore")


def _last_per_bucket(part: pd.DataFrame, legs: list[tuple[str, str]], freq) -> pd.DataFrame:
    """Each leg's last trade per ``freq`` bucket (the grid time at or after it): all an
    as-of grid reads of a leg."""
    mask = np.zeros(len(part), bool)
    venue, symbol = part["venue"].astype(str), part["symbol"].astype(str)
    for v, s in legs:
        mask |= ((venue == v) & (symbol == s)).to_numpy()
    rows = lake_order(part[mask])
    bucket = rows["timestamp"].dt.ceil(freq)
    return rows[~pd.DataFrame({"v": rows["venue"].astype(str), "s": rows["symbol"].astype(str),
                               "b": bucket}).duplicated(keep="last").to_numpy()]


def spread(ticks: dd.DataFrame, leg_a, leg_b, freq: str = "1s", *, quote_map=None):
    """``rtkit.analysis.spread`` of a Dask DataFrame: each partition keeps its legs' last
    trade per bucket, and the pandas function runs on what the client gathers."""
    from rtkit.spread import spread as pandas_spread  # the pandas function it reduces to

    legs = [tuple(leg_a), tuple(leg_b)]
    columns = [c for c in ("timestamp", "received_at", "venue", "symbol", "price", "trade_id")
               if c in ticks.columns]
    reduced = ticks[columns].map_partitions(_last_per_bucket, legs, freq,
                                            meta=ticks[columns]._meta).compute()
    last = _last_per_bucket(reduced, legs, freq) if len(reduced) else reduced
    return pandas_spread(lake_order(last).reset_index(drop=True), leg_a, leg_b, freq,
                                 quote_map=quote_map)

