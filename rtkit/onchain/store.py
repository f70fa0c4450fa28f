"""ChainStore: block heads and Uniswap swaps beside the ticks, in the same SQLite file.

Two more tables, created by sqlite-utils like the others (STRICT):

* ``blocks``: every header the node announced — ``hash`` (key), ``number``,
  ``parent_hash``, ``timestamp`` (ns), ``base_fee``, ``gas_used``,
  ``received_at``. After a reorg several rows share a ``number``: the node
  announces the new chain's head, and the old header stays as announced.
* ``swaps``: one row per swap log on the chain as the node last told it,
  keyed by (``tx_hash``, ``log_index``). Amounts that can exceed 64 bits
  (``amount0``, ``amount1``: the pool's signed balance deltas in raw token
  units; ``sqrt_price_x96``, ``liquidity``) are exact decimal TEXT;
  ``price``, ``volume`` and ``side`` are the trade it implies. ``timestamp``
  is the block's time (NULL until its header arrives, filled in then).

Reorgs: a log the node takes back (``removed: true``) **deletes** its row —
matched on its block hash too, so taking back the old chain's copy never
deletes the new chain's copy of the same log. A log re-included in another
block replaces the row it had. Operations are applied in the order they were
received, in one transaction per flush.
"""

from __future__ import annotations

from itertools import groupby
from typing import NamedTuple

import pandas as pd

from rtkit.gaps import insert_gaps
from rtkit.kinds.ledger import GAPS, REJECTS, insert_sql
from rtkit.kinds.onchain import BLOCKS, SWAPS
from rtkit.onchain.records import HEAD, REMOVED, SWAP
from rtkit.store import TickStore, filters

DEFAULT_CHAIN_DB = "data/onchain.sqlite"

SWAP_COLUMNS = SWAPS.names
BLOCK_COLUMNS = BLOCKS.names

_INSERT_BLOCK = BLOCKS.insert_sql()
_INSERT_REJECT = insert_sql(REJECTS)
_INSERT_GAP = insert_sql(GAPS)
_FILL_SWAP_TIMES = "UPDATE swaps SET timestamp = ? WHERE block_hash = ? AND timestamp IS NULL"
_INSERT_SWAP = SWAPS.insert_sql()
#: the same log from an older block goes before its copy from a newer one comes in
_DELETE_OLDER_COPY = ("DELETE FROM swaps WHERE tx_hash = ? AND log_index = ? "
                      "AND block_hash != ?")
_DELETE_REMOVED = "DELETE FROM swaps WHERE tx_hash = ? AND log_index = ? AND block_hash = ?"


class ChainWrite(NamedTuple):
    """What one flush did: rows new in ``swaps`` and ``blocks``, and rows deleted from
    ``swaps`` (taken back by a reorg, or replaced by the log's copy in a newer block)."""

    swaps_inserted: int
    blocks_inserted: int
    swaps_deleted: int


class ChainStore:
    """``blocks`` and ``swaps`` beside the ticks: a :class:`TickStore` of the same file
    (keeping the chain's kinds too) that writes the chain's ordered operations. What
    it does not define (``rejects()``, ``runs()``, ``conn``, ``close``…) is the
    TickStore's."""

    def __init__(self, path=DEFAULT_CHAIN_DB, **options) -> None:
        self.store = TickStore(path, kinds=(BLOCKS, SWAPS), **options)

    def __getattr__(self, name: str):
        store = self.__dict__.get("store")
        if store is None or name.startswith("__"):
            raise AttributeError(f"'ChainStore' object has no attribute {name!r}")
        return getattr(store, name)

    def __enter__(self) -> ChainStore:
        return self

    def __exit__(self, *exc) -> None:
        self.store.close()

    def __repr__(self) -> str:
        return f"Chain{self.store!r}"

    # --- writing --------------------------------------------------------------------------
    def write(self, operations=(), rejects=(), gaps=(), records=None, *,
              refused=None) -> ChainWrite:
        """Apply one flush in one transaction, in order.

        ``operations`` are ``(HEAD, block row)``, ``(SWAP, swap row)`` and
        ``(REMOVED, (tx_hash, log_index, block_hash))`` pairs, rows in
        BLOCK_COLUMNS / SWAP_COLUMNS order; ``rejects`` and ``gaps`` rows are
        those of :meth:`TickStore.write`, which says what ``refused`` does to them.
        """
        conn = self.conn
        inserted = {HEAD: 0, SWAP: 0}
        deleted = 0
        with conn:
            for kind, run in groupby(operations, key=lambda op: op[0]):
                rows = [row for _, row in run]
                before = conn.total_changes
                if kind == REMOVED:
                    conn.executemany(_DELETE_REMOVED, rows)
                    deleted += conn.total_changes - before
                    continue
                if kind == SWAP:  # row by row: the same log may come twice in one run
                    for row in rows:
                        conn.execute(_DELETE_OLDER_COPY, (row[0], row[1], row[3]))
                        deleted += conn.total_changes - before
                        before = conn.total_changes
                        conn.execute(_INSERT_SWAP, row)
                        inserted[SWAP] += conn.total_changes - before
                        before = conn.total_changes
                    continue
                conn.executemany(_INSERT_BLOCK, rows)
                inserted[HEAD] += conn.total_changes - before
                conn.executemany(_FILL_SWAP_TIMES, [(r[3], r[0]) for r in rows])
            self.store.insert_rows(_INSERT_REJECT, rejects, "rejects", refused)
            insert_gaps(self.store.insert_rows, _INSERT_GAP, gaps, refused)
        return ChainWrite(inserted[SWAP], inserted[HEAD], deleted)

    # --- reading --------------------------------------------------------------------------
    def count_swaps(self) -> int:
        return self.conn.execute("SELECT count(*) FROM swaps").fetchone()[0]

    def swaps(self, venue: str | None = None, symbol: str | None = None, start=None,
              end=None) -> pd.DataFrame:
        """Stored swaps in chain order (block, log index), times as UTC.

        ``start`` (inclusive) and ``end`` (exclusive) are on the block time and
        take what :meth:`TickStore.ticks` takes. ``venue``, ``symbol`` and
        ``side`` are categoricals, so tick helpers (``rtkit.analysis``) apply.
        """
        where, args = filters(venue, symbol, start, end)
        sql = f"SELECT {', '.join(SWAP_COLUMNS)} FROM swaps" + where
        rows = self.conn.execute(sql + " ORDER BY block_number, log_index", args).fetchall()
        df = pd.DataFrame(rows, columns=list(SWAP_COLUMNS))
        for column in ("timestamp", "received_at"):
            df[column] = pd.to_datetime(df[column], unit="ns", utc=True)
        for column in ("venue", "symbol", "side"):
            df[column] = df[column].astype("category")
        df["tick"] = df["tick"].astype("Int64")  # V3 only: missing for V2 pairs
        return df

    def blocks(self) -> pd.DataFrame:
        """Every announced header, by number then arrival; times as UTC."""
        rows = self.conn.execute(f"SELECT {', '.join(BLOCK_COLUMNS)} FROM blocks "
                                 "ORDER BY number, received_at").fetchall()
        df = pd.DataFrame(rows, columns=list(BLOCK_COLUMNS))
        for column in ("timestamp", "received_at"):
            df[column] = pd.to_datetime(df[column], unit="ns", utc=True)
        return df
