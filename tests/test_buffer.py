import gc
import random
import threading

import numpy as np
import pandas as pd
import pytest

from rtkit.buffer import RingBuffer
from rtkit.validate import BUY, SELL, UNKNOWN_SIDE

T0 = 1_764_000_000_000_000_000


def tick(i, sym="BTC-USDT", side=BUY, tid=None):
    return (sym, i if tid is None else tid, T0 + i, 100.0 + i, 1.0 + i, side)


def test_snapshot_dtypes_and_values():
    ring = RingBuffer(10)
    ring.append("binance", T0 + 5, [tick(1), tick(2, "ETH-USDT", SELL)])
    ring.append("coinbase", T0 + 9, [tick(3, side=UNKNOWN_SIDE)])
    df = ring.snapshot()
    assert list(df.columns) == ["timestamp", "received_at", "venue", "symbol", "price", "volume",
                                "side", "trade_id"]
    assert str(df["timestamp"].dtype) == "datetime64[ns, UTC]"
    assert str(df["received_at"].dtype) == "datetime64[ns, UTC]"
    for col in ("venue", "symbol", "side"):
        assert isinstance(df[col].dtype, pd.CategoricalDtype)
    assert df["price"].dtype == np.float64 and df["trade_id"].dtype == np.int64
    assert df["symbol"].tolist() == ["BTC-USDT", "ETH-USDT", "BTC-USDT"]
    assert df["venue"].tolist() == ["binance", "binance", "coinbase"]
    assert df["side"].tolist()[:2] == ["buy", "sell"] and pd.isna(df["side"].iloc[2])
    assert df["timestamp"].iloc[0] == pd.Timestamp(T0 + 1, tz="UTC")
    assert df["received_at"].iloc[2] == pd.Timestamp(T0 + 9, tz="UTC")
    assert df["price"].tolist() == [101.0, 102.0, 103.0]


def test_wraps_and_keeps_newest_in_order():
    ring = RingBuffer(5)
    for i in range(12):
        ring.append("v", T0, [tick(i)])
    assert len(ring) == 5 and ring.total == 12
    assert ring.snapshot()["trade_id"].tolist() == [7, 8, 9, 10, 11]
    assert ring.tail(2)["trade_id"].tolist() == [10, 11]
    assert ring.tail(0).empty and ring.tail(99)["trade_id"].tolist() == [7, 8, 9, 10, 11]


def test_batch_larger_than_capacity_keeps_last_rows():
    ring = RingBuffer(4)
    ring.append("v", T0, [tick(i) for i in range(10)])
    assert ring.snapshot()["trade_id"].tolist() == [6, 7, 8, 9]


def test_text_trade_ids_become_strings_without_losing_int_ones():
    ring = RingBuffer(4)
    ring.append("binance", T0, [tick(1)])
    ring.append("bybit", T0, [tick(2, tid="20f43950-d8dd")])
    df = ring.snapshot()
    assert df["trade_id"].tolist() == ["1", "20f43950-d8dd"]
    assert str(df["trade_id"].dtype) == "string"


def test_empty_snapshot_has_dtypes():
    df = RingBuffer(3).snapshot()
    assert df.empty and str(df["timestamp"].dtype) == "datetime64[ns, UTC]"


def test_bytes_per_tick_within_budget():
    ring = RingBuffer(100_000)
    assert ring.nbytes / ring.capacity <= 48


def test_bad_capacity():
    with pytest.raises(ValueError, match="positive int"):
        RingBuffer(0)


def test_reader_never_sees_torn_rows():
    """Rows are written so that price == volume + 99 and ts == trade_id + T0;
    a torn row would break one of these while the writer wraps around."""
    ring = RingBuffer(1000)
    stop = threading.Event()

    def writer():
        i = 0
        while not stop.is_set():
            ring.append("v", T0, [tick(j) for j in range(i, i + 37)])
            i += 37

    t = threading.Thread(target=writer)
    t.start()
    try:
        for _ in range(200):
            df = ring.snapshot()
            assert ((df["price"] - df["volume"]) == 99.0).all()
            ids = df["trade_id"].to_numpy()
            assert (df["timestamp"].astype("int64").to_numpy() == ids + T0).all()
            assert (np.diff(ids) == 1).all()  # arrival order, no hole
    finally:
        stop.set()
        t.join()


def test_pipeline_drops_repeats_of_ids_that_say_nothing_about_order():
    """Venues without consecutive ids (Bybit UUIDs…): a re-sent trade is a duplicate."""
    from rtkit.pipeline import Pipeline
    from rtkit.venues.base import Adapter

    class Uuids(Adapter):
        name = "uuids"

        def parse(self, frame, received_at_ns):
            return [("BTC-USDT", t, T0 + i, 1.0, 1.0, BUY) for i, t in enumerate(frame)]

    p = Pipeline(Uuids(), RingBuffer(10))
    p.connection_opened(0)
    p.process(["a", "b"], 1)
    p.connection_opened(1)
    p.process(["b", "c"], 2)  # a reconnect snapshot re-sends "b"
    p.process(["d", "c"], 3)  # "c" again, now within one connection: still caught
    assert p.ring.snapshot()["trade_id"].tolist() == ["a", "b", "c", "d"]
    assert p.stats()["duplicates"] == 2 and p.stats()["ticks"] == 6


def test_ids_that_start_again_far_below_are_a_reset_not_duplicates():
    from rtkit.pipeline import Pipeline
    from rtkit.venues.base import Adapter

    class Counting(Adapter):
        name = "counting"
        ids_consecutive = True

        def parse(self, frame, received_at_ns):
            return [("BTC-USDT", t, T0 + t, 1.0, 1.0, BUY) for t in frame]

    p = Pipeline(Counting(), RingBuffer(10))
    p.process([500_000, 500_001], 1)
    p.process([7, 8], 2)  # a venue (or testnet) that starts counting again
    s = p.stats()
    assert s["id_resets"] == 1 and s["duplicates"] == 0 and s["ticks"] == 4
    assert p.ring.snapshot()["trade_id"].tolist() == [500_000, 500_001, 7, 8]
    assert [g[6] for g in p.take().gaps] == ["id_reset"]


def test_reject_rows_are_bounded_while_storage_stalls(monkeypatch):
    import rtkit.pipeline_queue as pipeline_queue
    from rtkit.pipeline import Pipeline
    from rtkit.venues import get_adapter

    monkeypatch.setattr(pipeline_queue, "MAX_PENDING_REJECTS", 5)
    p = Pipeline(get_adapter("binance"), RingBuffer(10))
    for _ in range(12):
        p.process(b"not json", 1)
    s = p.stats()
    assert s["rejected"] == 12 and s["rejects_dropped"] == 7 and s["rejects_pending"] == 5
    assert len(p.take().rejects) == 5


def _columns_equal(a: pd.DataFrame, b: pd.DataFrame) -> None:
    assert list(a.columns) == list(b.columns) and len(a) == len(b)
    for col in a.columns:
        assert a[col].dtype == b[col].dtype, col
        assert a[col].tolist() == b[col].tolist(), col  # value by value (NaN side: both None)


@pytest.mark.parametrize("text_ids", [False, True])
def test_reused_snapshot_equals_fresh_one_value_by_value(text_ids):
    ring = RingBuffer(7)
    for i in range(11):  # wrapped: the ordered copy comes from both ends of the columns
        tid = f"u{i}" if text_ids and i % 3 == 0 else None
        ring.append("binance" if i % 2 else "bybit", T0 + i,
                    [tick(i, "ETH-USDT" if i % 4 else "BTC-USDT", (BUY, SELL, UNKNOWN_SIDE)[i % 3],
                          tid)])
    _columns_equal(ring.snapshot(reuse=True), ring.snapshot())
    ring.append("binance", T0, [tick(11)])  # not wrapped at the end of the columns now
    _columns_equal(ring.snapshot(reuse=True), ring.snapshot())


def test_empty_reused_snapshot_has_dtypes():
    df = RingBuffer(3).snapshot(reuse=True)
    assert df.empty and str(df["timestamp"].dtype) == "datetime64[ns, UTC]"


def test_a_second_reused_snapshot_overwrites_the_first_and_never_a_fresh_one():
    """The documented price of reuse=True: the same arrays, refilled by the next call."""
    ring = RingBuffer(4)
    ring.append("binance", T0, [tick(i) for i in range(4)])
    first = ring.snapshot(reuse=True)
    fresh = ring.snapshot()
    assert first["trade_id"].tolist() == [0, 1, 2, 3]
    ring.append("binance", T0, [tick(i) for i in range(4, 6)])
    second = ring.snapshot(reuse=True)
    assert second["trade_id"].tolist() == [2, 3, 4, 5]
    assert first["trade_id"].tolist() == [2, 3, 4, 5]  # overwritten, as documented
    assert first["price"].tolist() == second["price"].tolist()
    assert first["timestamp"].tolist() == second["timestamp"].tolist()
    for col in ("price", "trade_id"):  # no new memory: the same arrays again
        assert np.shares_memory(first[col].to_numpy(), second[col].to_numpy()), col
    for col in ("venue", "symbol"):  # codes kept as pandas wants them: not narrowed anew
        assert np.shares_memory(first[col].array.codes, second[col].array.codes), col
    assert fresh["trade_id"].tolist() == [0, 1, 2, 3]  # a default snapshot is its own copy
    assert not np.shares_memory(ring.snapshot()["price"].to_numpy(), second["price"].to_numpy())


def test_reused_snapshot_stays_right_when_names_outgrow_int8_codes():
    ring = RingBuffer(300)
    for i in range(260):  # past 127 symbols pandas codes are no longer int8
        ring.append("binance", T0 + i, [tick(i, f"S{i}-USDT")])
        if i in (0, 125, 126, 127, 128, 259):
            _columns_equal(ring.snapshot(reuse=True), ring.snapshot())


@pytest.mark.parametrize("capacity", [50, 97, 1000])
def test_appends_a_column_at_a_time_equal_appends_one_by_one(capacity):
    # the same ticks through both paths: reads of many ticks (by column) wrapping round the
    # ring, new symbols, int and text ids mixed, and single ticks (one by one) between
    rng = random.Random(capacity)
    by_column, one_by_one = RingBuffer(capacity), RingBuffer(capacity)
    n_id = 0
    for _ in range(60):
        ticks = []
        for _ in range(rng.choice([1, 3, 32, 33, 49, 64])):
            n_id += 1
            tid = n_id if rng.random() < 0.8 else f"x{n_id}"
            ticks.append((rng.choice(["A-B", "C-D", f"S{n_id % 40}"]), tid, T0 + n_id,
                          rng.random() + 1, rng.random() + 1, rng.choice([BUY, SELL])))
        received, venue = T0 + n_id * 10, rng.choice(["binance", "okx"])
        by_column.append(venue, received, ticks)
        for one in ticks:
            one_by_one.append(venue, received, [one])
        pd.testing.assert_frame_equal(by_column.snapshot(), one_by_one.snapshot())
    assert by_column.total == one_by_one.total == n_id


def _tracked_allocations(work) -> int:
    """Containers the garbage collector counted while ``work`` ran: with a young threshold
    of 1 every one sets off a collection (the thresholds are put back after)."""
    thresholds = gc.get_threshold()
    gc.set_threshold(1, 1_000_000, 1_000_000)
    try:
        before = gc.get_stats()[0]["collections"]
        work()
        return gc.get_stats()[0]["collections"] - before
    finally:
        gc.set_threshold(*thresholds)


def test_a_read_of_many_ticks_makes_no_container_a_tick():
    # zip(*ticks) made an iterator a tick: a 200k-frame burst set off twice the young
    # collections and a second full one, ~25 ms of the receive thread (issue 17)
    ring = RingBuffer(100_000)
    ticks = [tick(i) for i in range(10_000)]
    ring.append("binance", T0, ticks[:100])  # the symbol and venue are known
    made = _tracked_allocations(lambda: ring.append("binance", T0, ticks))
    assert made < 100, f"{made:,} containers counted for 10,000 ticks"
    assert ring.snapshot()["trade_id"].tolist()[-3:] == [9_997, 9_998, 9_999]


@pytest.mark.parametrize("bad", [tick(7, side=300), tick(7, tid=2**70), tick(7)[:5],
                                 tick(7) + (1,), tick(7, "NEW-USDT", side=300)])
def test_a_read_with_a_tick_that_cannot_be_stored_leaves_the_ring_as_it_was(bad):
    # every column is converted before one is written: the oldest rows (the next to be
    # overwritten) keep all their values, not some columns of the new ticks; a new
    # symbol of the batch is not registered (a snapshot's categories would show it)
    ring = RingBuffer(50)
    ring.append("binance", T0, [tick(i) for i in range(50)])
    before = ring.snapshot()
    with pytest.raises((OverflowError, ValueError)):
        ring.append("binance", T0 + 1, [tick(100 + i) for i in range(40)] + [bad])
    pd.testing.assert_frame_equal(ring.snapshot(), before)
    assert ring.total == 50
