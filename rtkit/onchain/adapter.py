"""Ethereum JSON-RPC ``eth_subscribe`` frames → block heads, swaps and reorg removals.

The on-chain twin of a venue adapter (wire facts: Ethereum's JSON-RPC
``eth_subscribe`` with ``newHeads`` and ``logs``, and the Uniswap pools' ``Swap``
events): pure,
no I/O, so the Collector's receive loop drives it exactly as it drives a
trade feed. After each (re)connect it subscribes to ``newHeads`` and to the
``logs`` of the user's pools, filtered to the Uniswap V2 and V3 ``Swap``
topics. Notifications carry no request id; they are routed by the
subscription id each subscribe was answered with.

``parse`` returns a list of ``(kind, record)`` pairs — ``(HEAD, Head)``,
``(SWAP, Swap)`` or ``(REMOVED, Removed)`` — for :class:`ChainPipeline`, or a
:class:`~rtkit.venues.base.Control` for acks and node errors. A log with
``removed: true`` is the node taking back a log of a block that a reorg
replaced. Malformed hex is a ``bad_number`` reject; a log of a pool or
topic that was not asked for is ``unknown_symbol`` / ``unknown_message``.
"""

from __future__ import annotations

from typing import Literal, overload

import orjson

from rtkit.onchain import abi
from rtkit.onchain.pools import Pool
from rtkit.onchain.records import HEAD, REMOVED, SWAP, Head, Removed, Swap
from rtkit.validate import MAX_ID, Reject, epoch_ns, field
from rtkit.venues.base import Adapter, Control, loads

#: JSON-RPC ids of the two subscribe requests, so their answers say which is which
_HEADS_REQUEST, _LOGS_REQUEST = 1, 2
_REQUESTS = {_HEADS_REQUEST: "newHeads", _LOGS_REQUEST: "logs"}
#: subscription ids and block times remembered at most (a hostile node cannot grow memory)
_MAX_SUBSCRIPTIONS = 64
_MAX_BLOCK_TIMES = 4096


def _hex(obj: dict, key: str, read, optional: bool = False):
    """``read(obj[key])`` with a hex form's error turned into a ``bad_number`` reject."""
    value = obj.get(key)
    if value is None:
        if optional:
            return None
        raise Reject("missing_field", key)
    try:
        return read(value)
    except abi.AbiError as exc:
        raise Reject("bad_number", f"{key}: {exc}") from None


@overload
def _count(obj: dict, key: str, optional: Literal[False] = False) -> int: ...
@overload
def _count(obj: dict, key: str, optional: Literal[True]) -> int | None: ...
def _count(obj: dict, key: str, optional: bool = False) -> int | None:
    """A quantity that SQLite keeps as INTEGER (int64)."""
    value = _hex(obj, key, abi.quantity, optional)
    if value is not None and value > MAX_ID:
        raise Reject("out_of_range", f"{key}={value}")
    return value


class EthereumAdapter(Adapter):
    """Heads and Uniswap swaps of ``pools`` from an Ethereum node's WebSocket."""

    name = "ethereum"
    #: a local node's WebSocket (geth's default ``--ws.port``); pass ``url=`` for a provider
    default_url = "ws://127.0.0.1:8546"
    native_example = "a Pool's symbol, e.g. 'ETH-USDC'"
    #: a block every ~12 s on mainnet: five silent blocks is a dead connection
    stale_after_s = 60.0
    #: what ``parse`` returns, as ``(kind, record)`` items (see ``ChainPipeline``)
    kinds = ("swaps", "blocks")

    @staticmethod
    def stage():
        """What this adapter's items become in a pipeline (``rtkit.pipeline.Pipeline``)."""
        from rtkit.onchain.pipeline import (
            ChainStage,  # the pipeline loads when a collector needs it
        )

        return ChainStage()

    def __init__(self, pools: list[Pool]) -> None:
        pools = list(pools)
        if not pools or not all(isinstance(p, Pool) for p in pools):
            raise ValueError("give at least one rtkit.onchain.Pool, e.g. Pool('0x88e6…', "
                             "token0='USDC', token1='ETH', decimals0=6, decimals1=18, version=3)")
        self.pools = {p.address: p for p in pools}
        if len(self.pools) < len(pools):
            raise ValueError("the same pool address is given twice; give each pool once")
        labels: dict[tuple[str, str], Pool] = {}
        for p in pools:
            assert p.venue is not None  # Pool.__post_init__ names it
            other = labels.setdefault((p.venue, p.symbol), p)
            if other is not p:
                raise ValueError(
                    f"pools {other.address} and {p.address} would both be {p.venue!r} "
                    f"{p.symbol!r}; give one of them another venue= name, e.g. "
                    f"'{p.venue}_{p.address[2:8]}'")
        self._subscriptions: dict[str, str] = {}  # subscription id → "newHeads" / "logs"
        self._block_times: dict[str, int] = {}  # block hash → ns, from heads seen

    # --- symbols: the pools' BASE-QUOTE ------------------------------------------------
    def symbol_parts(self, symbol: str) -> tuple[str, str] | None:
        for p in self.pools.values():
            if symbol.upper() == p.symbol:
                assert p.base is not None  # Pool.__post_init__ chooses it
                return p.base, p.quote
        return None

    def normalise_symbol(self, symbol: str) -> str:
        if isinstance(symbol, str) and self.symbol_parts(symbol):
            return symbol.upper()
        known = sorted({p.symbol for p in self.pools.values()})
        raise ValueError(f"no pool has symbol {symbol!r}; the pools are {', '.join(known)} "
                         "(a pool's symbol is its BASE-QUOTE)")

    def native_symbol(self, symbol: str) -> str:
        return self.normalise_symbol(symbol)

    # --- wire ----------------------------------------------------------------------------
    def subscribe_messages(self, symbols: list[str]) -> list[str]:
        wanted = [p for p in self.pools.values() if p.symbol in symbols]
        topics = sorted({abi.SWAP_V2_TOPIC if p.version == 2 else abi.SWAP_V3_TOPIC
                         for p in wanted})
        log_filter = {"address": [p.address for p in wanted], "topics": [topics]}
        return [
            orjson.dumps({"jsonrpc": "2.0", "id": _HEADS_REQUEST, "method": "eth_subscribe",
                          "params": ["newHeads"]}).decode(),
            orjson.dumps({"jsonrpc": "2.0", "id": _LOGS_REQUEST, "method": "eth_subscribe",
                          "params": ["logs", log_filter]}).decode(),
        ]

    def parse(self, frame, received_at_ns: int):
        msg = loads(frame)
        if type(msg) is not dict:
            raise Reject("unknown_message", "not a JSON object")
        if msg.get("method") == "eth_subscription":
            params = field(msg, "params")
            subscription = field(params, "subscription")
            kind = self._subscriptions.get(subscription) if type(subscription) is str else None
            result = field(params, "result")
            if type(result) is not dict:
                raise Reject("unknown_message", "notification without a result object")
            if kind == "newHeads":
                return [(HEAD, self._head(result))]
            if kind == "logs":
                return [self._log(result)]
            raise Reject("unknown_message", f"subscription {subscription!r:.40} was not opened "
                         "on this connection")
        if "error" in msg:
            error = msg["error"]
            if type(error) is dict:
                return Control("error", f"{error.get('code')}: {error.get('message')}")
            return Control("error", str(error))
        if "result" in msg and "id" in msg:
            return self._answer(msg["id"], msg["result"])
        raise Reject("unknown_message", f"keys {sorted(msg)!r:.60}")

    def _answer(self, request_id, result) -> Control:
        """An answer to a request: a subscription id for our subscribes."""
        kind = _REQUESTS.get(request_id) if type(request_id) is int else None
        if kind is None or type(result) is not str:
            return Control("ack", f"id={request_id!r:.40}")
        if len(self._subscriptions) >= _MAX_SUBSCRIPTIONS:
            del self._subscriptions[next(iter(self._subscriptions))]
        self._subscriptions[result] = kind
        return Control("ack", f"{kind} subscription {result:.40}")

    def _head(self, result: dict) -> Head:
        seconds = _count(result, "timestamp")
        head = Head(
            number=_count(result, "number"),
            hash=_hex(result, "hash", abi.hash32),
            parent_hash=_hex(result, "parentHash", abi.hash32),
            timestamp=epoch_ns(seconds, "s"),
            base_fee=_count(result, "baseFeePerGas", optional=True),
            gas_used=_count(result, "gasUsed"),
        )
        if len(self._block_times) >= _MAX_BLOCK_TIMES:
            del self._block_times[next(iter(self._block_times))]
        self._block_times[head.hash] = head.timestamp
        return head

    def _log(self, result: dict) -> tuple:
        address = _hex(result, "address", abi.address)
        pool = self.pools.get(address)
        if pool is None:
            raise Reject("unknown_symbol", f"log of {address}, which is not one of the pools")
        topics = field(result, "topics")
        topic0 = topics[0].lower() if type(topics) is list and topics and \
            type(topics[0]) is str else None
        version = abi.SWAP_TOPICS.get(topic0) if topic0 is not None else None
        if version != pool.version:
            what = f"a V{version} Swap" if version else f"topic0 {topic0!r:.20}"
            raise Reject("unknown_message", f"{what} from {address}, a V{pool.version} pool")
        removed = result.get("removed", False)
        if type(removed) is not bool:
            raise Reject("bad_number", f"removed={removed!r:.20}")
        key = (_hex(result, "transactionHash", abi.hash32), _count(result, "logIndex"),
               _count(result, "blockNumber"), _hex(result, "blockHash", abi.hash32))
        if removed:
            return REMOVED, Removed(*key)
        try:
            swap = abi.decode_swap(topics, field(result, "data"))
        except abi.AbiError as exc:
            raise Reject("bad_number", f"Swap data: {exc}") from None
        amount0, amount1 = swap.deltas()
        if isinstance(swap, abi.V3Swap):
            recipient, sqrt_price_x96, liquidity, tick = (
                swap.recipient, swap.sqrt_price_x96, swap.liquidity, swap.tick)
        else:
            recipient, sqrt_price_x96, liquidity, tick = swap.to, None, None, None
        price, volume, side = pool.trade(amount0, amount1, sqrt_price_x96)
        seconds = _count(result, "blockTimestamp", optional=True)
        timestamp = epoch_ns(seconds, "s") if seconds is not None else \
            self._block_times.get(key[3])
        return SWAP, Swap(
            *key, timestamp, pool, swap.sender, recipient, amount0, amount1,
            sqrt_price_x96, liquidity, tick, price, volume, side)
