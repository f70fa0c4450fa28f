"""The Parquet sink: records into a hive-partitioned lake of Parquet files.

Layout, one file per flush and partition::

    <root>/<kind>/venue=<v>/symbol=<s>/date=<YYYY-MM-DD>/part-<writer id>-<seq>.parquet

``date`` is the record's UTC day (its ``timestamp``). Files are zstd, carry
the kind and ``SCHEMA_VERSION`` in their metadata, and hold the kind's
columns without the partition ones (``venue``, ``symbol``, ``date`` come from
the path, as DuckDB's ``hive_partitioning`` and pyarrow's ``partitioning="hive"``
read them). Each file is written under ``_<name>.parquet.tmp`` and renamed when
complete: no ``*.parquet`` glob matches that name (DuckDB's glob also matches
hidden names, so a prefix alone would not hide it), and directory discovery
(pyarrow, Dask, Spark) skips names that start with ``_``. A reader, or a
``kill -9`` at any moment, never meets half a file; at worst a ``.tmp`` is left.

Parquet has no unique key: a record SQLite's key found to be a duplicate that
the pipeline's own dedup did not catch is written here again (see the README's
accounting). The lake keeps records only; rejects, gaps and runs stay in SQLite.
"""

from __future__ import annotations

import contextlib
import os
import time
import uuid
from collections import defaultdict
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from rtkit.kinds import Kind, get_kind
from rtkit.kinds.trades import TRADES, UTC_NS
from rtkit.sinks import RunEnd, RunInfo, SinkRefused

#: in every file's metadata (``rtkit.schema_version``): bumped when a kind's columns change
SCHEMA_VERSION = "1"
#: a temporary file older than this is what a killed writer left: removed on open
STALE_TEMPORARY_S = 3600
#: the columns that are directories, not file columns
PARTITIONS = ("venue", "symbol")
_NS_PER_DAY = 86_400 * 10**9


def arrow_schema(kind: Kind) -> pa.Schema:
    """The file schema of ``kind`` (its columns but the partition ones)."""
    fields = []
    for c in kind.columns:
        if c.name in PARTITIONS:
            continue
        if c.frame == UTC_NS:
            typ = pa.timestamp("ns", tz="UTC")
        else:
            typ = {"TEXT": pa.string(), "INTEGER": pa.int64(), "REAL": pa.float64()}[c.sql]
        fields.append(pa.field(c.name, typ, nullable=not c.not_null))
    meta = {"rtkit.kind": kind.name, "rtkit.schema_version": SCHEMA_VERSION}
    return pa.schema(fields, metadata=meta)


def _segment(name: str, value: str) -> str:
    return f"{name}={quote(str(value), safe='-_.')}"


class _Layout:
    """Where a kind's partition columns are in its rows, and its file schema."""

    def __init__(self, kind: Kind) -> None:
        names = kind.names
        self.kind, self.schema = kind, arrow_schema(kind)
        self.venue, self.symbol = names.index("venue"), names.index("symbol")
        # the day a row belongs to: its venue time (``at`` for a kind of events)
        self.time = names.index("timestamp" if "timestamp" in names else "at")
        self.kept = [i for i, n in enumerate(names) if n not in PARTITIONS]


class ParquetSink:
    """Records into the lake at ``root``: the trades (``ticks`` rows) and the rows of
    any other kind with ``venue``, ``symbol`` and ``timestamp`` columns."""

    def __init__(self, root: str | Path, kind: Kind = TRADES) -> None:
        self.root = Path(root)
        self.where = str(self.root)
        self.kind = kind
        self.schema = arrow_schema(kind)
        #: names this writer's files apart from any other writing the same partitions
        self.writer_id = uuid.uuid4().hex[:12]
        self._seq = 0
        self._open = False
        self._layouts: dict[str, _Layout] = {}

    def probe(self) -> None:
        """Make the lake's folder now, so that a path that cannot be written fails at once."""
        try:
            (self.root / self.kind.name).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise ValueError(f"cannot write the lake at '{self.root}': {exc}. Pass lake= a "
                             "folder you can write to (e.g. 'data/lake').") from exc

    @property
    def is_open(self) -> bool:
        return self._open

    def open(self, run: RunInfo | None = None) -> None:
        try:
            (self.root / self.kind.name).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise SinkRefused(f"{type(exc).__name__}: {exc}") from exc
        self._remove_stale_temporaries()
        self._open = True

    def _remove_stale_temporaries(self) -> None:
        """Delete the ``_part-….parquet.tmp`` files a killed writer left (an hour old:
        a live writer's exists for milliseconds)."""
        limit = time.time() - STALE_TEMPORARY_S
        for path in self.root.glob("*/*/*/*/_part-*.parquet.tmp"):
            with contextlib.suppress(OSError):
                if path.stat().st_mtime < limit:
                    path.unlink()

    def check(self) -> str | None:
        return None

    def write(self, batch, refused: list | None = None) -> int:
        """Write the batch's trades (its ``ticks`` rows, or a list of them) and its
        ``records`` of other kinds, one file per (kind, venue, symbol, day); returns how
        many trades were written (all of them: the lake has no key to refuse one)."""
        rows = batch.ticks if hasattr(batch, "ticks") else batch
        self._write_kind(self.kind, rows)
        for name, kind_rows in (getattr(batch, "records", None) or {}).items():
            self._write_kind(get_kind(name), kind_rows)
        return len(rows)

    def _write_kind(self, kind: Kind, rows: list) -> None:
        layout = self._layouts.get(kind.name)
        if layout is None:
            layout = self._layouts[kind.name] = _Layout(kind)
        groups: dict[tuple, list] = defaultdict(list)
        v, s, t = layout.venue, layout.symbol, layout.time
        for row in rows:
            groups[(row[v], row[s], row[t] // _NS_PER_DAY)].append(row)
        for (venue, symbol, day), group in groups.items():
            self._write_file(layout, venue, symbol, int(day), group)

    def _write_file(self, layout: _Layout, venue: str, symbol: str, day: int,
                    rows: list) -> None:
        date = str(np.datetime64(day, "D"))
        folder = (self.root / layout.kind.name / _segment("venue", venue)
                  / _segment("symbol", symbol) / _segment("date", date))
        folder.mkdir(parents=True, exist_ok=True)
        columns = list(zip(*rows, strict=True))
        table = pa.table([pa.array(columns[i], type=f.type)
                          for i, f in zip(layout.kept, layout.schema, strict=True)],
                         schema=layout.schema)
        self._seq += 1
        final = folder / f"part-{self.writer_id}-{self._seq:06d}.parquet"
        temporary = final.with_name(f"_{final.name}.tmp")
        try:
            pq.write_table(table, temporary, compression="zstd")
            os.replace(temporary, final)
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise

    def close(self, end: RunEnd | None = None) -> None:
        self._open = False
