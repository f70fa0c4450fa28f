"""SQLite tables from kind descriptions: the same DDL rtkit always wrote.

Tables with a rowid are created by sqlite-utils (``STRICT``, the key as
primary key, the ``not_null`` columns); a ``without_rowid`` kind's DDL is
written out here, since sqlite-utils cannot say ``WITHOUT ROWID``. Indexes are
sqlite-utils' (``idx_<table>_<columns>``).
"""

from __future__ import annotations

import importlib
import sqlite3
import sys
from typing import TYPE_CHECKING

from rtkit.kinds import Kind

if TYPE_CHECKING:  # imported when a table is made: a writer process seldom makes one
    import sqlite_utils

_PYTHON_TYPES = {"TEXT": str, "INTEGER": int, "REAL": float}
#: the width the written-out DDL wraps its column list at (as it always has)
_DDL_WIDTH = 80


def without_rowid_ddl(kind: Kind) -> str:
    """``CREATE TABLE IF NOT EXISTS`` of a ``without_rowid`` kind."""
    lines, line = [], "   "
    for c in kind.columns:
        part = f" {c.name} {c.sql}{' NOT NULL' if c.not_null else ''},"
        if len(line) + len(part) > _DDL_WIDTH:
            lines.append(line)
            line = "   "
        line += part
    lines.append(line)
    return (f"CREATE TABLE IF NOT EXISTS {kind.table} (\n" + "\n".join(lines)
            + f"\n    PRIMARY KEY ({', '.join(kind.key)})\n) STRICT, WITHOUT ROWID")


def database(conn: sqlite3.Connection) -> sqlite_utils.Database:
    """sqlite-utils' view of ``conn``, importing sqlite-utils on first use.

    Importing it takes ~90 ms, and a writer process, whose file has its tables
    already, needs it for nothing: its start-up is what the collector waits for
    before the child takes the run over (issue 17). Where pandas is not imported
    yet (the writer process), sqlite-utils is imported without it: it imports
    pandas, when it can, only to map ``pandas.Timestamp`` to TEXT, a type no rtkit
    table is made of, and pandas takes a quarter of a second.
    """
    if "sqlite_utils" not in sys.modules and "pandas" not in sys.modules:
        sys.modules["pandas"] = None  # type: ignore[assignment]  # "not installed"
        try:
            importlib.import_module("sqlite_utils")
        finally:
            del sys.modules["pandas"]
    import sqlite_utils

    return sqlite_utils.Database(conn)


def index_name(table: str, columns: tuple[str, ...]) -> str:
    """The name sqlite-utils gives an index of ``columns`` on ``table``."""
    return f"idx_{table}_{'_'.join(columns)}"


def create_table(db: sqlite_utils.Database, kind: Kind) -> None:
    """Create ``kind``'s table and indexes unless they exist."""
    if kind.without_rowid:
        db.execute(without_rowid_ddl(kind))
    else:
        not_null = {c.name for c in kind.columns if c.not_null}
        db.table(kind.table).create(
            {c.name: _PYTHON_TYPES[c.sql] for c in kind.columns},
            pk=kind.key[0] if len(kind.key) == 1 else kind.key,
            not_null=not_null or None, strict=True, if_not_exists=True)
    for index in kind.indexes:
        db.table(kind.table).create_index(list(index), if_not_exists=True)
