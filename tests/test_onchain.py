"""On-chain collection: the adapter on hand-written frames, reorg handling in the
pipeline and store, and the ChainCollector against the simulated node over loopback."""

import sqlite3
from contextlib import closing
from fractions import Fraction

import orjson
import pytest

import rtkit.onchain
from rtkit.buffer import RingBuffer
from rtkit.onchain import ChainCollector, ChainPipeline, ChainStore, EthereumAdapter, Pool, abi
from rtkit.onchain.adapter import HEAD, REMOVED, SWAP
from rtkit.sim import EthereumNode, Faults
from rtkit.validate import SELL
from rtkit.venues.base import Control
from tests.conftest import wait_for

POOLS = [
    Pool("0x88e6a0c2ddd26feeb64f039a2c41296fcb3f5640", token0="USDC", token1="ETH",
         decimals0=6, decimals1=18, version=3, base="ETH"),
    Pool("0x0d4a11d5eeaac28ec3f61d100daf4d40471f1852", token0="ETH", token1="USDT",
         decimals0=18, decimals1=6, version=2),
]
V2 = POOLS[1]
HEADS_SUB, LOGS_SUB = "0x9ce59a13059e417087c02d3236a0b1cc", "0x4a8a4c0517381924f9838102c5a4dcb7"
BLOCK_X, BLOCK_Y = "0x" + "aa" * 32, "0x" + "bb" * 32
TX = "0x" + "cd" * 32
ADDR_TOPIC = "0x" + "0" * 24 + "11" * 20
# 1 ETH in, 3000 USDT out of the V2 pair: a sell of 1 ETH at 3000
SWAP_DATA = "0x" + f"{10**18:064x}" + "0" * 64 + "0" * 64 + f"{3_000_000_000:064x}"


def ack(request_id, subscription):
    return orjson.dumps({"jsonrpc": "2.0", "id": request_id, "result": subscription})


def notification(subscription, result):
    return orjson.dumps({"jsonrpc": "2.0", "method": "eth_subscription",
                         "params": {"subscription": subscription, "result": result}})


def head(number, block_hash, parent="0x" + "00" * 32, seconds=1_800_000_000):
    return notification(HEADS_SUB, {"number": hex(number), "hash": block_hash,
                                    "parentHash": parent, "timestamp": hex(seconds),
                                    "gasUsed": "0x38658", "baseFeePerGas": "0x3b9aca00"})


def swap_log(block_hash, removed=False, log_index=0, number=100, **changes):
    result = {"address": V2.address, "topics": [abi.SWAP_V2_TOPIC, ADDR_TOPIC, ADDR_TOPIC],
              "data": SWAP_DATA, "blockNumber": hex(number), "transactionHash": TX,
              "transactionIndex": "0x0", "blockHash": block_hash, "logIndex": hex(log_index),
              "removed": removed} | changes
    return notification(LOGS_SUB, result)


def subscribed_adapter():
    adapter = EthereumAdapter(POOLS)
    assert adapter.parse(ack(1, HEADS_SUB), 0) == Control("ack", f"newHeads subscription "
                                                                 f"{HEADS_SUB}")
    assert adapter.parse(ack(2, LOGS_SUB), 0).kind == "ack"
    return adapter


# --- the adapter, frame by frame ----------------------------------------------------------
def test_subscribe_messages_ask_for_heads_and_the_pools_swap_logs():
    heads, logs = (orjson.loads(m) for m in EthereumAdapter(POOLS).subscribe_messages(
        ["ETH-USDC", "ETH-USDT"]))
    assert heads == {"jsonrpc": "2.0", "id": 1, "method": "eth_subscribe",
                     "params": ["newHeads"]}
    assert logs["params"] == ["logs", {"address": [p.address for p in POOLS],
                                       "topics": [[abi.SWAP_V3_TOPIC, abi.SWAP_V2_TOPIC]]}]


def test_the_documented_head_notification():
    # the example header of go-ethereum's pub/sub documentation (newHeads), plus the hash
    # every real node sends
    adapter = subscribed_adapter()
    (kind, h), = adapter.parse(notification(HEADS_SUB, {
        "difficulty": "0x15d9223a23aa", "gasLimit": "0x47e7c4", "gasUsed": "0x38658",
        "hash": BLOCK_X, "number": "0x1348c9", "receiptRoot": "0x" + "2f" * 32,
        "parentHash": "0x7736fab79e05dc611604d22470dadad26f56fe494421b5b333de816ce1f25701",
        "timestamp": "0x56ffeff8", "nonce": "0x084149998194cc5f"}), 0)
    assert kind == HEAD
    assert (h.number, h.timestamp, h.gas_used, h.base_fee) == (
        1_263_817, 1_459_613_688 * 10**9, 231_000, None)


def test_a_swap_log_and_its_removal():
    adapter = subscribed_adapter()
    adapter.parse(head(100, BLOCK_X, seconds=1_800_000_012), 0)
    (kind, swap), = adapter.parse(swap_log(BLOCK_X), 0)
    assert kind == SWAP
    assert (swap.price, swap.volume, swap.side) == (3000.0, 1.0, SELL)
    assert (swap.amount0, swap.amount1, swap.timestamp) == (
        10**18, -3_000_000_000, 1_800_000_012 * 10**9)
    (kind, removed), = adapter.parse(swap_log(BLOCK_X, removed=True), 0)
    assert kind == REMOVED and removed == (TX, 0, 100, BLOCK_X)


@pytest.mark.parametrize("frame, reason", [
    (b"{not json", "malformed_json"),
    (notification("0xfeed", {"number": "0x1"}), "unknown_message"),  # never subscribed
    (swap_log(BLOCK_X, address="0x" + "12" * 20), "unknown_symbol"),
    (swap_log(BLOCK_X, topics=[abi.SWAP_V3_TOPIC, ADDR_TOPIC, ADDR_TOPIC]), "unknown_message"),
    (swap_log(BLOCK_X, logIndex="0xzz"), "bad_number"),
    (swap_log(BLOCK_X, data="0x1234"), "bad_number"),
    (swap_log(BLOCK_X, transactionHash=None), "missing_field"),
    (swap_log(BLOCK_X, removed="yes"), "bad_number"),
    (head(1, BLOCK_X, seconds=5), "bad_timestamp"),
    (notification(LOGS_SUB, [1, 2]), "unknown_message"),
])
def test_bad_frames_are_rejects_with_a_reason(frame, reason):
    with pytest.raises(rtkit.Reject) as exc:
        subscribed_adapter().parse(frame, 0)
    assert exc.value.reason == reason


def test_node_errors_are_error_controls():
    frame = b'{"jsonrpc":"2.0","id":2,"error":{"code":-32601,"message":"no \\"x\\" subscription"}}'
    assert EthereumAdapter(POOLS).parse(frame, 0) == Control(
        "error", '-32601: no "x" subscription')


def test_pools_must_be_told_apart():
    twin = Pool("0x" + "99" * 20, token0="ETH", token1="USDT", decimals0=18, decimals1=6,
                version=2)
    with pytest.raises(ValueError, match="another venue= name"):
        EthereumAdapter([V2, twin])
    with pytest.raises(ValueError, match="no pool has symbol 'BTC-USD'"):
        EthereumAdapter(POOLS).normalise_symbol("BTC-USD")


# --- pipeline + store: reorgs applied in order ----------------------------------------------
@pytest.fixture
def chain(tmp_path):
    """Frames in, ``flush()`` to SQLite; returns (pipeline, store, flush)."""
    pipeline = ChainPipeline(subscribed_adapter(), RingBuffer(1000))
    store = ChainStore(tmp_path / "chain.sqlite")

    def flush():
        batch = pipeline.take()
        pipeline.done(batch, store.write(*batch))

    yield pipeline, store, flush
    store.close()


def rows(store):
    return store.conn.execute("SELECT tx_hash, log_index, block_hash, timestamp FROM swaps"
                              ).fetchall()


def test_a_removed_log_is_deleted_and_its_new_copy_kept(chain):
    pipeline, store, flush = chain
    pipeline.process(swap_log(BLOCK_X), 1)
    flush()
    assert [r[2] for r in rows(store)] == [BLOCK_X]
    for frame in (swap_log(BLOCK_X, removed=True), swap_log(BLOCK_Y)):  # the reorg, one flush
        pipeline.process(frame, 2)
    flush()
    assert [r[2] for r in rows(store)] == [BLOCK_Y]
    assert list(pipeline.visible(pipeline.ring.snapshot())["trade_id"]) == [f"{TX}:0"]
    pipeline.process(swap_log(BLOCK_Y, removed=True), 3)  # and taken back again, for good
    flush()
    assert rows(store) == [] and pipeline.visible(pipeline.ring.snapshot()).empty
    s = pipeline.stats()
    assert (s["ticks"], s["stored"], s["removed"], s["deleted"]) == (2, 2, 2, 2)


def test_a_late_removal_of_the_old_copy_does_not_delete_the_new_one(chain):
    pipeline, store, flush = chain
    for frame in (swap_log(BLOCK_X), swap_log(BLOCK_Y), swap_log(BLOCK_X, removed=True)):
        pipeline.process(frame, 1)
    flush()
    assert [r[2] for r in rows(store)] == [BLOCK_Y]
    assert len(pipeline.visible(pipeline.ring.snapshot())) == 1


def test_same_log_twice_is_one_row_and_counted(chain):
    pipeline, store, flush = chain
    pipeline.process(swap_log(BLOCK_X), 1)
    pipeline.process(swap_log(BLOCK_X), 2)
    flush()
    s = pipeline.stats()
    assert len(rows(store)) == 1 and (s["stored"], s["duplicates"], s["pending"]) == (1, 1, 0)


def test_a_log_before_its_header_gets_the_block_time_when_the_header_comes(chain):
    pipeline, store, flush = chain
    pipeline.process(swap_log(BLOCK_X), 7)
    flush()
    assert rows(store)[0][3] is None
    pipeline.process(head(100, BLOCK_X, seconds=1_800_000_024), 8)
    flush()
    assert rows(store)[0][3] == 1_800_000_024 * 10**9
    assert store.blocks()["number"].tolist() == [100]


def test_each_removal_costs_the_same_however_many_came_before(chain):
    """Swap/removal pairs, 4 rounds: the fourth costs about what the first did (each
    removal used to copy the set of all removed swaps)."""
    import time

    pipeline = chain[0]
    frames = [frame for i in range(24_000) for frame in (
        swap_log(BLOCK_X, transactionHash=f"0x{i:064x}"),
        swap_log(BLOCK_X, removed=True, transactionHash=f"0x{i:064x}"))]
    rounds = []
    for r in range(4):
        part = frames[r * 12_000:(r + 1) * 12_000]
        start = time.perf_counter()
        pipeline.process_frames(part, 1)
        rounds.append(time.perf_counter() - start)
        pipeline.take()
    assert pipeline.stats()["removed"] == 24_000 and len(pipeline.hidden) == 24_000
    assert rounds[3] < 3 * rounds[0], f"seconds per round: {rounds}"


def test_removed_swaps_are_remembered_up_to_a_bound(chain, monkeypatch):
    monkeypatch.setattr(rtkit.onchain.pipeline, "_REMEMBERED_SWAPS", 5)
    pipeline = chain[0]
    for i in range(8):
        tx = f"0x{i:064x}"
        pipeline.process(swap_log(BLOCK_X, transactionHash=tx), 1)
        pipeline.process(swap_log(BLOCK_X, removed=True, transactionHash=tx), 2)
    assert list(pipeline.hidden) == [f"0x{i:064x}:0" for i in range(3, 8)]
    pipeline.process(swap_log(BLOCK_Y, transactionHash=f"0x{7:064x}"), 3)  # re-included
    assert len(pipeline.hidden) == 4 and pipeline.stats()["replaced"] == 1


# --- against the simulated node --------------------------------------------------------------
def query(db, sql):
    with closing(sqlite3.connect(db)) as conn:
        return sorted(conn.execute(sql).fetchall())


def chain_rows(db):
    return query(db, "SELECT tx_hash, log_index, block_hash, pool, amount0, amount1, "
                     "sqrt_price_x96 FROM swaps")


def canonical_rows(node):
    out = []
    for log in node.chain.canonical_logs():
        amount0, amount1 = log.pool.deltas_for(log.trade.price, log.trade.volume, log.trade.side)
        sqrt = str(log.pool.sqrt_price_x96_for(log.trade.price)) if log.pool.version == 3 \
            else None
        out.append((log.tx_hash, log.log_index, log.block_hash, log.pool.address, str(amount0),
                    str(amount1), sqrt))
    return sorted(out)


def expected_price(log):
    """V3: the pool price the log states (exact up to isqrt); V2: the exact ratio of the
    swap's raw amounts, whole tokens (its quote amount is rounded to a raw unit)."""
    if log.pool.version == 3:
        return float(log.trade.price)
    eth, usdt = (abs(a) for a in log.pool.deltas_for(log.trade.price, log.trade.volume,
                                                     log.trade.side))
    return float(Fraction(usdt, 10**6) / Fraction(eth, 10**18))


@pytest.mark.usefixtures("no_thread_leak")
def test_swaps_heads_and_reorgs_end_to_end_then_replayed(tmp_path):
    db, recording = tmp_path / "chain.sqlite", tmp_path / "chain.jsonl.gz"
    node = EthereumNode(POOLS, count=60, swaps_per_block=4, block_interval_s=0.02, seed=5,
                        reorg_every=3)
    with node, ChainCollector(POOLS, url=node.start().url, db=db, flush_interval_s=0.1,
                              record_raw=recording) as c:
        wait_for(lambda: node.settled, 10)
        wait_for(lambda: chain_rows(db) == canonical_rows(node), 10)
    assert node.chain.reorgs >= 4 and len(node.chain.dropped) >= 4
    dropped = {(log.tx_hash, log.log_index) for log in node.chain.dropped}
    assert dropped.isdisjoint((r[0], r[1]) for r in chain_rows(db))
    s = c.stats
    assert s["rejected"] == 0 and s["stored"] - s["deleted"] == len(node.chain.canonical_logs())
    assert s["ticks"] == s["stored"] + s["duplicates"] + s["pending"] + s["dropped_overflow"]
    assert s["removed"] > 0 and 4 <= s["reorgs"] <= node.chain.reorgs  # the node goes on
    # the live DataFrame applies the reorgs too, and its trades are the market's
    logs = {f"{log.tx_hash}:{log.log_index}": log for log in node.chain.canonical_logs()}
    df = c.df
    assert sorted(df["trade_id"]) == sorted(logs)
    for tid, price, volume, side in df[["trade_id", "price", "volume", "side"]].itertuples(
            index=False):
        trade = logs[tid].trade
        assert (volume, side) == (float(trade.volume), trade.side)
        assert price == pytest.approx(expected_price(logs[tid]), rel=1e-12)
        assert price == pytest.approx(float(trade.price), rel=1e-4)

    with c.store() as store:
        stored_blocks, swaps = set(store.blocks()["hash"]), store.swaps()
    assert stored_blocks <= {b.hash for b in node.chain.announced}
    assert set(swaps["block_hash"]) <= stored_blocks and swaps["timestamp"].notna().all()
    assert {log.block_hash for log in node.chain.dropped} <= stored_blocks  # replaced headers
    assert set(swaps["venue"]) == {"uniswap_v2", "uniswap_v3"}
    # the raw recording replays to the very same tables
    replayed = tmp_path / "replayed.sqlite"
    summary = rtkit.onchain.replay(recording, POOLS, db=replayed)
    assert summary["removed"] == s["removed"] and summary["frames"] == s["frames"]
    assert chain_rows(replayed) == chain_rows(db)
    blocks = "SELECT hash, number, parent_hash, timestamp, base_fee, gas_used FROM blocks"
    assert query(replayed, blocks) == query(db, blocks)


@pytest.mark.usefixtures("no_thread_leak")
def test_reconnects_and_resubscribes_with_new_subscription_ids(tmp_path):
    # the node only sends current events, so what a drop cuts off is missed (no
    # eth_getLogs backfill): every stored swap is canonical, and swaps keep coming
    # after each reconnect, announced under the new connection's subscription ids
    db = tmp_path / "chain.sqlite"
    node = EthereumNode(POOLS, count=60, swaps_per_block=2, block_interval_s=0.01, seed=2,
                        faults=Faults(drop_every=25))
    with node, ChainCollector(POOLS, url=node.start().url, db=db, flush_interval_s=0.1,
                              backoff_initial_s=0.05) as c:
        wait_for(lambda: node.settled, 10)
        head = node.chain.head.hash
        wait_for(lambda: query(db, f"SELECT 1 FROM blocks WHERE hash = '{head}'"), 10)
    s = c.stats
    assert s["connections"] >= 3 and s["reconnect_marks"] == s["connections"] - 1
    assert s["rejected"] == 0 and s["status"] == "stopped"
    assert set(chain_rows(db)) <= set(canonical_rows(node))
    last_reconnect = query(db, "SELECT max(seen_at) FROM gaps WHERE kind = 'reconnect'")[0][0]
    assert query(db, f"SELECT count(*) FROM swaps WHERE received_at > {last_reconnect}")[0][0]
