"""What rtkit may do to a database file it is pointed at: it never mixes rows into its
own tables through ``store_data``, never takes over another application's file
without being asked, and the demo only replaces a file it provably made."""

from __future__ import annotations

import contextlib
import sqlite3

import pytest

from rtkit.facade import store_data

RTKIT_TABLES = {"ticks", "rejects", "gaps", "runs"}


def tables(db) -> set[str]:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return {r[0] for r in conn.execute(
            "SELECT name FROM sqlite_master WHERE type='table' AND name NOT LIKE 'sqlite_%'")}


# --- store_data: the own-table guard -----------------------------------------------------------
@pytest.mark.parametrize("table", ["ticks\n", "runs\n", "signals\n"])
def test_store_data_refuses_a_table_name_with_a_trailing_newline(table, db):
    with pytest.raises(ValueError, match="is not a plain name"):
        store_data(table, {"price": 1.0}, db=db)
    assert not db.exists() or tables(db) == RTKIT_TABLES


def test_store_data_refuses_a_column_name_with_a_trailing_newline(db):
    with pytest.raises(ValueError, match="not plain names"):
        store_data("signals", {"x\n": 1}, db=db)
