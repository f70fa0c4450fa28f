"""TickStore.ticks reads integer columns as SQLite-built text in chunks that stay under
SQLite's length limit: a limit small enough to need many chunks gives the same frame."""

import sqlite3

import pytest

import rtkit.store_read as store_read
from rtkit.store import TickStore
from tests.test_store_read import T0, _rows, old_ticks


@pytest.mark.parametrize("helpers", [0, 1, 2])
def test_a_read_in_many_chunks_is_identical_to_the_old_read(tmp_path, monkeypatch, helpers):
    monkeypatch.setattr(store_read, "HELPERS", helpers)  # each connection reads the same ranges
    db = tmp_path / "t.sqlite"
    with TickStore(db) as store:
        store.write(_rows(3000, str))
        store.write(_rows(700, lambda i: str(10 ** 18 + i), venue="bybit"))
    with TickStore(db, readonly=True) as store:
        whole = store.ticks()
        # 2,000 characters: about 94 ids a chunk, some 40 chunks
        store.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 2000)
        chunked = store.ticks()
        filtered = store.ticks(venue="binance", start=T0 + 10, end=T0 + 900)
        store.conn.setlimit(sqlite3.SQLITE_LIMIT_LENGTH, 1_000_000_000)
        assert chunked.equals(whole) and chunked.equals(old_ticks(store))
        assert filtered.equals(old_ticks(store, venue="binance", start=T0 + 10, end=T0 + 900))
        assert len(chunked) == 3700 and not store.conn.in_transaction
