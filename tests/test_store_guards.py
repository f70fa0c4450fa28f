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
from rtkit.compat import store_data
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


def test_store_data_refuses_column_names_that_differ_only_in_case(db):
    """SQL identifiers ignore case: ``price`` and ``Price`` are one column."""
    with pytest.raises(ValueError, match="differ only in case"):
        store_data("signals", {"price": 1.0, "Price": 2.0}, db=db)


@pytest.mark.parametrize("table", ["SQLITE_notes", "Sqlite_master", "sqlite_x"])
def test_store_data_refuses_sqlites_reserved_prefix_in_any_case(table, db):
    """SQLite reserves ``sqlite_`` names whatever their case."""
    with pytest.raises(ValueError, match="is not a plain name"):
        store_data(table, {"price": 1.0}, db=db)


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


# --- rtkit demo --db: only what the demo provably made is replaced ----------------------------
def demo(db, capsys) -> tuple[int, str, str]:
    code = main(["demo", "--db", str(db), "--duration", "0.3"])
    out = capsys.readouterr()
    return code, out.out, out.err


def tick_count(db) -> int:
    with contextlib.closing(sqlite3.connect(db)) as conn:
        return conn.execute("SELECT count(*) FROM ticks").fetchone()[0]


@pytest.mark.parametrize("own_table", [False, True])
def test_demo_refuses_a_database_made_by_replay(tmp_path, capsys, own_table):
    db = tmp_path / "mine.sqlite"
    assert main(["replay", str(SAMPLE), "--db", str(db)]) == 0
    if own_table:
        store_data("my_notes", {"text": "keep me"}, db=db)
    ticks = tick_count(db)
    assert ticks > 1000
    code, _, err = demo(db, capsys)
    assert code == 2 and "not from the demo (no runs recorded" in err
    assert tick_count(db) == ticks
    assert ("my_notes" in tables(db)) == own_table


def test_demo_refuses_a_database_made_by_store_data_or_another_program(tmp_path, capsys):
    mine = tmp_path / "signals.sqlite"
    store_data("signals", {"x": 1}, db=mine)
    assert demo(mine, capsys)[0] == 2 and "signals" in tables(mine)
    notes = tmp_path / "notes.txt"
    notes.write_text("not a database")
    code, _, err = demo(notes, capsys)
    assert code == 2 and "not an rtkit database" in err
    assert notes.read_text() == "not a database"


def test_demo_replaces_a_database_it_provably_made(tmp_path, capsys):
    db = tmp_path / "demo.sqlite"
    assert demo(db, capsys)[0] == 0
    code, out, _ = demo(db, capsys)
    assert code == 0 and "moved it to" not in out
    with contextlib.closing(sqlite3.connect(db)) as conn:
        assert conn.execute("SELECT count(*) FROM runs").fetchone() == (1,)
    assert [p.name for p in tmp_path.iterdir() if p.suffix == ".sqlite"] == ["demo.sqlite"]


def test_demo_moves_aside_a_demo_database_with_more_in_it_and_says_where(tmp_path, capsys):
    db = tmp_path / "demo.sqlite"
    assert demo(db, capsys)[0] == 0
    store_data("my_notes", {"text": "keep me"}, db=db)
    ticks = tick_count(db)
    code, out, _ = demo(db, capsys)
    assert code == 0 and "tables added since: my_notes" in out
    aside = Path(out.split("moved it to '")[1].split("'")[0])
    assert aside.parent == tmp_path and aside.name.startswith("demo.")
    assert "my_notes" in tables(aside) and tick_count(aside) == ticks
    assert "my_notes" not in tables(db) and tick_count(db) > 0


def test_demo_moves_aside_a_demo_run_that_never_finished(tmp_path, capsys):
    db = tmp_path / "demo.sqlite"
    with TickStore(db) as store:  # what a demo killed before its summary leaves
        store.start_run(name="demo", venue="binance", symbols=["BTC-USDT"],
                        url="ws://127.0.0.1:1/ws", config={}, started_at=1)
        store.write([("binance", "BTC-USDT", "1", 1, 1, 1.0, 1.0, "buy")])
    code, out, _ = demo(db, capsys)
    assert code == 0 and "a demo run that never finished" in out
    aside = Path(out.split("moved it to '")[1].split("'")[0])
    assert tick_count(aside) == 1


_TICKS_COLUMNS_SQL = ("venue TEXT, symbol TEXT, trade_id TEXT, timestamp INTEGER, "
                      "received_at INTEGER, price REAL, volume REAL, side TEXT")


@pytest.mark.parametrize("ddl", [
    # rtkit's column names, but no key: INSERT OR IGNORE would store every repeat again
    f"CREATE TABLE ticks ({_TICKS_COLUMNS_SQL})",
    f"CREATE TABLE ticks ({_TICKS_COLUMNS_SQL}, PRIMARY KEY (venue, trade_id))",
    # rtkit's column names, but a view: nothing can be written into it
    f"CREATE TABLE app ({_TICKS_COLUMNS_SQL}); CREATE VIEW ticks AS SELECT * FROM app",
], ids=["no key", "another key", "a view"])
def test_a_ticks_table_with_rtkits_columns_but_not_its_key_is_refused(tmp_path, ddl):
    db = tmp_path / "app.sqlite"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        conn.executescript(ddl)
    with pytest.raises(StoreError, match="has a 'ticks' table that is not rtkit's"):
        TickStore(db, adopt=True)
    assert tables(db) <= {"ticks", "app"}  # nothing added


def test_a_ticks_table_made_by_the_first_rtkit_schema_still_opens(tmp_path):
    """sqlite-utils' DDL of rtkit's first versions (a rowid table, the same key)."""
    db = tmp_path / "old.sqlite"
    with contextlib.closing(sqlite3.connect(db)) as conn:
        columns = _TICKS_COLUMNS_SQL.replace("TEXT,", "TEXT NOT NULL,", 3)
        conn.execute(f"CREATE TABLE [ticks] ({columns}, "
                     "PRIMARY KEY ([venue], [symbol], [trade_id])) STRICT")
    with TickStore(db) as store:
        assert store.write([("binance", "BTC-USDT", "1", 1, 1, 1.0, 1.0, "buy")] * 2) == 1
