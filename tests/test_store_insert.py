"""Multi-row inserts (``rtkit.store_insert``) store exactly what ``executemany`` would:
the same rows, the same count of inserted ones, the same refusals, at every size."""

from __future__ import annotations

import random
import sqlite3

import pytest

from rtkit.kinds.trades import TRADES
from rtkit.store import TickStore
from rtkit.store_insert import MOST_ROWS, insert_many

SQL = TRADES.insert_sql()
T0 = 1_764_000_000_000_000_000


def trades(n: int, seed: int, repeats: float = 0.2) -> list[tuple]:
    """``n`` trade rows of two symbols, about ``repeats`` of them a key seen before."""
    rng = random.Random(seed)
    rows = []
    for i in range(n):
        tid = rng.randrange(max(i, 1)) if i and rng.random() < repeats else i
        rows.append(("binance", rng.choice(["BTC-USDT", "ETH-USDT"]), str(tid), T0 + tid,
                     T0 + tid + 7, 100.0 + rng.random(), rng.random(),
                     rng.choice(["buy", "sell", None])))
    return rows


def stored(conn: sqlite3.Connection) -> list[tuple]:
    return conn.execute("SELECT * FROM ticks ORDER BY venue, symbol, trade_id").fetchall()


@pytest.mark.parametrize("n", [0, 1, 2, 3, MOST_ROWS - 1, MOST_ROWS, MOST_ROWS + 1, 3001])
def test_the_same_rows_and_counts_as_executemany(tmp_path, n):
    rows = trades(n, seed=n)
    one, many = TickStore(tmp_path / "one.sqlite"), TickStore(tmp_path / "many.sqlite")
    with one.conn:
        before = one.conn.total_changes
        one.conn.executemany(SQL, rows)
        expected = one.conn.total_changes - before
    inserted = many.write(rows)
    assert inserted == expected and stored(many.conn) == stored(one.conn)
    assert many.write(rows) == 0  # every key is stored now: all ignored


def test_a_refused_row_in_a_chunk_is_set_aside_alone(tmp_path):
    rows = trades(2500, seed=1, repeats=0)
    bad = list(rows[1700])
    bad[3] = "not a time"  # a STRICT INTEGER column refuses text
    rows[1700] = tuple(bad)
    store, refused = TickStore(tmp_path / "t.sqlite"), []
    assert store.write(rows, refused=refused) == 2499
    assert [(table, row) for table, row, _ in refused] == [("ticks", rows[1700])]
    assert len(stored(store.conn)) == 2499


def test_a_row_of_another_width_raises_as_executemany_does(tmp_path):
    rows = trades(300, seed=2, repeats=0)
    rows[10] = rows[10][:-1]
    rows[11] = rows[11] + ("extra",)  # the two together keep the total: never shifted
    store = TickStore(tmp_path / "t.sqlite")
    with pytest.raises(sqlite3.ProgrammingError), store.conn:
        insert_many(store.conn, SQL, rows)
    refused: list = []
    assert store.write(rows, refused=refused) == 298
    assert sorted(row for _, row, _ in refused) == sorted([rows[10], rows[11]])


def rows_per_insert(store: TickStore, rows: list[tuple]) -> list[int]:
    """How many rows each INSERT statement SQLite ran for ``store.write(rows)`` carried."""
    seen: list[str] = []
    store.conn.set_trace_callback(seen.append)
    try:
        store.write(rows)
    finally:
        store.conn.set_trace_callback(None)
    return [sql.count("(") - 1 for sql in seen if sql.startswith("INSERT")]


def test_chunks_are_powers_of_two_within_the_variable_limit(tmp_path):
    store = TickStore(tmp_path / "t.sqlite")
    store.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 250_000)  # Debian's build
    written = trades(9000, seed=3, repeats=0)
    assert rows_per_insert(store, written) == [4096, 4096, 512, 256, 32, 8]
    store.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 32766)  # SQLite's default
    more = [(v, s, f"x{t}", *rest) for v, s, t, *rest in trades(3000, seed=4, repeats=0)]
    assert rows_per_insert(store, more) == [2048, 512, 256, 128, 32, 16, 8]
    store.conn.setlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER, 999)  # as before SQLite 3.32
    rows = [("okx", "BTC-USDT", str(i), T0 + i, T0 + i, 1.0, 1.0, "buy") for i in range(300)]
    sizes = rows_per_insert(store, rows)
    assert sum(sizes) == 300 and max(sizes) == 64  # 64 rows x 8 values <= 999
    assert len(stored(store.conn)) == 12300  # each key new
