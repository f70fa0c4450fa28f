"""The schema of a TickStore's file: whose file it is, and the tables rtkit makes in it.

Before changing anything in a file (WAL mode, new tables) rtkit checks that it is
its own, or an empty one, or one the user chose to adopt: another application's
database is refused, and so is a ``ticks`` table rtkit did not make.
"""

from __future__ import annotations

import os
import sqlite3
from pathlib import Path

from rtkit.gaps import migrate_gaps
from rtkit.kinds import Kind
from rtkit.kinds.ledger import TABLES
from rtkit.kinds.sql import create_table, database, index_name
from rtkit.kinds.trades import TRADES

#: page cache of the writing connection, KiB (index updates stay in memory)
_CACHE_KIB = 64 * 1024
#: bytes a page of a file rtkit makes (SQLite's default: 4,096). Trades in 16 KiB pages,
#: measured: 1.30 against 1.47 µs a tick to insert and commit, and 24% fewer bytes on
#: disk (fewer pages, each with its header and free space). A file made before keeps
#: its size: changing it takes a VACUUM, which rtkit never runs on a user's file.
PAGE_BYTES = 16384


def refusal(db: sqlite3.Connection, path: Path, adopt: bool) -> str:
    """Why rtkit must not change this file, as the message for the user, or "": it
    holds another application's tables (unless adopted) or a ``ticks`` table that is
    not rtkit's."""
    names = sorted(name for (name,) in db.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'view') "
        "AND name NOT LIKE 'sqlite\\_%' ESCAPE '\\'"))
    if not names:
        return ""
    new_file = "Pass db= a new file (e.g. 'data/ticks.sqlite')"
    if "ticks" in (name.lower() for name in names):
        if not (why := _ticks_not_rtkits(db)):
            return ""
        return (f"'{path}' has a 'ticks' table that is not rtkit's ({why}), so rtkit "
                f"cannot store ticks in it. {new_file}.")
    if adopt:
        return ""
    shown = ", ".join(names[:8]) + (", …" if len(names) > 8 else "")
    return (f"'{path}' holds another application's tables ({shown}) and none of "
            "rtkit's; rtkit would switch it to WAL mode and add its tables ticks, rejects, "
            f"gaps and runs. {new_file}, or, to add rtkit's tables to this file on purpose, "
            f"open it once with rtkit.TickStore('{path}', adopt=True).")


def _ticks_not_rtkits(db: sqlite3.Connection) -> str:
    """Why the file's ``ticks`` is not rtkit's table, or "": a table (not a view)
    with rtkit's columns and key (without the key every repeat would be stored again)."""
    [(kind,)] = db.execute(
        "SELECT type FROM sqlite_master WHERE name = 'ticks' COLLATE NOCASE").fetchall()
    if kind != "table":
        return f"a {kind}"
    info = db.execute("PRAGMA table_info(ticks)").fetchall()
    columns = [r[1] for r in info]
    if columns != list(TRADES.names):
        return f"columns: {', '.join(columns)}"
    key = [r[1] for r in sorted(info, key=lambda r: r[5]) if r[5]]
    if key != list(TRADES.names[:3]):
        return f"its key is ({', '.join(key)}), not (venue, symbol, trade_id)"
    return ""


def create_schema(conn: sqlite3.Connection, kinds: tuple[Kind, ...]) -> None:
    """The page size of a new file, WAL, the cache, and the tables of the trades, the
    ledger and ``kinds`` (through sqlite-utils, imported only when one is missing)."""
    if conn.execute("PRAGMA page_count").fetchone()[0] == 0:  # nothing written yet
        conn.execute(f"PRAGMA page_size={PAGE_BYTES}")
    if conn.execute("PRAGMA journal_mode").fetchone()[0].lower() != "wal":
        conn.execute("PRAGMA journal_mode=wal")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA cache_size=-{_CACHE_KIB}")
    # the tables as their kinds describe them (rtkit.kinds.trades, rtkit.kinds.ledger)
    create_tables(conn, (TRADES, *TABLES, *kinds))
    migrate_gaps(conn)  # a file from before the gap ledger gets its columns


def create_tables(conn: sqlite3.Connection, tables: tuple[Kind, ...]) -> None:
    """The tables and indexes of ``tables`` the file lacks, through sqlite-utils (only
    imported then: a writer process whose file has them needs it for nothing)."""
    if _missing(conn, tables):
        db = database(conn)
        for table in tables:
            create_table(db, table)


def _missing(conn: sqlite3.Connection, kinds: tuple[Kind, ...]) -> set[str]:
    """The tables and indexes of ``kinds`` the file does not have."""
    have = {name for (name,) in conn.execute(
        "SELECT name FROM sqlite_master WHERE type IN ('table', 'index')")}
    wanted = {kind.table for kind in kinds} | {
        index_name(kind.table, index) for kind in kinds for index in kind.indexes}
    return wanted - have


def file_identity(path: str | os.PathLike) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path`` (None if none): helpers open the path only
    while it still names the file the caller's connection opened."""
    try:
        found = os.stat(path)
    except (OSError, ValueError):
        return None
    return found.st_dev, found.st_ino
