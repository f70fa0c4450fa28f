"""A local Ethereum node for offline on-chain collection: heads, swap logs, reorgs.

The :class:`Simulator`'s server (thread, loop, connection handling, faults)
with the :class:`EthereumDialect` and a :class:`Chain`: once a client has
subscribed to ``logs``, it produces a block every ``block_interval_s`` with
``swaps_per_block`` swaps of the subscribed pools (made from the market's
trades, until ``count``; empty blocks after that), announces it, and every
``reorg_every``-th block replaces the previous one instead::

    pools = [Pool("0x88e6…", token0="USDC", token1="ETH", decimals0=6, decimals1=18,
                  version=3, base="ETH")]
    with EthereumNode(pools, count=200, seed=1, reorg_every=5) as node:
        c = rtkit.onchain.collect(pools, url=node.url)

Blocks are produced per connection, as the trade simulator produces trades;
a test connects one client at a time. ``sent["trades"]`` counts every
notification (heads and logs); the faults count them the same way.
"""

from __future__ import annotations

import asyncio
import time

from websockets.asyncio.server import ServerConnection

from rtkit.onchain.pools import Pool
from rtkit.sim.chain import Chain
from rtkit.sim.dialects.base import Session
from rtkit.sim.dialects.ethereum import EthereumDialect
from rtkit.sim.faults import Faults, Link
from rtkit.sim.market import CommonFactor
from rtkit.sim.server import Simulator


class EthereumNode(Simulator):
    """An Ethereum JSON-RPC node on 127.0.0.1 serving ``eth_subscribe``; a context manager."""

    dialect: EthereumDialect

    def __init__(
        self,
        pools: list[Pool],
        *,
        port: int = 0,
        swaps_per_block: int = 5,
        block_interval_s: float = 0.1,
        count: int | None = None,
        seed: int | None = None,
        reorg_every: int | None = None,
        common: CommonFactor | None = None,
        faults: Faults | None = None,
    ) -> None:
        if not (isinstance(swaps_per_block, int) and swaps_per_block >= 0):
            raise ValueError(f"swaps_per_block must be an int >= 0, not {swaps_per_block!r}")
        if not block_interval_s > 0:
            raise ValueError(f"block_interval_s must be > 0, not {block_interval_s!r}")
        super().__init__(EthereumDialect(pools), port=port,
                         rate=max(swaps_per_block, 1) / block_interval_s, count=count,
                         seed=seed, overlap=0, faults=faults, common=common)
        self.swaps_per_block = swaps_per_block
        self.block_interval_s = block_interval_s
        self.chain = Chain(pools, seed=seed, reorg_every=reorg_every)

    @property
    def settled(self) -> bool:
        """All ``count`` swaps are made and no reorg can touch them any more (the head
        is past the last block with a swap; a reorg only replaces the head)."""
        last, head = self.chain.last_swap_number(), self.chain.head
        return (self.count is not None and len(self.market.trades) >= self.count
                and (last is None or (head is not None and head.number > last)))

    async def _stream(self, ws: ServerConnection, session: Session, subscribed: asyncio.Event,
                      number: int = 1, opened: float = 0.0):
        await self._until_closed(ws, subscribed)
        if not subscribed.is_set():
            return
        link = Link()
        next_block = time.monotonic() + self.block_interval_s
        while not self._stopping.is_set():
            wait_s = next_block - time.monotonic()
            if wait_s > 0:
                await asyncio.sleep(min(wait_s, 0.05))
                continue
            next_block += self.block_interval_s
            n = self.swaps_per_block
            if self.count is not None:
                n = max(0, min(n, self.count - len(self.market.trades)))
            symbols = [s for s in session.symbols if s in self.chain.pools]
            trades = self.market.trades_for(symbols, n) if n and symbols else []
            events = self.chain.next_block(trades, int(time.time()))
            if not await self._send_trades(ws, self.dialect.encode_events(events, session), link):
                return
