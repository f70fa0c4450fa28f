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

Many writers share one lake without coordinating: every file name carries its
writer's id (random per sink, :data:`WRITER_ID_HEX` hex digits), and a writer
only ever creates new names, so no file is written by two and none changes once
renamed in. Two collectors on one market write the same trades twice; readers
drop the copies by the kind's natural key (``Kind.key``), and ``rtkit lake
compact`` (:mod:`rtkit.lake.compact`) merges a partition's small files into one
without them.

Each file is sorted by time and encoded per column for size (:func:`encodings`):
integers and times as deltas, text keys (trade ids) as shared prefixes, prices,
sizes and other text through a dictionary, all under zstd.
"""


from __future__ import annotations

import contextlib
import os
import time
import uuid
from pathlib import Path
from urllib.parse import quote

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
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
#: hex digits of a writer's random id: 48 bits, so two writers of one lake all but never
#: draw the same (about 2 in a billion for a thousand writers)
WRITER_ID_HEX = 12
#: zstd level of every file. On 1M synthetic trades (benchmarks/lake.py's): level 1
#: 10.3 bytes/trade at 6.3 M trades/s, 3 9.7 at 5.9 M/s, 5 9.0 at 5.2 M/s, 7 no smaller
ZSTD_LEVEL = 3
#: rows per row group: a compacted partition-day of one busy symbol stays a few groups,
#: each large enough for the encodings to work over
ROW_GROUP_ROWS = 1 << 20
#: rows turned into Arrow columns per step of a live flush: the receive thread waits
#: at most one step (~1 ms) for the interpreter lock, not the whole flush
ROWS_PER_CONVERSION = 4096
_NS_PER_DAY = 86_400 * 10**9


def arrow_schema(kind: Kind) -> pa.Schema:
    """The file schema of ``kind`` (its columns but the partition ones)."""
    fields = [f for f in full_schema(kind) if f.name not in PARTITIONS]
    meta = {"rtkit.kind": kind.name, "rtkit.schema_version": SCHEMA_VERSION}
    return pa.schema(fields, metadata=meta)


def full_schema(kind: Kind) -> pa.Schema:
    """Every column of ``kind`` as Arrow types, the partition ones included: what
    :func:`append` takes."""
    fields = []
    for c in kind.columns:
        if c.frame == UTC_NS:
            typ = pa.timestamp("ns", tz="UTC")
        else:
            typ = {"TEXT": pa.string(), "INTEGER": pa.int64(), "REAL": pa.float64()}[c.sql]
        fields.append(pa.field(c.name, typ, nullable=not c.not_null))
    return pa.schema(fields)


def encodings(kind: Kind) -> dict:
    """``pq.write_table`` options for ``kind``'s files: integers and times as deltas
    (DELTA_BINARY_PACKED: sorted times and stepping ids cost a few bits), text key
    columns as shared prefixes (DELTA_BYTE_ARRAY: ``4123456789``, ``4123456790``),
    every other column through a dictionary (sides, and the few prices and sizes a
    market repeats; Parquet falls back to plain where a dictionary grows too big).
    Byte-stream-split floats were larger than dictionaries on trades."""
    delta, dictionary = {}, []
    for field in arrow_schema(kind):
        if pa.types.is_integer(field.type) or pa.types.is_timestamp(field.type):
            delta[field.name] = "DELTA_BINARY_PACKED"
        elif pa.types.is_string(field.type) and field.name in kind.key:
            delta[field.name] = "DELTA_BYTE_ARRAY"
        else:
            dictionary.append(field.name)
    return {"compression": "zstd", "compression_level": ZSTD_LEVEL, "use_dictionary": dictionary,
            "column_encoding": delta, "row_group_size": ROW_GROUP_ROWS}


def partition_segment(name: str, value: str) -> str:
    return f"{name}={quote(str(value), safe='-_.')}"


def partition_folder(root: Path, kind: Kind, venue: str, symbol: str, day: int) -> Path:
    """The folder of ``kind``'s records of ``venue``, ``symbol`` and UTC day number ``day``."""
    date = str(np.datetime64(day, "D"))
    return (root / kind.name / partition_segment("venue", venue)
            / partition_segment("symbol", symbol) / partition_segment("date", date))


def time_column(kind: Kind) -> str:
    """The column whose UTC day names a record's folder: its venue time, ``at`` for a
    kind of events (``book_events``)."""
    return "timestamp" if "timestamp" in kind.names else "at"


def new_writer_id() -> str:
    return uuid.uuid4().hex[:WRITER_ID_HEX]


def write_file(table: pa.Table, final: Path, kind: Kind) -> None:
    """Write ``table`` (file columns only) as ``final``, atomically and durably: under a
    ``_…tmp`` name no reader lists, synced to disk, renamed, and the folder synced. Rows
    are put in time order first.

    Without the syncs a power loss after the rename can leave ``final`` empty or cut
    short (the rename reaches the disk before the data): readers would meet a file that
    is not Parquet, and a compaction that removed the files it merged would lose them."""
    ts = table.column(time_column(kind))
    if len(ts) > 1:
        values = ts.cast(pa.int64()).to_numpy()
        if (values[1:] < values[:-1]).any():
            table = table.take(pa.array(np.argsort(values, kind="stable")))
    temporary = final.with_name(f"_{final.name}.tmp")
    try:
        pq.write_table(table, temporary, **encodings(kind))
        sync_file(temporary)
        os.replace(temporary, final)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    sync_folder(final.parent)


def sync_file(path: Path) -> None:
    """Have ``path``'s data on disk (pyarrow wrote and closed it: fsync a fresh handle,
    one that may write: Windows refuses to flush a read-only one)."""
    fd = os.open(path, os.O_RDWR)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def sync_folder(folder: Path) -> None:
    """Make a rename in ``folder`` durable (a no-op where folders cannot be opened)."""
    try:
        fd = os.open(folder, os.O_RDONLY)
    except OSError:
        return
    try:
        with contextlib.suppress(OSError):  # some file systems refuse fsync on a folder
            os.fsync(fd)
    finally:
        os.close(fd)


class PartWriter:
    """One writer of the lake: names its files ``part-<writer id>-<seq>.parquet``
    (never a name another writer uses) and writes each partition's rows of a table."""

    def __init__(self, root: str | Path, writer_id: str | None = None) -> None:
        self.root = Path(root)
        self.writer_id = writer_id or new_writer_id()
        self._seq = 0

    def next_name(self) -> str:
        self._seq += 1
        return f"part-{self.writer_id}-{self._seq:06d}.parquet"

    def append(self, table: pa.Table, kind: Kind = TRADES) -> list[Path]:
        """Write ``table`` (every column of ``kind``, :func:`full_schema`) as one new file
        per (venue, symbol, UTC day) it holds; returns the files written."""
        if table.num_rows == 0:
            return []
        schema = arrow_schema(kind)
        table = table.select(list(full_schema(kind).names)).cast(full_schema(kind))
        venues = pc.dictionary_encode(table.column("venue")).combine_chunks()
        symbols = pc.dictionary_encode(table.column("symbol")).combine_chunks()
        ts = table.column(time_column(kind)).cast(pa.int64()).to_numpy()
        days = ts // _NS_PER_DAY
        v_idx = venues.indices.to_numpy().astype(np.int64)
        s_idx = symbols.indices.to_numpy().astype(np.int64)
        first_day = int(days.min())
        span = int(days.max()) - first_day + 1
        group = (v_idx * len(symbols.dictionary) + s_idx) * span + (days - first_day)
        files = table.select(schema.names).replace_schema_metadata(schema.metadata)
        if (group[1:] != group[:-1]).any():
            order = np.argsort(group, kind="stable")
            group, files = group[order], files.take(pa.array(order))
            v_idx, s_idx, days = v_idx[order], s_idx[order], days[order]
        starts = np.flatnonzero(np.r_[True, group[1:] != group[:-1]])
        ends = np.r_[starts[1:], len(group)]
        written = []
        for start, end in zip(starts.tolist(), ends.tolist(), strict=True):
            folder = partition_folder(self.root, kind, venues.dictionary[v_idx[start]].as_py(),
                                      symbols.dictionary[s_idx[start]].as_py(), int(days[start]))
            folder.mkdir(parents=True, exist_ok=True)
            final = folder / self.next_name()
            write_file(files.slice(start, end - start), final, kind)
            written.append(final)
        return written


def append(root: str | Path, table: pa.Table, kind: Kind = TRADES) -> list[Path]:
    """Batch append: ``table`` (a pyarrow Table with every column of ``kind``, as
    :func:`full_schema`) into the lake at ``root`` as a new writer; the files written."""
    return PartWriter(root).append(table, kind)


def _table_of_rows(kind: Kind, rows: list) -> pa.Table:
    """Rows in ``kind``'s column order as an Arrow table of every column, converted
    :data:`ROWS_PER_CONVERSION` at a time: each conversion holds the interpreter lock
    from start to end, so a whole flush in one would stall the receive thread as long."""
    schema = full_schema(kind)
    batches = []
    for start in range(0, len(rows), ROWS_PER_CONVERSION):
        columns = list(zip(*rows[start:start + ROWS_PER_CONVERSION], strict=True))
        batches.append(pa.record_batch(
            [pa.array(columns[i], type=f.type) for i, f in enumerate(schema)], schema=schema))
    return pa.Table.from_batches(batches, schema=schema)


class ParquetSink:
    """Records into the lake at ``root``: the trades (``ticks`` rows) and the rows of
    any other kind with ``venue``, ``symbol`` and ``timestamp`` columns."""

    def __init__(self, root: str | Path, kind: Kind = TRADES) -> None:
        self.root = Path(root)
        self.where = str(self.root)
        self.kind = kind
        self.schema = arrow_schema(kind)
        self._writer = PartWriter(self.root)
        #: names this writer's files apart from any other writing the same partitions
        self.writer_id = self._writer.writer_id
        self._open = False

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
        if rows:
            self._writer.append(_table_of_rows(self.kind, rows), self.kind)
        for name, kind_rows in (getattr(batch, "records", None) or {}).items():
            if kind_rows:
                kind = get_kind(name)
                self._writer.append(_table_of_rows(kind, kind_rows), kind)
        return len(rows)

    def close(self, end: RunEnd | None = None) -> None:
        self._open = False
