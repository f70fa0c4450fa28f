"""What rtkit may do to a database file it is pointed at: it never mixes rows into its
own tables through ``store_data``, never takes over another application's file
without being asked, and the demo only replaces a file it provably made."""

from __future__ import annotations

import contextlib
import sqlite3
from pathlib import Path

import pytest

import rtkit
from rtkit.cli import main
from rtkit.facade import store_data
from rtkit.onchain.store import ChainStore
from rtkit.store import StoreError, TickStore

SAMPLE = Path(rtkit.__file__).parent / "samples" / "binance_sample.jsonl.gz"

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


# --- another application's database ----------------------------------------------------------
def other_apps_db(path):
    """An SQLite file made by some other program: its own table, rollback journal."""
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("CREATE TABLE accounts (id INTEGER PRIMARY KEY, owner TEXT)")
        conn.execute("INSERT INTO accounts (owner) VALUES ('ada')")
        conn.commit()
    return path


def untouched(path) -> bool:
    with contextlib.closing(sqlite3.connect(path)) as conn:
        mode = conn.execute("PRAGMA journal_mode").fetchone()[0]
    return mode == "delete" and tables(path) == {"accounts"}


def test_another_applications_database_is_refused_and_left_as_it_was(tmp_path):
    db = other_apps_db(tmp_path / "app.sqlite")
    with pytest.raises(StoreError, match=r"another application's tables \(accounts\) and none of "
                       r"rtkit's; rtkit would switch it to WAL .* Pass db= a new file .*"
                       r"adopt=True"):
        TickStore(db)
    with pytest.raises(StoreError, match="another application's"):
        rtkit.Collector("binance", ["BTC-USDT"], db=db)
    with pytest.raises(StoreError, match="another application's"):
        store_data("signals", {"x": 1}, db=db)
    assert untouched(db)


def test_cli_replay_into_another_applications_database_says_so_and_changes_nothing(tmp_path,
                                                                                   capsys):
    db = other_apps_db(tmp_path / "app.sqlite")
    assert main(["replay", str(SAMPLE), "--db", str(db)]) == 2
    assert "another application's tables (accounts)" in capsys.readouterr().err
    assert untouched(db)


def test_adopt_adds_rtkit_tables_on_purpose_and_then_the_file_is_rtkits(tmp_path):
    db = other_apps_db(tmp_path / "app.sqlite")
    TickStore(db, adopt=True).close()
    assert tables(db) == RTKIT_TABLES | {"accounts"}
    TickStore(db).close()  # from now on it has rtkit's tables


def test_a_ticks_table_of_another_shape_is_refused(tmp_path):
    db = tmp_path / "app.sqlite"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.execute("CREATE TABLE ticks (t INTEGER, px REAL)")
    with pytest.raises(StoreError, match="has a 'ticks' table that is not rtkit's"):
        TickStore(db, adopt=True)


def test_rtkit_databases_with_tables_of_ones_own_still_open(db):
    TickStore(db).close()
    store_data("signals", {"x": 1}, db=db)  # a table of one's own beside rtkit's
    TickStore(db).close()
    ChainStore(db).close()  # the on-chain store adds its tables to a tick database
    assert tables(db) == RTKIT_TABLES | {"signals", "blocks", "swaps"}
    empty = db.with_name("empty.sqlite")
    sqlite3.connect(empty).close()  # a file with no table at all is fine
    TickStore(empty).close()
