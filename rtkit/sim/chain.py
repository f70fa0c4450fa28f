"""A deterministic toy chain: blocks of Uniswap swap logs made from the market's trades.

Pure, like :mod:`rtkit.sim.market`: the node server asks for the next block
with the trades to put in it, and gets the events to announce in the order a
node sends them. Every ``reorg_every``-th block is a one-block reorg instead:
the previous block's logs are taken back (``removed``), a new header comes
at the same height, and the new block re-includes all but the last of the
taken-back swaps (same transaction hashes and log indices, a new block
hash) before this block's own. So a test sees both a log that vanished and a
log that moved to another block. Hashes come from the chain's own seeded
random numbers, so a run repeats.
"""

from __future__ import annotations

import math
import random
from typing import NamedTuple

from rtkit.onchain import abi
from rtkit.onchain.pools import Pool
from rtkit.sim.market import SimTrade

HEAD, LOG = "head", "log"
_FIRST_BLOCK = 21_000_000
_GAS_PER_SWAP = 120_000


def market_symbol(pool: Pool) -> str:
    """The market symbol of a pool's trades: ``BASE-QUOTE@address``, one walk per pool
    whose price starts (and, with a CommonFactor, moves) with its base asset."""
    return f"{pool.symbol}@{pool.address}"


class SimBlock(NamedTuple):
    number: int
    hash: str
    parent_hash: str
    timestamp: int  # unix seconds
    base_fee: int  # wei
    gas_used: int


class SimLog(NamedTuple):
    pool: Pool
    trade: SimTrade  # what the swap was made from
    block_number: int
    block_hash: str
    tx_hash: str
    log_index: int
    topics: list[str]
    data: str
    removed: bool = False


class Chain:
    """Blocks made from trades, with a one-block reorg every ``reorg_every`` blocks."""

    def __init__(self, pools: list[Pool], *, seed: int | None = None,
                 reorg_every: int | None = None) -> None:
        if reorg_every is not None and reorg_every < 2:
            raise ValueError(f"reorg_every must be >= 2 blocks (or None), not {reorg_every!r}")
        self._rng = random.Random(seed)
        self.pools = {market_symbol(p): p for p in pools}
        self.reorg_every = reorg_every
        self.blocks: list[SimBlock] = []  # the canonical chain, oldest first
        self.announced: list[SimBlock] = []  # every header sent, reorged ones too
        self.logs: dict[str, list[SimLog]] = {}  # block hash → its logs
        self.dropped: list[SimLog] = []  # logs a reorg took back and did not re-include
        self.reorgs = 0
        self._produced = 0
        self._base_fee = 20 * 10**9

    # --- reading ------------------------------------------------------------------------
    @property
    def head(self) -> SimBlock | None:
        return self.blocks[-1] if self.blocks else None

    def canonical_logs(self) -> list[SimLog]:
        """Every swap log on the canonical chain, in chain order."""
        return [log for block in self.blocks for log in self.logs[block.hash]]

    def last_swap_number(self) -> int | None:
        """Height of the newest canonical block with a swap in it."""
        return next((b.number for b in reversed(self.blocks) if self.logs[b.hash]), None)

    # --- producing ----------------------------------------------------------------------
    def next_block(self, trades: list[SimTrade], now_s: int) -> list[tuple[str, object]]:
        """``(HEAD, SimBlock)`` and ``(LOG, SimLog)`` events for the next block, in order."""
        self._produced += 1
        reorg = (self.reorg_every and self._produced % self.reorg_every == 0
                 and len(self.blocks) >= 2)
        if not reorg:
            return self._block(self.head, [], trades, now_s)
        self.reorgs += 1
        replaced = self.blocks.pop()
        taken_back = self.logs[replaced.hash]
        events: list[tuple[str, object]] = [(LOG, log._replace(removed=True))
                                            for log in taken_back]
        self.dropped += taken_back[-1:]
        return events + self._block(self.head, taken_back[:-1], trades, now_s)

    def _block(self, parent: SimBlock | None, again: list[SimLog], trades: list[SimTrade],
               now_s: int) -> list[tuple[str, object]]:
        number = parent.number + 1 if parent else _FIRST_BLOCK
        self._base_fee = max(10**8, int(self._base_fee * (1 + self._rng.uniform(-0.1, 0.1))))
        block = SimBlock(number, self._hash(), parent.hash if parent else self._hash(), now_s,
                         self._base_fee, 21_000 + _GAS_PER_SWAP * (len(again) + len(trades)))
        logs = [log._replace(block_number=number, block_hash=block.hash) for log in again]
        for trade in trades:
            topics, data = abi.encode_swap(self._swap(trade))
            logs.append(SimLog(self.pools[trade.symbol], trade, number, block.hash, self._hash(),
                               len(logs), topics, data))
        self.blocks.append(block)
        self.announced.append(block)
        self.logs[block.hash] = logs
        return [(HEAD, block)] + [(LOG, log) for log in logs]

    def _swap(self, trade: SimTrade) -> abi.V2Swap | abi.V3Swap:
        pool = self.pools[trade.symbol]
        amount0, amount1 = pool.deltas_for(trade.price, trade.volume, trade.side)
        sender, recipient = self._address(), self._address()
        if pool.version == 2:
            return abi.V2Swap(sender, recipient, max(amount0, 0), max(amount1, 0),
                              max(-amount0, 0), max(-amount1, 0))
        sqrt_price = pool.sqrt_price_x96_for(trade.price)
        tick = math.floor(2 * (math.log(sqrt_price) - 96 * math.log(2)) / math.log(1.0001))
        liquidity = self._rng.randrange(10**15, 10**19)
        return abi.V3Swap(sender, recipient, amount0, amount1, sqrt_price, liquidity, tick)

    def _hash(self) -> str:
        return f"0x{self._rng.getrandbits(256):064x}"

    def _address(self) -> str:
        return f"0x{self._rng.getrandbits(160):040x}"
