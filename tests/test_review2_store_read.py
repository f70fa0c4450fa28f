"""Review: TickStore.ticks' helper connections must read the file the caller's connection
reads, never another one put at its path since (a new run's database, a restored copy)."""

from __future__ import annotations

import os
import threading

import numpy as np
import pytest

import rtkit.store_read as store_read
from rtkit.store import TickStore
from tests.test_store_read_snapshot import _batch


def _shifted(rows: list[tuple], by: int) -> list[tuple]:
    """The same ids and counts, other times (another run's database at the same path)."""
    return [(*row[:3], row[3] + by, row[4] + by, *row[5:]) for row in rows]


@pytest.mark.parametrize("helpers", [1, 2])
def test_a_file_replaced_at_the_path_is_not_mixed_into_the_read(tmp_path, monkeypatch,
                                                                helpers):
    monkeypatch.setattr(store_read, "HELPERS", helpers)
    db, other = tmp_path / "t.sqlite", tmp_path / "new.sqlite"
    with TickStore(db) as writer:
        writer.write(_batch(0, 300))
    with TickStore(other) as writer:
        writer.write(_shifted(_batch(0, 300), 10**12))
    with TickStore(db, readonly=True) as store:
        before = store.ticks()
        os.replace(other, db)  # the path now names another database; ours is open still
        after = store.ticks()
        # one database's rows: the times and the prices of the file the store has open
        assert np.array_equal(after["timestamp"].array.asi8, before["timestamp"].array.asi8)
        assert np.array_equal(after["price"].to_numpy(), before["price"].to_numpy())


def test_no_thread_is_left_behind_when_a_read_fails_midway(tmp_path, monkeypatch):
    monkeypatch.setattr(store_read, "HELPERS", 2)
    db = tmp_path / "t.sqlite"
    with TickStore(db) as writer:
        writer.write(_batch(0, 300))

    def boom(*_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(store_read, "_float_rows", boom)
    before = set(threading.enumerate())
    with TickStore(db, readonly=True) as store:
        with pytest.raises(KeyboardInterrupt):
            store.ticks()
        assert not store.conn.in_transaction
    monkeypatch.undo()  # the float read back: the store reads again
    with TickStore(db, readonly=True) as store:
        assert len(store.ticks()) == 900
    assert set(threading.enumerate()) <= before
