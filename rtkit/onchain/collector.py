"""ChainCollector: Uniswap swaps and block heads from an Ethereum node, live; and their replay.

It is a :class:`rtkit.Collector` — same receive loop (connect, subscribe,
chunked frame reading, pings, watchdog, backoff, recording), same writer
thread, same ``start``/``stop``/``with``, ``status``, ``stats`` and
``panel()`` — given the :class:`EthereumAdapter`, whose stage
(:class:`ChainStage`) turns its items into swaps in the ring and operations for
its store (:class:`ChainStore`)::

    pools = [Pool("0x88e6…", token0="USDC", token1="ETH", decimals0=6, decimals1=18,
                  version=3, base="ETH")]
    c = rtkit.onchain.collect(pools, url="ws://127.0.0.1:8546")
    c.df        # swaps as ticks (venue uniswap_v3, symbol ETH-USDC), reorgs applied
    c.blocks    # the newest block headers
    c.store().swaps(), c.store().blocks()

What it does not do: after a reconnect, blocks the node produced meanwhile
are not fetched (``eth_getLogs`` backfill); the reconnect is recorded as a
``gaps`` row of kind ``reconnect``.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from rtkit.collector import Collector
from rtkit.kinds.onchain import BLOCKS, SWAPS
from rtkit.onchain.adapter import EthereumAdapter
from rtkit.onchain.pipeline import ChainPipeline
from rtkit.onchain.pools import Pool
from rtkit.onchain.store import DEFAULT_CHAIN_DB, ChainStore
from rtkit.pipeline import Pipeline
from rtkit.replay import Replay


class ChainCollector(Collector):
    """Live swaps of ``pools`` and the chain's block heads, in memory and in SQLite.

    ``url`` is the node's WebSocket (``ws://`` or ``wss://``, default a local
    node on port 8546). The other keyword arguments are the Collector's
    (``db``, ``name``, ``flush_interval_s``, ``record_raw``, ``capacity``…).
    """


    def __init__(self, pools: list[Pool], *, db: str | Path = DEFAULT_CHAIN_DB, **options) -> None:
        adapter = EthereumAdapter(pools)
        symbols = [p.symbol for p in adapter.pools.values()]
        kinds = options.pop("kinds", adapter.kinds)
        if set([kinds] if isinstance(kinds, str) else kinds) != set(adapter.kinds):
            raise ValueError(f"the chain collector collects {' and '.join(adapter.kinds)} "
                             f"together; leave kinds= out (not {kinds!r})")
        super().__init__(adapter, symbols, db=db, kinds=adapter.kinds, **options)

    @property
    def df(self) -> pd.DataFrame:
        """Every swap in the ring as a tick, oldest first, with reorgs applied."""
        return self.pipeline.visible(self.ring.snapshot())

    def tail(self, n: int = 10) -> pd.DataFrame:
        """The newest ``n`` swaps, with reorgs applied."""
        p = self.pipeline
        return p.visible(self.ring.tail(n + len(p.hidden) + p.replaced)).tail(n)

    @property
    def blocks(self) -> pd.DataFrame:
        """The newest block headers received, oldest first (reorged ones included)."""
        return self.pipeline.recent_blocks()


def collect(pools: list[Pool], **options) -> ChainCollector:
    """Create a :class:`ChainCollector` and start it; returns at once with the collector."""
    return ChainCollector(pools, **options).start()


class ChainReplay(Replay):
    """A recording of an on-chain collector, through the chain pipeline into a ChainStore."""

    store_type = ChainStore
    kinds = (SWAPS, BLOCKS)

    def __init__(self, pools: list[Pool], db: str | Path = DEFAULT_CHAIN_DB, *,
                 capacity: int = 1_000_000) -> None:
        self.adapter = EthereumAdapter(pools)
        super().__init__(db, capacity=capacity)

    def pipeline(self, venue: str) -> Pipeline:
        if venue != self.adapter.name:
            raise ValueError(f"the recording holds {venue!r} frames; replay trade recordings "
                             "with rtkit.replay(path)")
        p = self.pipelines.get(venue)
        if p is None:
            p = self.pipelines[venue] = ChainPipeline(self.adapter, self.ring)
        return p


def replay(path: str | Path, pools: list[Pool], db: str | Path = DEFAULT_CHAIN_DB, *,
           capacity: int = 1_000_000) -> dict:
    """Push a recording of an on-chain collector through the pipeline into ``db``.

    ``pools`` are the ones the recording was collected with (their decimals
    and names are not in the frames). Returns the summary, with the chain
    counters (``blocks``, ``removed``, ``deleted``…) beside the usual ones.
    """
    r = ChainReplay(pools, db, capacity=capacity)
    try:
        return r.run(path)
    finally:
        r.store.close()
