"""Partition files → one pandas DataFrame of a kind: its dtypes, each record once, in order.

Every reader of the lake (``read``, each Dask partition) goes through here, and
DuckDB's views (:mod:`rtkit.lake.duck`) say the same rule in SQL, so that they
all return the same rows:

* **Each record once.** Rows of one partition folder with the same natural key
  (``Kind.key``) are one record; the copy kept is the one received first (least
  ``received_at``), ties broken by the other columns in column order (nulls
  last). A record's folder is a function of the record (its venue, symbol and
  the UTC day of its ``timestamp``), so all its copies meet in one folder:
  overlapping runs, two collectors on one market, or a compaction's merged file
  seen beside its inputs never give a record twice. Applied per folder, the rule
  lets DuckDB prune folders below it and a Dask partition apply it alone.
* **Order.** Trades come in trade-time order, as ``TickStore.ticks()`` gives
  them: ``timestamp``, ``received_at``, then the id (shorter first, so integer
  ids sort as numbers); other kinds by ``timestamp``, ``received_at``, then key.
* **Dtypes.** Trades have ``c.df``'s (:mod:`rtkit.frame`): ``trade_id`` int64
  when every id is an integer, else strings; other kinds their description's.
"""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

from rtkit.frame import COLUMNS, SIDE_CATEGORIES, tick_frame
from rtkit.kinds import Kind
from rtkit.kinds.trades import TRADES, UTC_NS
from rtkit.lake.files import Partition, files_in, vanished
from rtkit.sinks.parquet import PARTITIONS, arrow_schema

#: an id ``str(int(id)) == id`` holds for (at most 19 digits; the cast checks int64's range)
_CANONICAL_INT = r"^(0|[1-9][0-9]{0,18})$"


def read_partition(part: Partition, kind: Kind) -> pa.Table:
    """Every whole file of one partition folder, as one table with the file schema
    (a file that vanishes while read raises FileNotFoundError: list again)."""
    schema = arrow_schema(kind)
    tables = [_read_file(path, schema) for path in files_in(part.path)]
    return pa.concat_tables(tables) if tables else schema.empty_table()


def _read_file(path: str, schema: pa.Schema) -> pa.Table:
    try:
        return pq.read_table(path, schema=schema)
    except pa.ArrowInvalid as exc:
        if vanished(exc) or not os.path.exists(path):
            raise  # compaction removed it: list again
        raise ValueError(f"the lake file {path} is not a whole Parquet file ({exc}); move it "
                         "aside (or delete it) to read the rest of the lake") from exc


def order_columns(kind: Kind) -> list[str]:
    """The columns a kind's rows are ordered by (after dedup)."""
    if kind is TRADES:
        return ["timestamp", "received_at", "trade_id"]
    rest = [c for c in kind.key if c not in ("timestamp", "received_at", *PARTITIONS)]
    return ["timestamp", "received_at", *PARTITIONS, *rest]


def frame(kind: Kind, parts: Sequence[tuple[Partition, pa.Table]], *,
          venues: Sequence[str] | None = None, symbols: Sequence[str] | None = None,
          text_ids: bool = False) -> pd.DataFrame:
    """One DataFrame of ``kind`` from partitions' tables: each record once, in order.

    ``venues``/``symbols``: the categories of those columns (default: those present);
    ``text_ids``: trade ids stay strings even when all are integers (a Dask partition
    cannot know what the others hold)."""
    venues = sorted({p.venue for p, _ in parts}) if venues is None else list(venues)
    symbols = sorted({p.symbol for p, _ in parts}) if symbols is None else list(symbols)
    lengths = [t.num_rows for _, t in parts]
    table = (pa.concat_tables([t for _, t in parts]) if parts
             else arrow_schema(kind).empty_table()).combine_chunks()
    venue_codes = np.repeat(np.array([venues.index(p.venue) for p, _ in parts], np.int64),
                            lengths)
    symbol_codes = np.repeat(np.array([symbols.index(p.symbol) for p, _ in parts], np.int64),
                             lengths)
    if kind is TRADES:
        df = _trades(table, venue_codes, venues, symbol_codes, symbols, text_ids)
    else:
        df = _records(kind, table, venue_codes, venues, symbol_codes, symbols)
    folder = np.repeat(np.arange(len(parts)), lengths)
    return _ordered(kind, _once(kind, df, folder))


def _ns(table: pa.Table, name: str) -> np.ndarray:
    return table.column(name).cast(pa.int64()).to_numpy(zero_copy_only=False)


def _trades(table: pa.Table, venue_codes, venues, symbol_codes, symbols,
            text_ids: bool) -> pd.DataFrame:
    ids = table.column("trade_id")
    trade_id = None if text_ids else _integer_ids(ids)
    if trade_id is None:
        trade_id = np.asarray(ids.to_numpy(zero_copy_only=False), dtype=object)
    side = pc.fill_null(pc.index_in(table.column("side"), pa.array(SIDE_CATEGORIES)), -1)
    return tick_frame(
        timestamp=_ns(table, "timestamp"), received_at=_ns(table, "received_at"),
        venue_codes=venue_codes, venues=venues, symbol_codes=symbol_codes, symbols=symbols,
        price=table.column("price").to_numpy(zero_copy_only=False),
        volume=table.column("volume").to_numpy(zero_copy_only=False),
        side_codes=side.to_numpy(zero_copy_only=False).astype(np.int8), trade_id=trade_id)


def _integer_ids(ids: pa.ChunkedArray) -> np.ndarray | None:
    """The ids as int64 when every one is a canonical non-negative integer that fits
    (as the ring keeps them, and ``TickStore.ticks()`` reads them), else None."""
    if len(ids) and not pc.all(pc.match_substring_regex(ids, _CANONICAL_INT)).as_py():
        return None
    try:
        return pc.cast(ids, pa.int64()).to_numpy(zero_copy_only=False)
    except pa.ArrowInvalid:  # beyond int64
        return None


def _records(kind: Kind, table: pa.Table, venue_codes, venues, symbol_codes,
             symbols) -> pd.DataFrame:
    data: dict[str, object] = {}
    for column in kind.columns:
        if column.name == "venue":
            data["venue"] = pd.Categorical.from_codes(venue_codes, categories=venues)
        elif column.name == "symbol":
            data["symbol"] = pd.Categorical.from_codes(symbol_codes, categories=symbols)
        elif column.frame == UTC_NS:
            data[column.name] = pd.to_datetime(_ns(table, column.name), utc=True)
        else:
            values = table.column(column.name).to_pandas()
            data[column.name] = values.astype(column.frame) if column.frame != "object" \
                else values
    return pd.DataFrame(data)


def _once(kind: Kind, df: pd.DataFrame, folder: np.ndarray) -> pd.DataFrame:
    """Each key once per partition ``folder``: of rows sharing both, the one received
    first (then by the other columns in order, nulls last)."""
    # venue and symbol are the folder's: the rest of the key tells its rows apart
    key = [c for c in kind.key if c not in PARTITIONS]
    work = df[key].assign(_folder=folder)
    repeated = work.duplicated(["_folder", *key], keep=False).to_numpy()
    if not repeated.any():
        return df
    at = np.flatnonzero(repeated)  # positions of the rows that have copies
    codes = [folder[at], *(pd.factorize(work[c].to_numpy()[at])[0] for c in key)]
    received = (df["received_at"].array.asi8[at] if "received_at" in df.columns
                else np.zeros(len(at), np.int64))
    order = np.lexsort((received, *codes[::-1]))
    same = np.ones(len(at) - 1, bool)
    for c in codes:
        ordered = c[order]
        same &= ordered[1:] == ordered[:-1]
    starts = np.r_[True, ~same]
    r = received[order]
    # a key with another copy received at the same time as its first, that differs from
    # it: the other columns decide (rare: each writer stamps its own receive times;
    # identical copies, as exporting twice gives, need nothing)
    positions = np.arange(len(order))
    first = np.maximum.accumulate(np.where(starts, positions, 0))
    with_first = ~starts & (r == r[first])
    differs = np.zeros(len(order), bool)
    if with_first.any():
        a, b = at[order[with_first]], at[order[first[with_first]]]
        for values in _comparable(df):
            x, y = values[a], values[b]
            differs[with_first] |= ~((x == y) | (pd.isna(x) & pd.isna(y)))
    group = np.cumsum(starts)
    tied = starts & np.isin(group, group[differs])
    keep = ~repeated
    keep[at[order[starts & ~tied]]] = True
    if tied.any():
        tied_at = at[order[np.isin(group, group[tied])]]
        rest = [c for c in kind.names if c not in kind.key and c != "received_at"]
        rest = ["received_at", *rest] if "received_at" in df.columns else rest
        rows = df.iloc[tied_at]
        sortable = rows.assign(_at=tied_at, _folder=folder[tied_at], **{
            c: rows[c].astype(str).where(rows[c].notna())
            for c in rest if isinstance(rows[c].dtype, pd.CategoricalDtype)})
        chosen = sortable.sort_values(rest, kind="stable", na_position="last") \
            .drop_duplicates(["_folder", *key])
        keep[chosen["_at"].to_numpy()] = True
    return df[keep]


def _comparable(df: pd.DataFrame) -> list[np.ndarray]:
    """Each column as a numpy array that ``==`` compares fast (codes, int ns)."""
    out = []
    for name in df.columns:
        values = df[name]
        if isinstance(values.dtype, pd.CategoricalDtype):
            out.append(values.cat.codes.to_numpy())
        elif isinstance(values.dtype, pd.DatetimeTZDtype):
            out.append(values.array.asi8)
        elif isinstance(values.dtype, np.dtype) and values.dtype != object:
            out.append(values.to_numpy())
        else:  # strings, nullable integers: None for a missing value (None == None)
            out.append(values.to_numpy(dtype=object, na_value=None))
    return out


def _ordered(kind: Kind, df: pd.DataFrame) -> pd.DataFrame:
    if kind is TRADES:
        ids = df["trade_id"]
        if ids.dtype == np.int64:
            order = np.lexsort((ids.to_numpy(), df["received_at"].array.asi8,
                                df["timestamp"].array.asi8))
        else:
            text = ids.to_numpy(dtype=object, na_value="")
            lengths = np.fromiter((len(t) for t in text), np.int64, len(text))
            order = np.lexsort((text.astype(str), lengths, df["received_at"].array.asi8,
                                df["timestamp"].array.asi8))
        out = df.iloc[order][list(COLUMNS)]
    else:
        by = order_columns(kind)
        work = df.assign(**{c: df[c].astype(str) for c in PARTITIONS})
        out = df.loc[work.sort_values(by, kind="stable").index]
    return out.reset_index(drop=True)
