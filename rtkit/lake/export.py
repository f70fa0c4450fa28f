"""``rtkit.lake.export``: the records of an SQLite file into the lake, with the sink's layout.

Every table of a kind the lake can hold (venue, symbol and timestamp columns:
trades, quotes, books, swaps) is read in key order, a chunk at a time, and
written by :class:`rtkit.sinks.parquet.ParquetSink` itself, so the files are
the ones a collector's ``lake=`` writes (layout, zstd, metadata, temporary then
rename) under a writer id of their own. Exporting again, or into a lake a
collector also wrote, adds files but no record: readers keep each record once
(:mod:`rtkit.lake.frames`), and ``rtkit lake compact`` merges the files.
Rejects, gaps, runs and blocks (no venue or symbol) stay in SQLite.

Back, for slices small enough for pandas: :func:`to_store` (``rtkit import``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd

from rtkit.kinds import get_kind
from rtkit.kinds.trades import UTC_NS
from rtkit.lake.duck import lake_kinds
from rtkit.sinks.parquet import ParquetSink
from rtkit.store import TickStore

#: rows read from SQLite and written per flush of the sink (one file per partition each):
#: bounds the memory an export holds (about 250 B a trade row in Python)
EXPORT_CHUNK_ROWS = 500_000


def export(db: str | Path, root: str | Path, *, progress: bool = False,
           chunk_rows: int = EXPORT_CHUNK_ROWS) -> dict[str, int]:
    """Copy every record ``db`` holds into the lake at ``root``; returns the rows
    written per kind (``skipped_<kind>``: rows that have no ``timestamp`` yet, such as
    swaps whose block time is unknown, which the lake cannot place in a day)."""
    store = TickStore(db, readonly=True)
    root = Path(root).expanduser()
    try:
        tables = {name for (name,) in store.conn.execute(
            "SELECT name FROM sqlite_master WHERE type = 'table'")}
        counts: dict[str, int] = {}
        for kind in lake_kinds():
            if kind.table not in tables:
                continue
            written, skipped = _export_kind(store, kind.name, root, progress, chunk_rows)
            counts[kind.name] = written
            if skipped:
                counts[f"skipped_{kind.name}"] = skipped
        return counts
    finally:
        store.close()


def _export_kind(store: TickStore, name: str, root: Path, progress: bool,
                 chunk_rows: int) -> tuple[int, int]:
    kind = get_kind(name)
    columns = ", ".join(f'"{n}"' for n in kind.names)
    total, placed = store.conn.execute(
        f"SELECT count(*), count(timestamp) FROM {kind.table}").fetchone()
    sink = ParquetSink(root, kind=kind)
    sink.probe()
    sink.open()
    bar = None
    if progress:
        from tqdm import tqdm

        bar = tqdm(total=placed, unit=" rows", unit_scale=True, desc=name, file=sys.stderr,
                   disable=not sys.stderr.isatty())
    # the table's own order (its key's B-tree): a chunk covers few partitions
    cursor = store.conn.execute(
        f"SELECT {columns} FROM {kind.table} WHERE timestamp IS NOT NULL")
    written = 0
    try:
        while rows := cursor.fetchmany(chunk_rows):
            sink.write(rows)
            written += len(rows)
            if bar is not None:
                bar.update(len(rows))
    finally:
        sink.close()
        if bar is not None:
            bar.close()
    return written, total - placed


def to_store(df: pd.DataFrame, db: str | Path | TickStore, kind: str = "trades") -> int:
    """Write a slice read from the lake (``rtkit.lake.read(...)``) into an SQLite file,
    without DuckDB: ``rtkit.lake.read(root, symbol=…).pipe(rtkit.lake.to_store, db)``.
    Rows the file holds already (same key) are skipped; returns how many were new."""
    found = get_kind(kind)
    columns = []
    for c in found.columns:
        values = df[c.name]
        if c.frame == UTC_NS:
            columns.append(values.array.asi8.tolist())
        elif c.sql == "TEXT":
            text = values.astype(object)
            columns.append([None if pd.isna(v) else str(v) for v in text])
        else:
            columns.append([None if pd.isna(v) else v for v in values.astype(object)])
    rows = list(zip(*columns, strict=True))
    store = db if isinstance(db, TickStore) else TickStore(db)
    try:
        if found.name == "trades":
            return int(store.write(rows))
        return store.write(records={found.name: rows}).kinds.get(found.name, 0)
    finally:
        if store is not db:
            store.close()
