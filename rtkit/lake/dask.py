"""``rtkit.lake.to_dask``, and ``rtkit.analysis`` on the Dask DataFrame it returns.

One Dask partition per ``venue=/symbol=/date=`` folder. A record's copies all lie
in its folder (:mod:`rtkit.lake.frames`), so each partition keeps each record once
on its own, with no shuffle. The client only lists folders; a task lists its
folder's files when it runs (again, should compaction swap them meanwhile) and
reads them by path: nothing assumes a worker shares memory or a process with the
client, only that it sees the lake's folder (a shared disk, as on any cluster),
and has rtkit installed.

Trade ids are strings here (a partition cannot know whether every other one's
ids are integers); ``rtkit.lake.read`` gives int64 ids where ``c.df`` does.

The analysis functions (``ohlcv``, ``vwap``, ``imbalance``, ``quality``,
``spread``) take such a frame and return pandas results with the numbers the
pandas path gives: rows are shuffled so that each group (``by`` and, when
``freq`` divides a day, the day) is whole in one partition, put in the lake's
order, and the pandas function runs on each. A group must fit a worker's
memory: one symbol-day for bars, a venue's latencies for ``quality``.
``spread`` first keeps each leg's last trade per ``freq`` bucket, which is all
an as-of grid needs.
"""

from __future__ import annotations

from pathlib import Path

import dask
import dask.dataframe as dd
import numpy as np
import pandas as pd

from rtkit.kinds import Kind, get_kind
from rtkit.lake.dask_spread import lake_order
from rtkit.lake.files import Partition, lake_kind, partitions, retrying
from rtkit.lake.frames import frame, read_partition
from rtkit.lake.read import between
from rtkit.store import to_ns

_NS_PER_DAY = 86_400 * 10**9


def to_dask(root: str | Path, kind: str | Kind = "trades", venue=None, symbol=None,
            start=None, end=None) -> dd.DataFrame:
    """The records of ``kind`` as a Dask DataFrame: the filters of ``rtkit.lake.read``,
    one partition per folder, each record once."""
    found = lake_kind(kind)
    root = Path(root).expanduser().resolve()
    if not root.is_dir():
        raise FileNotFoundError(f"no lake at '{root}'; pass the folder a collector's lake= "
                                "or `rtkit export DB --lake DIR` wrote")
    parts = partitions(root, found, venue, symbol, start, end)
    venues = sorted({p.venue for p in parts})
    symbols = sorted({p.symbol for p in parts})
    meta = frame(found, [], venues=venues, symbols=symbols, text_ids=True)
    if not parts:
        return dd.from_pandas(meta, npartitions=1)
    return dd.from_map(read_folder, parts, kind=found.name, venues=venues, symbols=symbols,
                       lo=to_ns(start), hi=to_ns(end), meta=meta, label=f"lake-{found.name}",
                       enforce_metadata=False)


def read_folder(part: Partition, *, kind: str, venues: list[str], symbols: list[str],
                lo: int | None, hi: int | None) -> pd.DataFrame:
    """One Dask partition: a folder's records, each once (runs on a worker)."""
    found = get_kind(kind)
    return retrying(lambda: frame(found, [(part, between(read_partition(part, found), lo, hi))],
                                  venues=venues, symbols=symbols, text_ids=True))


def _apply(name: str, part: pd.DataFrame, args: tuple, kwargs: dict):
    """The pandas analysis function ``name`` on one shuffled partition (on a worker)."""
    import rtkit.analysis

    part = lake_order(part.drop(columns=["_day"], errors="ignore"))
    if part.empty:
        return None
    return getattr(rtkit.analysis, name)(part, *args, **kwargs)


def _divides_day(freq) -> bool:
    try:
        step = pd.Timedelta(freq).value
    except (ValueError, TypeError):
        return False
    return step > 0 and _NS_PER_DAY % step == 0


def _per_group(name: str, df: dd.DataFrame, keys: list[str], freq, args: tuple,
               kwargs: dict) -> list:
    """``name`` run on each partition of ``df`` shuffled so that ``keys`` (and the day,
    where ``freq`` divides one) are whole in one; the non-empty results."""
    on = list(keys)
    if freq is not None and _divides_day(freq):
        df = df.assign(_day=df["timestamp"].dt.floor("D"))
        on.append("_day")
    shuffled = df.shuffle(on=on) if df.npartitions > 1 else df
    tasks = [dask.delayed(_apply)(name, part, args, kwargs) for part in shuffled.to_delayed()]
    return [r for r in dask.compute(*tasks) if r is not None]


def grouped(name: str, df: dd.DataFrame, freq, by, **kwargs):
    """``ohlcv``, ``vwap`` or ``imbalance`` of a Dask DataFrame (a pandas result)."""
    import rtkit.analysis

    keys = [by] if isinstance(by, str) else list(by)
    results = _per_group(name, df, keys, freq, (), {"freq": freq, "by": by, **kwargs})
    if not results:
        return getattr(rtkit.analysis, name)(df._meta, freq=freq, by=by, **kwargs)
    return pd.concat(results).sort_index()


#: the count columns of ``quality`` (filled with 0 where a venue has none)
_COUNTS = ("ticks", "symbols", "rejected", "id_gaps", "missing_trades", "reconnects",
           "gaps_open")


def quality(ticks: dd.DataFrame, rejects=None, gaps=None, percentiles=(0.5, 0.9, 0.99)):
    """``rtkit.analysis.quality`` of a Dask DataFrame: each venue's rows in one partition
    (only the columns it reads)."""
    import rtkit.analysis

    work = ticks[["timestamp", "received_at", "venue", "symbol"]]
    parts = _per_group("quality", work, ["venue"], None, (),
                       {"percentiles": tuple(percentiles)})
    if not parts:
        return rtkit.analysis.quality(work._meta, rejects, gaps, percentiles)
    out = pd.concat(parts)
    extra = []
    if rejects is not None:
        extra.append(rtkit.analysis.quality(work._meta, rejects, None, percentiles)
                     .filter(regex="^rejected"))
    if gaps is not None:
        extra.append(rtkit.analysis.quality(work._meta, None, gaps, percentiles)
                     [["id_gaps", "missing_trades", "reconnects", "gaps_open"]])
    out = pd.concat([out, *extra], axis=1).rename_axis("venue").sort_index()
    counts = [c for c in out.columns if c in _COUNTS or c.startswith("rejected_")]
    out[counts] = out[counts].fillna(0).astype(np.int64)
    if gaps is not None and "symbol" in gaps:
        out["completeness"] = rtkit.analysis.venue_completeness(
            rtkit.analysis.stored_per_symbol(ticks), gaps, out.index)
    return out
