"""The check every table helper starts with: is this the DataFrame it expects?

Shared by :mod:`rtkit.analysis` and :mod:`rtkit.spread`, so neither has to import
the other for it.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

TICKS = "a tick DataFrame (from Collector.df or TickStore.ticks())"


def require_columns(df: pd.DataFrame,
                    columns: Sequence[str] = ("timestamp", "symbol", "price", "volume"),
                    what: str = TICKS) -> None:
    """Fail early, naming what was expected, when ``df`` is not the right kind of table."""
    if not isinstance(df, pd.DataFrame):
        raise TypeError(f"expected {what}, not {type(df).__name__}")
    missing = [c for c in columns if c not in df.columns]
    if missing:
        raise ValueError(f"expected {what}; missing column(s): {', '.join(missing)}")
