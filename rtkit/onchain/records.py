"""What the Ethereum adapter's items are: ``(kind, record)`` pairs of these records.

Apart from the adapter so that the stage and the store that take them do not
import the adapter (which names the stage its pipelines get).
"""

from __future__ import annotations

from typing import NamedTuple

from rtkit.onchain.pools import Pool

HEAD, SWAP, REMOVED = "head", "swap", "removed"


class Head(NamedTuple):
    """A ``newHeads`` notification: one block header."""

    number: int
    hash: str
    parent_hash: str
    timestamp: int  # ns since the epoch (the header has whole seconds)
    base_fee: int | None  # wei; None before London
    gas_used: int


class Swap(NamedTuple):
    """A decoded ``Swap`` log of one of the user's pools, with the trade it implies."""

    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
    timestamp: int | None  # ns of its block when the header (or the log) said; else None
    pool: Pool
    sender: str
    recipient: str
    amount0: int  # the pool's balance delta in raw token0 units (positive: into the pool)
    amount1: int
    sqrt_price_x96: int | None  # V3 only
    liquidity: int | None  # V3 only
    tick: int | None  # V3 only
    price: float  # quote per base
    volume: float  # base
    side: int  # the taker's: BUY or SELL


class Removed(NamedTuple):
    """A log the node took back (``removed: true``): the copy in block ``block_hash``."""

    tx_hash: str
    log_index: int
    block_number: int
    block_hash: str
