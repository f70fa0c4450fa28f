"""Which files of the lake a read needs: partition folders pruned from the filters.

The layout is the sink's (:mod:`rtkit.sinks.parquet`)::

    <root>/<kind>/venue=<v>/symbol=<s>/date=<YYYY-MM-DD>/<name>.parquet

A venue or symbol filter goes straight to its folder; ``start``/``end`` keep the
``date=`` folders of the UTC days they touch. Only whole files count: names that
start with ``_`` (a writer's ``_….parquet.tmp``) or ``.`` are never read.

Files are immutable once renamed in, but compaction unlinks the files it merged
(after renaming its merged file in): a reader that meets a vanished file lists
again and starts over (:func:`retrying`), at most :data:`READ_ATTEMPTS` times.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TypeVar
from urllib.parse import unquote

import numpy as np

from rtkit.kinds import Kind, get_kind
from rtkit.sinks.parquet import PARTITIONS, partition_segment
from rtkit.store import to_ns

#: lists and reads a partition at most this many times when files vanish under it
#: (compaction swapped them for their merged file); then the error is the caller's
READ_ATTEMPTS = 5
_NS_PER_DAY = 86_400 * 10**9
T = TypeVar("T")


@dataclass(frozen=True)
class Partition:
    """One ``venue=/symbol=/date=`` folder of a kind."""

    venue: str
    symbol: str
    date: str
    path: str


def lake_kind(kind: str | Kind) -> Kind:
    """The kind called ``kind``, refused unless the lake can hold it (it is partitioned
    by venue, symbol and the day of its ``timestamp``)."""
    found = get_kind(kind) if isinstance(kind, str) else kind
    missing = [c for c in (*PARTITIONS, "timestamp") if c not in found.names]
    if missing:
        raise ValueError(f"kind {found.name!r} has no {', '.join(missing)} column, so the lake "
                         "(partitioned by venue, symbol and day) does not hold it")
    return found


def _values(value: str | Iterable[str] | None) -> list[str] | None:
    if value is None:
        return None
    return [value] if isinstance(value, str) else list(value)


def _subfolders(folder: str, name: str, wanted: list[str] | None) -> list[tuple[str, str]]:
    """``(value, path)`` of the ``name=value`` folders in ``folder`` (only ``wanted`` ones)."""
    if wanted is not None:
        paths = [(v, os.path.join(folder, partition_segment(name, v))) for v in wanted]
        return [(v, p) for v, p in paths if os.path.isdir(p)]
    prefix = f"{name}="
    try:
        entries = sorted(os.scandir(folder), key=lambda e: e.name)
    except FileNotFoundError:
        return []
    return [(unquote(e.name[len(prefix):]), e.path) for e in entries
            if e.name.startswith(prefix) and e.is_dir()]


def day_range(start=None, end=None) -> tuple[str | None, str | None]:
    """The first and last ``date=`` value (inclusive) that rows in [start, end) can be in."""
    lo, hi = to_ns(start), to_ns(end)
    first = None if lo is None else str(np.datetime64(lo // _NS_PER_DAY, "D"))
    last = None if hi is None else str(np.datetime64((hi - 1) // _NS_PER_DAY, "D"))
    return first, last


def partitions(root: str | Path, kind: str | Kind = "trades", venue=None, symbol=None,
               start=None, end=None) -> list[Partition]:
    """The partition folders a read with these filters needs, in (venue, symbol, date)
    order; a venue or symbol may be one name or several."""
    found = lake_kind(kind)
    first, last = day_range(start, end)
    out = []
    for v, vpath in _subfolders(os.path.join(root, found.name), "venue", _values(venue)):
        for s, spath in _subfolders(vpath, "symbol", _values(symbol)):
            for d, dpath in _subfolders(spath, "date", None):
                if (first is None or d >= first) and (last is None or d <= last):
                    out.append(Partition(v, s, d, dpath))
    return out


def files_in(folder: str) -> list[str]:
    """The whole Parquet files of one partition folder, by name."""
    try:
        names = sorted(os.listdir(folder))
    except FileNotFoundError:
        return []
    return [os.path.join(folder, n) for n in names
            if n.endswith(".parquet") and not n.startswith(("_", "."))]


def vanished(exc: BaseException) -> bool:
    """Whether ``exc`` says a listed file is gone (compaction removed it), as the OS,
    pyarrow or DuckDB says it."""
    if isinstance(exc, FileNotFoundError):
        return True
    text = str(exc).lower()
    return ("no such file" in text or "no files found" in text or "does not exist" in text) \
        and (isinstance(exc, OSError) or type(exc).__name__ in ("IOException", "ArrowInvalid"))


def retrying(read: Callable[[], T], attempts: int = READ_ATTEMPTS) -> T:
    """``read()`` (which lists, then reads), again from the listing while a file it
    listed vanished before it was read; the last attempt's error is raised."""
    for attempt in range(1, attempts + 1):
        try:
            return read()
        except Exception as exc:
            if attempt == attempts or not vanished(exc):
                raise
    raise AssertionError("unreachable")

