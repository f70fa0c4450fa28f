"""An Ethereum node's JSON-RPC ``eth_subscribe``, server side.

Wire format: go-ethereum's "Real-time Events" (pub/sub) documentation,
https://geth.ethereum.org/docs/interacting-with-geth/rpc/pubsub

Answers ``eth_subscribe`` for ``newHeads`` and ``logs`` (address and topic0
filters honoured) with a fresh subscription id per request, ``eth_unsubscribe``
with ``true``/``false``, and anything else with the node's JSON-RPC error.
Block events from :class:`rtkit.sim.chain.Chain` become notifications routed
by the session's subscription ids, fields as geth serialises them (hex
quantities, ``removed`` always present).

A node streams blocks, not trades, so this dialect is not in the trade
dialects' registry (no ``DIALECTS``): :class:`rtkit.sim.node.EthereumNode`
serves it.
"""

from __future__ import annotations

import itertools
from typing import Any

import orjson

from rtkit.onchain import abi
from rtkit.onchain.pools import Pool
from rtkit.sim.chain import HEAD, LOG, SimBlock, SimLog, market_symbol
from rtkit.sim.dialects.base import Dialect, Session

_ZERO_HASH = "0x" + "0" * 64
_EMPTY_UNCLES = "0x1dcc4de8dec75d7aab85b567b6ccd41ad312451b948a7413f0a142fd40d49347"


def _reply(request_id, *, result=None, error: tuple[int, str] | None = None) -> str:
    msg: dict = {"jsonrpc": "2.0", "id": request_id}
    if error is None:
        msg["result"] = result
    else:
        msg["error"] = {"code": error[0], "message": error[1]}
    return orjson.dumps(msg).decode()


def _as_list(value) -> list | None:
    """A filter field: one value, a list of them, or None (anything)."""
    if value is None:
        return None
    return value if isinstance(value, list) else [value]


class EthereumDialect(Dialect):
    venue = "ethereum"
    path = "/"

    def __init__(self, pools: list[Pool]) -> None:
        self.pools = {p.address: p for p in pools}
        self._ids = itertools.count(0x5F3A0001)

    # --- requests ---------------------------------------------------------------------
    def on_message(self, text: str, session: Session) -> list[str]:
        try:
            msg = orjson.loads(text)
            method, params, request_id = msg["method"], msg.get("params", []), msg.get("id")
        except (orjson.JSONDecodeError, KeyError, TypeError):
            return [_reply(None, error=(-32700, "parse error"))]
        if method == "eth_subscribe" and isinstance(params, list) and params:
            return [self._subscribe(request_id, params, session)]
        if method == "eth_unsubscribe" and isinstance(params, list) and params:
            found = [k for k, v in session.subscriptions.items() if v == params[0]]
            for channel in found:
                del session.subscriptions[channel]
                if channel == "logs":
                    session.symbols.clear()
            return [_reply(request_id, result=bool(found))]
        return [_reply(request_id, error=(-32601, f"the method {method} does not exist/is "
                                                  "not available"))]

    def _subscribe(self, request_id, params: list, session: Session) -> str:
        channel = params[0]
        if channel not in ("newHeads", "logs"):
            return _reply(request_id, error=(-32601, f'no "{channel}" subscription in eth '
                                                     "namespace"))
        if channel == "logs":
            log_filter = params[1] if len(params) > 1 and isinstance(params[1], dict) else {}
            pools = self._matching(log_filter)
            if pools is None:
                return _reply(request_id, error=(-32602, "invalid argument 1: bad filter"))
            session.subscribe([market_symbol(p) for p in pools])
        subscription = f"0x{next(self._ids):032x}"
        session.subscriptions[channel] = subscription
        return _reply(request_id, result=subscription)

    def _matching(self, log_filter: dict) -> list[Pool] | None:
        """The pools a ``logs`` filter lets through (by address and topic0), or None if
        the filter cannot be read."""
        addresses = _as_list(log_filter.get("address"))
        topics = _as_list(log_filter.get("topics")) or [None]
        try:
            wanted = None if addresses is None else {abi.address(a) for a in addresses}
            topic0 = _as_list(topics[0])
            versions = None if topic0 is None else {abi.SWAP_TOPICS.get(t.lower()) for t in topic0}
        except (abi.AbiError, AttributeError):
            return None
        return [p for p in self.pools.values()
                if (wanted is None or p.address in wanted)
                and (versions is None or p.version in versions)]

    def subscription_error(self, symbol: str) -> str:
        return _reply(2, error=(-32000, f"subscription refused for {symbol}"))

    # --- notifications ------------------------------------------------------------------
    def encode_events(self, events: list[tuple[str, Any]], session: Session) -> list[str]:
        """Notifications for this session of the chain's events, in order."""
        heads = session.subscriptions.get("newHeads")
        logs = session.subscriptions.get("logs")
        frames = []
        for kind, item in events:
            if kind == HEAD and heads:
                frames.append(self._notification(heads, self._head(item)))
            elif kind == LOG and logs and market_symbol(item.pool) in session.symbols:
                frames.append(self._notification(logs, self._log(item)))
        return frames

    @staticmethod
    def _notification(subscription: str, result: dict) -> str:
        return orjson.dumps({"jsonrpc": "2.0", "method": "eth_subscription",
                             "params": {"subscription": subscription, "result": result}}).decode()

    @staticmethod
    def _head(block: SimBlock) -> dict:
        return {
            "baseFeePerGas": hex(block.base_fee), "difficulty": "0x0",
            "extraData": "0x7273696d", "gasLimit": hex(30_000_000),
            "gasUsed": hex(block.gas_used), "hash": block.hash,
            "logsBloom": "0x" + "0" * 512, "miner": "0x" + "0" * 40, "mixHash": _ZERO_HASH,
            "nonce": "0x0000000000000000", "number": hex(block.number),
            "parentHash": block.parent_hash, "receiptsRoot": _ZERO_HASH,
            "sha3Uncles": _EMPTY_UNCLES, "stateRoot": _ZERO_HASH,
            "timestamp": hex(block.timestamp), "transactionsRoot": _ZERO_HASH,
            "withdrawalsRoot": _ZERO_HASH,
        }

    @staticmethod
    def _log(log: SimLog) -> dict:
        return {
            "address": log.pool.address, "topics": log.topics, "data": log.data,
            "blockNumber": hex(log.block_number), "transactionHash": log.tx_hash,
            "transactionIndex": hex(log.log_index), "blockHash": log.block_hash,
            "logIndex": hex(log.log_index), "removed": log.removed,
        }
