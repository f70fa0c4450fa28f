"""``rtkit.lake.read``: a slice of the lake as a pandas DataFrame, with pyarrow only."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from rtkit.kinds import Kind
from rtkit.lake.files import lake_kind, partitions, retrying
from rtkit.lake.frames import frame, read_partition
from rtkit.store import to_ns

_UTC_NS = pa.timestamp("ns", tz="UTC")


def read(root: str | Path, kind: str | Kind = "trades", venue=None, symbol=None, start=None,
         end=None) -> pd.DataFrame:
    """The records of ``kind`` in the lake at ``root``, each once, in time order.

    Trades have the dtypes of ``c.df``. ``venue``/``symbol`` (one name or a list)
    and ``start`` (inclusive) / ``end`` (exclusive, on ``timestamp``; a str,
    datetime, Timestamp or int ns) pick the partition folders read and filter the
    rows; no other folder is opened. A file that compaction removes while it is
    read makes it list again (a few times at most).
    """
    found = lake_kind(kind)
    root = Path(root).expanduser()
    if not root.is_dir():
        raise FileNotFoundError(f"no lake at '{root}'; pass the folder a collector's lake= "
                                "or `rtkit export DB --lake DIR` wrote")
    lo, hi = to_ns(start), to_ns(end)

    def attempt() -> pd.DataFrame:
        parts = partitions(root, found, venue, symbol, start, end)
        return frame(found, [(p, between(read_partition(p, found), lo, hi)) for p in parts])

    return retrying(attempt)


def between(table: pa.Table, lo: int | None, hi: int | None) -> pa.Table:
    """The rows with ``lo <= timestamp < hi`` (either bound may be None)."""
    ts = table.column("timestamp")
    keep = None
    if lo is not None:
        keep = pc.greater_equal(ts, pa.scalar(lo, _UTC_NS))
    if hi is not None:
        below = pc.less(ts, pa.scalar(hi, _UTC_NS))
        keep = below if keep is None else pc.and_(keep, below)
    return table if keep is None else table.filter(keep)
