"""The Parquet lake, read: pandas (``read``), DuckDB (``connect``), Dask (``to_dask``),
and SQLite into it (``export``).

The lake is what :mod:`rtkit.sinks.parquet` writes::

    <root>/<kind>/venue=<v>/symbol=<s>/date=<YYYY-MM-DD>/<name>.parquet

Files are immutable once renamed in (a writer's temporaries start with ``_`` and are
never read), written without coordination by any number of collectors. Parquet
has no key, so every reader here applies one rule: rows of one partition folder
with the same natural key (``Kind.key``) are one record, and the copy kept is the
one received first (:mod:`rtkit.lake.frames`); a record's copies always share its
folder. A file that vanishes while listed (compaction swapped it for its merged
file) makes a reader list again.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from rtkit.lake.duck import connect, query
from rtkit.lake.export import export, to_store
from rtkit.lake.read import read

if TYPE_CHECKING:
    import dask.dataframe as dd

__all__ = ["connect", "export", "query", "read", "to_dask", "to_store"]


def to_dask(root, kind: str = "trades", venue=None, symbol=None, start=None,
            end=None) -> dd.DataFrame:
    """The records of ``kind`` as a Dask DataFrame, one partition per ``venue=/symbol=/date=``
    folder, each record once (see :func:`rtkit.lake.dask.to_dask`)."""
    from rtkit.lake.dask import to_dask as lake_to_dask  # dask is the cluster extra: on use

    return lake_to_dask(root, kind, venue, symbol, start, end)
