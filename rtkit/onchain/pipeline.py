"""ChainStage: the trade Pipeline's accounting, for heads, swaps and reorgs.

Frames are counted, rejected and turned into controls by
:class:`rtkit.pipeline.Pipeline` itself; the stage (which the
:class:`EthereumAdapter` gives every pipeline of its frames, see
``Adapter.stage``) only says what an accepted item becomes. A swap is the
on-chain trade: it enters the ring as a tick (venue = the pool's venue name,
symbol = its ``BASE-QUOTE``, trade_id = ``"<tx hash>:<log index>"``,
timestamp = its block's time, or the receive time while the header has not
arrived), so ``df``, the panel and ``rtkit.analysis`` work on swaps as on
trades. Heads and removals only go to SQLite, as ordered operations
(see :mod:`rtkit.onchain.store`).

The ring cannot forget a row, so reorgs are applied when it is read:
:meth:`visible` drops swaps a reorg took back and keeps only the newest copy
of a log that a newer block re-included. Both are remembered for the newest
``_REMEMBERED_SWAPS`` swaps and removals, each added and forgotten in O(1).

Counters, beside the Pipeline's (``ticks`` are swaps here)::

    ticks  == stored + duplicates + pending + dropped_overflow
    blocks == blocks_stored + block_duplicates + blocks_pending
    rows in ``swaps`` == stored - deleted
"""

from __future__ import annotations

import threading
from collections import OrderedDict, deque

import pandas as pd

from rtkit.buffer import RingBuffer
from rtkit.onchain.records import HEAD, REMOVED, SWAP, Head, Removed, Swap
from rtkit.onchain.store import BLOCK_COLUMNS, ChainStore, ChainWrite
from rtkit.pipeline import Batch, Pipeline
from rtkit.validate import SIDE_TEXT
from rtkit.venues.base import Adapter

#: headers kept in memory for ``ChainCollector.blocks``
RECENT_BLOCKS = 10_000
#: (tx hash, log index) → block hash of the swaps most recently put in the ring, and
#: the ring trade ids most recently taken back by a reorg: at most this many of each
_REMEMBERED_SWAPS = 100_000


def trade_id(tx_hash: str, log_index: int) -> str:
    """A swap's id in the ring: unique on a chain, like a venue's trade id."""
    return f"{tx_hash}:{log_index}"


def ChainPipeline(adapter: Adapter, ring: RingBuffer, **options) -> Pipeline:  # noqa: N802
    """A :class:`Pipeline` of the chain's frames: the adapter's stage is a
    :class:`ChainStage` (the name stays, from when this was a subclass)."""
    return Pipeline(adapter, ring, **options)


class ChainStage:
    """What the chain's accepted items become: swaps in the ring, and heads, swaps and
    removals as ordered operations for :class:`ChainStore`. The pipeline counts the
    frames and the swaps as its ticks; the stage counts blocks, reorgs and deletions."""

    #: writes the operations (in order, with the reorg rules)
    store_type = ChainStore

    def __init__(self) -> None:
        self.pipeline: Pipeline | None = None
        self._lock = threading.Lock()  # hidden and the recent blocks vs. their readers
        # written by the processing thread
        self.blocks = 0
        self.reorgs = 0  # heads at or below the previous head's height
        self.removed = 0  # logs the node took back
        self.replaced = 0  # logs that came again from another block
        #: ring trade ids a reorg took back, oldest first (changed under ``_lock``)
        self.hidden: OrderedDict[str, None] = OrderedDict()
        self._latest: OrderedDict[tuple[str, int], str] = OrderedDict()
        self._last_number: int | None = None
        self._recent_blocks: deque[tuple] = deque(maxlen=RECENT_BLOCKS)
        # written by the storing thread
        self.blocks_stored = 0
        self.block_duplicates = 0
        self.deleted = 0

    def bind(self, pipeline: Pipeline) -> None:
        """Become ``pipeline``'s stage."""
        if pipeline.anomaly is not None:
            raise ValueError("the anomaly filter is for trade feeds; a swap's price comes from "
                             "the pool itself, so leave anomaly= out for on-chain collection")
        self.pipeline = pipeline
        #: the adapter's items are ``(kind, record)``, all taken; the adapter itself
        #: rejects the logs of any address that is not one of the pools
        pipeline.symbols = {SWAP, HEAD, REMOVED}

    def _bound(self) -> Pipeline:
        """The pipeline ``bind`` gave: a stage is used only by the pipeline it is bound to."""
        p = self.pipeline
        assert p is not None, "ChainStage used before Pipeline bound it"
        return p

    # --- processing thread -----------------------------------------------------------
    def accept(self, items: list, received_at_ns: int) -> None:
        """Route accepted ``(kind, record)`` items; the base counts the frames."""
        p = self._bound()
        operations: list[tuple] = []
        ticks_by_venue: dict[str, list[tuple]] = {}
        for kind, record in items:
            if kind == SWAP:
                operation = self._swap(p, record, received_at_ns, ticks_by_venue)
            elif kind == REMOVED:
                operation = self._removed(record)
            else:
                operation = self._head(record, received_at_ns)
            if operation is not None:
                operations.append(operation)
        for venue, ticks in ticks_by_venue.items():
            p.ring.append(venue, received_at_ns, ticks)
        p.queue(operations)  # the pipeline's pending list holds operations here

    def _swap(self, p: Pipeline, swap: Swap, received_at_ns: int,
              ticks_by_venue: dict) -> tuple | None:
        p.ticks += 1
        key = (swap.tx_hash, swap.log_index)
        previous = self._latest.get(key)
        if previous == swap.block_hash:
            p.duplicates_seen += 1
            return None
        tid = trade_id(*key)
        if previous is not None or tid in self.hidden:  # its older copy is in the ring
            self.replaced += 1
            with self._lock:
                self.hidden.pop(tid, None)
        elif len(self._latest) >= _REMEMBERED_SWAPS:
            self._latest.popitem(last=False)
        self._latest[key] = swap.block_hash
        pool = swap.pool
        ticks_by_venue.setdefault(pool.venue, []).append(
            (pool.symbol, tid, swap.timestamp or received_at_ns, swap.price, swap.volume,
             swap.side))
        if p.pending >= p.pending_limit:
            p.dropped_overflow += 1
            return None
        p.queued += 1
        return SWAP, (
            swap.tx_hash, swap.log_index, swap.block_number, swap.block_hash, swap.timestamp,
            received_at_ns, pool.venue, pool.symbol, pool.address, pool.version, swap.sender,
            swap.recipient, str(swap.amount0), str(swap.amount1), _text(swap.sqrt_price_x96),
            _text(swap.liquidity), swap.tick, swap.price, swap.volume, SIDE_TEXT[swap.side])

    def _removed(self, removed: Removed) -> tuple:
        self.removed += 1
        key = (removed.tx_hash, removed.log_index)
        if self._latest.get(key) == removed.block_hash:
            del self._latest[key]
            hidden = self.hidden
            with self._lock:  # O(1), and bounded: the oldest go first
                hidden[trade_id(*key)] = None
                if len(hidden) > _REMEMBERED_SWAPS:
                    hidden.popitem(last=False)
        return REMOVED, (removed.tx_hash, removed.log_index, removed.block_hash)

    def _head(self, head: Head, received_at_ns: int) -> tuple:
        self.blocks += 1
        if self._last_number is not None and head.number <= self._last_number:
            self.reorgs += 1
        self._last_number = head.number
        row = (head.hash, head.number, head.parent_hash, head.timestamp, head.base_fee,
               head.gas_used, received_at_ns)
        with self._lock:
            self._recent_blocks.append(row)
        return HEAD, row

    # --- storing thread ----------------------------------------------------------------
    def take(self) -> Batch:
        """Pending operations (in order), rejects and gaps, for ``ChainStore.write``."""
        operations, rejects, gaps = self._bound().take_pending()
        return Batch(operations, rejects, gaps)

    def done(self, batch: Batch, written: ChainWrite) -> None:
        p = self._bound()
        swaps = sum(1 for kind, _ in batch.ticks if kind == SWAP)
        heads = sum(1 for kind, _ in batch.ticks if kind == HEAD)
        p.stored += written.swaps_inserted
        p.duplicates += swaps - written.swaps_inserted
        self.blocks_stored += written.blocks_inserted
        self.block_duplicates += heads - written.blocks_inserted
        self.deleted += written.swaps_deleted
        p.rejects_stored += len(batch.rejects)
        p.release_taken()

    # --- anyone ------------------------------------------------------------------------
    def visible(self, ticks: pd.DataFrame) -> pd.DataFrame:
        """Ring rows as the chain stands: the newest copy of each swap, none taken back."""
        with self._lock:
            hidden = list(self.hidden)
        if not hidden and not self.replaced:
            return ticks
        ticks = ticks.drop_duplicates("trade_id", keep="last")
        return ticks[~ticks["trade_id"].isin(hidden)].reset_index(drop=True)

    def recent_blocks(self) -> pd.DataFrame:
        """The newest headers received (up to RECENT_BLOCKS), oldest first."""
        with self._lock:
            rows = list(self._recent_blocks)
        df = pd.DataFrame(rows, columns=list(BLOCK_COLUMNS))
        for column in ("timestamp", "received_at"):
            df[column] = pd.to_datetime(df[column], unit="ns", utc=True)
        return df

    def stats(self) -> dict:
        """The chain's counters, beside the pipeline's (read under its ``_counting``)."""
        return dict(
            blocks=self.blocks,
            blocks_stored=self.blocks_stored,
            block_duplicates=self.block_duplicates,
            blocks_pending=self.blocks - self.blocks_stored - self.block_duplicates,
            reorgs=self.reorgs,
            removed=self.removed,
            replaced=self.replaced,
            deleted=self.deleted,
        )


def _text(value: int | None) -> str | None:
    return None if value is None else str(value)
