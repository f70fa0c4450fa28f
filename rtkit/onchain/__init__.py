"""On-chain collection: Uniswap V2/V3 swaps and block heads over Ethereum JSON-RPC (WebSocket).

Start here::

    from rtkit.onchain import Pool, collect
    pools = [Pool("0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640", token0="USDC", token1="ETH",
                  decimals0=6, decimals1=18, version=3, base="ETH")]
    c = collect(pools, url="ws://127.0.0.1:8546")   # returns at once
    c.df, c.blocks, c.stats, c.status
    c.stop()

Offline, ``rtkit.sim.EthereumNode(pools)`` is a local node that answers
``eth_subscribe`` with heads, swap logs and the occasional reorg.
"""

from rtkit.onchain.abi import SWAP_V2_TOPIC, SWAP_V3_TOPIC, V2Swap, V3Swap, decode_swap
from rtkit.onchain.adapter import EthereumAdapter
from rtkit.onchain.collector import ChainCollector, ChainReplay, collect, replay
from rtkit.onchain.pipeline import ChainPipeline
from rtkit.onchain.pools import Pool
from rtkit.onchain.store import DEFAULT_CHAIN_DB, ChainStore

__all__ = [
    "DEFAULT_CHAIN_DB",
    "SWAP_V2_TOPIC",
    "SWAP_V3_TOPIC",
    "ChainCollector",
    "ChainPipeline",
    "ChainReplay",
    "ChainStore",
    "EthereumAdapter",
    "Pool",
    "V2Swap",
    "V3Swap",
    "collect",
    "decode_swap",
    "replay",
]
