"""TickStore.ticks reads on helper connections beside the caller's: one snapshot for all
of them while a collector commits, and the same values as the old read."""

import sqlite3
import threading

import numpy as np
import pandas as pd
import pytest

import rtkit.store_read as store_read
from rtkit.frame import SIDE_CATEGORIES
from rtkit.store import TickStore
from tests.test_store_read import T0, _rows, _same, old_ticks

SYMBOLS = ("BTC-USDT", "ETH-USDT", "SOL-USDT")


def _batch(first: int, n: int) -> list[tuple]:
    """ids first..first+n-1 on every symbol, each value a function of the id: a read
    that mixed two snapshots (integer texts from one, float rows from another) shows."""
    return [("binance", sym, str(i), T0 + 10 * i, T0 + 10 * i + k, i + 0.25 * k, i / 7,
             SIDE_CATEGORIES[i % 2])
            for i in range(first, first + n) for k, sym in enumerate(SYMBOLS)]


def _check_one_snapshot(df: pd.DataFrame, batch: int) -> int:
    """Every symbol holds the same whole batches, and each row's values are its id's."""
    ids = df["trade_id"].to_numpy()
    k = df["symbol"].cat.codes.to_numpy()
    sym = np.array([SYMBOLS.index(s) for s in df["symbol"].cat.categories])[k]
    n = len(ids) // 3
    assert len(ids) == 3 * n and n % batch == 0
    for s in range(3):
        assert np.array_equal(np.sort(ids[sym == s]), np.arange(n))
    assert np.array_equal(df["timestamp"].array.asi8, T0 + 10 * ids)
    assert np.array_equal(df["received_at"].array.asi8, T0 + 10 * ids + sym)
    assert np.array_equal(df["price"].to_numpy(), ids + 0.25 * sym)
    assert np.array_equal(df["volume"].to_numpy(), ids / 7)
    assert np.array_equal(df["side"].cat.codes.to_numpy(), ids % 2)
    return n


@pytest.mark.parametrize("helpers", [1, 2])
def test_a_commit_between_the_callers_snapshot_and_the_helpers_is_read_again(
        tmp_path, monkeypatch, helpers):
    db = tmp_path / "t.sqlite"
    writer = TickStore(db)
    writer.write(_batch(0, 500))
    commits = []

    def commit_once():
        if not commits:  # a collector's flush lands just after the caller's snapshot
            commits.append(writer.write(_batch(500, 500)))

    monkeypatch.setattr(store_read, "HELPERS", helpers)
    monkeypatch.setattr(store_read, "_after_snapshot", commit_once)
    with TickStore(db, readonly=True) as store:
        df = store.ticks()
        assert commits and _check_one_snapshot(df, 500) == 1000
        pd.testing.assert_frame_equal(df, old_ticks(store), check_exact=True)
        assert not store.conn.in_transaction
    writer.close()


def test_each_read_is_one_snapshot_while_a_writer_commits(tmp_path):
    db = tmp_path / "t.sqlite"
    batch = 300
    with TickStore(db) as first:
        first.write(_batch(0, batch))
    stop = threading.Event()

    def collect():
        with TickStore(db) as writer:
            first_id = batch
            while not stop.is_set() and first_id < 200 * batch:
                writer.write(_batch(first_id, batch))
                first_id += batch

    thread = threading.Thread(target=collect)
    thread.start()
    seen = []
    try:
        with TickStore(db, readonly=True) as store:
            for _ in range(12):
                seen.append(_check_one_snapshot(store.ticks(), batch))
    finally:
        stop.set()
        thread.join(timeout=60)
    assert not thread.is_alive()
    assert seen == sorted(seen) and seen[-1] > seen[0], seen  # it did read during writes


def test_the_callers_own_transaction_is_read_on_its_connection(tmp_path):
    db = tmp_path / "t.sqlite"
    with TickStore(db) as store:
        store.write(_rows(300, str))
        store.conn.execute("BEGIN")
        store.conn.executemany("INSERT INTO ticks VALUES (?,?,?,?,?,?,?,?)",
                               _rows(200, lambda i: str(10_000 + i)))
        df = store.ticks()  # helpers could not see the uncommitted rows
        assert len(df) == 500 and store.conn.in_transaction
        pd.testing.assert_frame_equal(df, old_ticks(store), check_exact=True)
        store.conn.execute("ROLLBACK")
        assert len(store.ticks()) == 300


@pytest.mark.parametrize("helpers", [0, 1, 2])
def test_a_text_id_after_the_probe_still_gives_text_ids(tmp_path, monkeypatch, helpers):
    monkeypatch.setattr(store_read, "HELPERS", helpers)
    monkeypatch.setattr(store_read, "TEXT_ID_PROBE", 5)
    for k, odd in enumerate(("007", "-5", "1,2", "9223372036854775808", "x")):
        db = tmp_path / f"t{k}.sqlite"
        with TickStore(db) as store:
            rows = _rows(300, lambda i: str(100 + i))
            rows[250] = rows[250][:2] + (odd,) + rows[250][3:]
            store.write(rows)
        assert _same(db)["trade_id"].dtype != np.int64, odd
    _same(db, venue="binance", symbol="ETH-USDT")  # one symbol without the odd id


def _bits_equal(a: pd.Series, b: pd.Series) -> bool:
    return np.array_equal(a.to_numpy().view(np.int64), b.to_numpy().view(np.int64))


@pytest.mark.parametrize("helpers", [0, 1, 2])
def test_hostile_floats_come_back_bit_for_bit(tmp_path, monkeypatch, helpers):
    monkeypatch.setattr(store_read, "HELPERS", helpers)
    tiny = np.finfo(np.float64).smallest_subnormal
    odd = [-0.0, 0.0, tiny, -tiny, 3 * tiny, np.finfo(np.float64).tiny / 3,
           np.finfo(np.float64).tiny, 1e308, -1e308, np.finfo(np.float64).max,
           float("inf"), float("-inf"), 0.1 + 0.2, 1 / 3, 2 / 3 * 1e-300,
           9007199254740993.0, 123456.78901234567, 65432.100000000006]
    rng = np.random.default_rng(11)
    bits = rng.integers(np.iinfo(np.int64).min, np.iinfo(np.int64).max, 20_000,
                        dtype=np.int64, endpoint=True).view(np.float64)
    values = np.concatenate([odd, bits[~np.isnan(bits)]])
    db = tmp_path / "t.sqlite"
    with TickStore(db) as store:
        store.write([("binance", SYMBOLS[i % 3], str(i), T0 + i, T0 + i, float(v),
                      float(values[-1 - i]), "buy") for i, v in enumerate(values)])
    with TickStore(db, readonly=True) as store:
        new, old = store.ticks(), old_ticks(store)
        stored = np.array(store.conn.execute(
            "SELECT price FROM ticks ORDER BY CAST(trade_id AS INTEGER)").fetchall())[:, 0]
    pd.testing.assert_frame_equal(new, old, check_exact=True)
    assert _bits_equal(new["price"], old["price"]) and _bits_equal(new["volume"], old["volume"])
    # what SQLite keeps: every value but -0.0 (it stores 0) as written
    expect = np.where(values == 0, 0.0, values)
    assert np.array_equal(stored.view(np.int64), expect.view(np.int64))
    assert np.array_equal(new.sort_values("trade_id")["price"].to_numpy().view(np.int64),
                          expect.view(np.int64))


def test_one_symbol_in_time_order_and_out_of_it(tmp_path):
    db = tmp_path / "t.sqlite"
    with TickStore(db) as store:
        # ids 1..30 at one time and arrival: numeric order, not the text order read in
        store.write([("okx", "BTC-USDT", str(i), T0, T0, 1.0 * i, 0.5, "sell")
                     for i in range(1, 31)])
        # arrival decides where the times tie, against the id order
        store.write([("kraken", "BTC-USD", str(i), T0 + i // 3, T0 - i, 2.0, 0.5, None)
                     for i in range(40)])
        store.write([("bybit", "BTC-USDT", str(i), T0 + i, T0 + i, 3.0, 0.5, "buy")
                     for i in range(50)])  # already in order
    for venue in ("okx", "kraken", "bybit"):
        _same(db, venue=venue)
    _same(db)


def test_no_helper_connection_is_left_open(tmp_path, monkeypatch):
    opened: list[sqlite3.Connection] = []
    real = store_read._open_helper

    def spy(conn, path):
        opened.append(real(conn, path))
        return opened[-1]

    monkeypatch.setattr(store_read, "_open_helper", spy)
    db = tmp_path / "t.sqlite"
    with TickStore(db) as store:
        store.write(_rows(100, str))
    with TickStore(db, readonly=True) as store:
        store.ticks()
    assert opened
    for conn in opened:
        with pytest.raises(sqlite3.ProgrammingError):
            conn.execute("SELECT 1")


def test_without_helpers_the_callers_connection_reads_alone(tmp_path, monkeypatch):
    def refuse(conn, path):
        raise sqlite3.OperationalError("unable to open database file")

    monkeypatch.setattr(store_read, "_open_helper", refuse)
    db = tmp_path / "t.sqlite"
    with TickStore(db) as store:
        store.write(_rows(600, str))
    _same(db)
    _same(db, venue="binance", symbol="BTC-USDT", start=T0 + 5)


def test_helpers_open_the_callers_file_after_the_working_directory_changed(
        tmp_path, monkeypatch):
    for folder, price in (("a", 1.0), ("b", 2.0)):  # the same rows but the prices
        (tmp_path / folder).mkdir()
        with TickStore(tmp_path / folder / "t.sqlite") as store:
            store.write([("binance", "BTC-USDT", str(i), T0 + i, T0 + i, price, 0.5, "buy")
                         for i in range(50)])
    monkeypatch.chdir(tmp_path / "a")
    with TickStore("t.sqlite", readonly=True) as store:
        monkeypatch.chdir(tmp_path / "b")  # "t.sqlite" is now another file
        for _ in range(2):
            df = store.ticks()
            pd.testing.assert_frame_equal(df, old_ticks(store), check_exact=True)
            assert (df["price"] == 1.0).all()
        # a decoy whose integers differ would show in the frame
        with TickStore(tmp_path / "b" / "t.sqlite") as decoy:
            decoy.conn.execute("UPDATE ticks SET timestamp = timestamp + 1")
            decoy.conn.commit()
        pd.testing.assert_frame_equal(store.ticks(), old_ticks(store), check_exact=True)
