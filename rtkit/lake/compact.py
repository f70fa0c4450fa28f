"""Compaction: each partition's small files merged into one, without duplicates.

Collectors write one small file per flush and partition (:mod:`rtkit.sinks.parquet`);
a day of them is thousands of files, and two collectors on one market write
each record twice. :func:`compact` rewrites a partition's small files as one
file that holds each record once (by the kind's natural key, :func:`unique_rows`)
and swaps it in atomically, while collectors keep writing and readers keep reading:

* only whole, settled files are merged: ``part-*.parquet`` names (never a
  writer's ``_….tmp``) last changed at least ``min_age_s`` ago (a writer on
  another machine whose rename a shared folder shows late);
* the merged file is written under a temporary name and renamed in, and only
  then are its inputs unlinked. A reader sees the inputs, or the merged file
  beside some inputs (the same records twice, which its key dedup drops), or
  the merged file alone; a reader that opens an input just unlinked lists again.
  A ``kill -9`` at any moment leaves one of those states, never half a file,
  and the next run finishes the job;
* files already at :data:`TARGET_FILE_BYTES` or :data:`MERGE_ROWS` are left as they
  are, so running it again does nothing new once it is done (it converges) and a big
  day is not rewritten each time;
* one merge reads at most :data:`MERGE_ROWS` rows, so its memory is bounded: a
  partition with more is merged into several files (readers drop the copies of a key
  across them).

Of the copies of one key the kept one is the first received (smallest
``received_at``, then the smallest other columns): a rule of the rows alone, so
the lake reads the same before and after compaction whatever the file order.
"""

from __future__ import annotations

import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rtkit.kinds import Kind, kinds
from rtkit.lake.files import vanished
from rtkit.sinks.parquet import (
    PARTITIONS,
    STALE_TEMPORARY_S,
    PartWriter,
    arrow_schema,
    write_file,
)

#: files last changed less than this long ago are left alone: a writer's rename that
#: a shared folder shows late, a clock a little apart between machines
MIN_AGE_S = 10.0
#: a file this big is compacted already: not merged again
TARGET_FILE_BYTES = 256 * 1024 * 1024
#: the most rows one merge reads (and a file with this many is not merged again): a
#: merge holds its rows in memory about three times over (read, joined, sorted), some
#: 200 bytes a trade at the peak, so a partition of any size is merged in a few hundred
#: MiB, into files of at most this many rows
MERGE_ROWS = 1_000_000


def dedup_order(kind: Kind) -> list[str]:
    """The columns that decide which copy of a key is kept: the first in this order."""
    rest = [n for n in kind.names if n not in kind.key and n not in PARTITIONS]
    if "received_at" in rest:
        rest.remove("received_at")
        rest.insert(0, "received_at")
    return rest


def unique_rows(table: pa.Table, kind: Kind) -> pa.Table:
    """``table`` (one partition's rows, or rows with their partition columns) with one
    row per natural key: of the copies, the first received (:func:`dedup_order`)."""
    if table.num_rows < 2:
        return table
    key = [k for k in kind.key if k in table.column_names]
    order = [(n, "ascending") for n in (*key, *dedup_order(kind)) if n in table.column_names]
    table = table.sort_by(order)
    first = np.ones(table.num_rows, dtype=bool)
    same = np.ones(table.num_rows - 1, dtype=bool)
    for name in key:
        column = table.column(name)
        equal = pc.equal(column.slice(1), column.slice(0, table.num_rows - 1))
        same &= pc.fill_null(equal, False).to_numpy(zero_copy_only=False)
    first[1:] = ~same
    return table.filter(pa.array(first))


@dataclass
class Merged:
    """One partition compacted: how many files and rows went in and came out."""

    partition: str
    files: int
    rows_in: int
    rows_out: int
    bytes_in: int
    bytes_out: int
    output: str

    @property
    def duplicates(self) -> int:
        return self.rows_in - self.rows_out


@dataclass
class Compaction:
    """What one run of :func:`compact` did."""

    root: str
    merged: list[Merged] = field(default_factory=list)
    partitions_seen: int = 0
    files_left_young: int = 0
    removed_late: int = 0  # inputs another compaction had removed first
    #: files left unmerged, and why: not whole Parquet (a power loss after the rename, a
    #: stray copy), or columns this rtkit does not know (merging would drop them)
    unreadable: list[tuple[str, str]] = field(default_factory=list)
    stale_temporaries_removed: int = 0  # what killed writers or compactions left

    def summary(self) -> dict:
        m = self.merged
        return {"root": self.root, "partitions_seen": self.partitions_seen,
                "partitions_merged": len({x.partition for x in m}),
                "files_in": sum(x.files for x in m),
                "files_out": len(m), "rows_in": sum(x.rows_in for x in m),
                "rows_out": sum(x.rows_out for x in m),
                "duplicates_dropped": sum(x.duplicates for x in m),
                "bytes_in": sum(x.bytes_in for x in m), "bytes_out": sum(x.bytes_out for x in m),
                "files_left_young": self.files_left_young,
                "stale_temporaries_removed": self.stale_temporaries_removed,
                "files_unreadable": len(self.unreadable),
                "unreadable": [{"file": f, "why": why} for f, why in self.unreadable],
                "merged": [asdict(x) for x in m]}


def _partitions(root: Path, kind: Kind) -> list[Path]:
    base = root / kind.name
    if not base.is_dir():
        return []
    return sorted(p for p in base.glob("venue=*/symbol=*/date=*") if p.is_dir())


def _settled_files(folder: Path, now: float, min_age_s: float,
                   report: Compaction) -> list[tuple[Path, int]]:
    """The partition's whole files old enough and small enough to merge, with sizes."""
    out = []
    for entry in sorted(os.scandir(folder), key=lambda e: e.name):
        if entry.name.startswith("_") and entry.name.endswith(".parquet.tmp"):
            _remove_if_stale(entry, now, report)
        if not entry.name.endswith(".parquet") or entry.name.startswith(("_", ".")):
            continue
        try:
            st = entry.stat()
        except FileNotFoundError:  # another compaction took it
            continue
        if now - st.st_mtime < min_age_s:
            report.files_left_young += 1
        elif st.st_size < TARGET_FILE_BYTES:
            out.append((Path(entry.path), st.st_size))
    return out


def _remove_if_stale(entry: os.DirEntry, now: float, report: Compaction) -> None:
    """A writer's temporary file untouched for :data:`STALE_TEMPORARY_S` was left by a
    ``kill -9``: nobody will rename it in."""
    try:
        if now - entry.stat().st_mtime >= STALE_TEMPORARY_S:
            os.unlink(entry.path)
            report.stale_temporaries_removed += 1
    except FileNotFoundError:
        pass


def _read(path: Path, schema: pa.Schema, report: Compaction) -> pa.Table | None:
    """One input as the readers read it (a column an older rtkit did not write is null);
    None, noted in ``report.unreadable``, for a file that cannot be merged without loss."""
    try:
        unknown = [n for n in pq.read_schema(path).names if n not in schema.names]
        if unknown:
            report.unreadable.append((str(path), (
                f"columns this rtkit does not know ({', '.join(unknown)}): left unmerged, "
                "since merging would drop them; compact with the rtkit that wrote it")))
            return None
        return pq.read_table(path, schema=schema)
    except FileNotFoundError:  # another compaction merged and removed it
        return None
    except (pa.ArrowException, OSError) as exc:
        if vanished(exc):
            return None
        report.unreadable.append((str(path), (
            f"not a whole Parquet file ({type(exc).__name__}: {str(exc)[:200]}): left as it "
            "is; move it aside or delete it")))
        return None


def compact_partition(folder: Path, kind: Kind, writer: PartWriter, *, now: float,
                      min_age_s: float = MIN_AGE_S, report: Compaction) -> list[Merged]:
    """Merge the settled small files of one partition folder, at most MERGE_ROWS rows
    at a time; the merges made (none when no two such files fit in one)."""
    merged = []
    for group in _groups(_settled_files(folder, now, min_age_s, report)):
        done = _merge(folder, group, kind, writer, report)
        if done is not None:
            merged.append(done)
    return merged


def _groups(inputs: list[tuple[Path, int]]) -> list[list[tuple[Path, int]]]:
    """``inputs`` (in name order, so in time order per writer) in runs of at most
    MERGE_ROWS rows (from each file's footer); only runs of two files or more. A file
    whose footer cannot be read joins a run: the merge reports it."""
    groups: list[list[tuple[Path, int]]] = [[]]
    total = 0
    for path, size in inputs:
        try:
            rows = pq.read_metadata(path).num_rows
        except FileNotFoundError:  # another compaction merged and removed it
            continue
        except (pa.ArrowException, OSError):
            rows = 0
        if rows >= MERGE_ROWS:
            continue  # compacted already
        if groups[-1] and total + rows > MERGE_ROWS:
            groups.append([])
            total = 0
        groups[-1].append((path, size))
        total += rows
    return [g for g in groups if len(g) >= 2]


def _merge(folder: Path, inputs: list[tuple[Path, int]], kind: Kind, writer: PartWriter,
           report: Compaction) -> Merged | None:
    """One merged file in place of ``inputs``; None when fewer than two could be read."""
    schema = arrow_schema(kind)
    tables, read = [], []
    for path, size in inputs:
        table = _read(path, schema, report)
        if table is not None:
            tables.append(table)
            read.append((path, size))
    if len(read) < 2:
        return None
    rows_in = sum(t.num_rows for t in tables)
    merged = unique_rows(pa.concat_tables(tables), kind)
    del tables
    output = folder / writer.next_name()
    write_file(merged.replace_schema_metadata(schema.metadata), output, kind)
    for path, _ in read:  # only now: until here a reader finds every record in the inputs
        try:
            path.unlink()
        except FileNotFoundError:
            report.removed_late += 1
    return Merged(str(folder), len(read), rows_in, merged.num_rows,
                  sum(size for _, size in read), output.stat().st_size, output.name)


def compact(root: str | Path, *, kind: str | None = None, min_age_s: float = MIN_AGE_S,
            progress=None) -> Compaction:
    """Compact every partition of the lake at ``root`` (of one kind, or of all);
    ``progress(merged)`` is called after each merge. Safe while collectors write
    and readers read; running it again right after does nothing."""
    root = Path(root)
    if not root.is_dir():
        raise FileNotFoundError(f"no lake at '{root}': give the folder a collector's lake= "
                                "(or --lake) wrote to")
    chosen = [k for name, k in sorted(kinds().items()) if kind in (None, name)]
    if kind is not None and not chosen:
        raise ValueError(f"unknown kind of record {kind!r}; the kinds are: "
                         f"{', '.join(sorted(kinds()))}")
    report = Compaction(str(root))
    writer = PartWriter(root)
    now = time.time()
    for k in chosen:
        if not set(PARTITIONS) <= set(k.names):
            continue
        for folder in _partitions(root, k):
            report.partitions_seen += 1
            for merged in compact_partition(folder, k, writer, now=now, min_age_s=min_age_s,
                                            report=report):
                report.merged.append(merged)
                if progress is not None:
                    progress(merged)
    return report
